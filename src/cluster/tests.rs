//! Membership and fencing against a real PostgreSQL (a new database per test): joining and
//! re-joining, renewal by the current epoch only, peers declared down by one conditional update
//! (once, even when two nodes race), leaving, the store's fence, and the membership thread
//! through a stall longer than its lease.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::*;
use crate::ids::UserId;
use crate::store::pg::testing::fresh_url;
use crate::store::pg::{Fence, PgOptions, PgStore};
use crate::store::{MessageRecord, Store, StoreError, WriteOp};

const LEASE: Duration = Duration::from_millis(400);

/// A migrated database and a membership connection to it.
fn fresh() -> (String, Members) {
    let url = fresh_url();
    drop(PgStore::open(&url, PgOptions::default()).expect("migrate"));
    let m = Members::new(&url, Duration::from_secs(5)).expect("members");
    (url, m)
}

#[test]
fn joining_bumps_the_epoch_and_the_version_and_only_the_current_epoch_renews() {
    let (_url, mut m) = fresh();
    let (e1, v1) = m.register("n1", "127.0.0.1:1", LEASE).unwrap();
    let (e2, v2) = m.register("n2", "127.0.0.1:2", LEASE).unwrap();
    assert_eq!((e1, e2), (1, 1));
    assert!(v2 > v1);
    // A restart of n1 joins under a new epoch: the old incarnation can no longer renew.
    let (e1b, v3) = m.register("n1", "127.0.0.1:11", LEASE).unwrap();
    assert_eq!(e1b, 2);
    assert!(v3 > v2);
    assert!(
        !m.renew("n1", 1, LEASE).unwrap(),
        "the superseded epoch is fenced"
    );
    assert!(m.renew("n1", 2, LEASE).unwrap());
    let snap = m.snapshot().unwrap();
    assert_eq!(snap.version, v3);
    let up: Vec<(&str, &str, i64)> = snap
        .up()
        .map(|n| (n.name.as_str(), n.addr.as_str(), n.epoch))
        .collect();
    assert_eq!(
        up,
        vec![("n1", "127.0.0.1:11", 2), ("n2", "127.0.0.1:2", 1)]
    );
}

#[test]
fn an_expired_peer_is_declared_down_once_even_when_two_nodes_race() {
    let (url, mut m) = fresh();
    m.register("a", "x:1", LEASE).unwrap();
    m.register("b", "x:2", LEASE).unwrap();
    let (_, v) = m.register("c", "x:3", Duration::from_millis(50)).unwrap();
    // Nothing has expired yet for a and b; c's lease runs out.
    std::thread::sleep(Duration::from_millis(120));
    let racers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|me| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut m = Members::new(&url, Duration::from_secs(5)).unwrap();
                m.declare_expired_down(me).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    let declared: Vec<&(String, i64)> = results.iter().flat_map(|(d, _)| d).collect();
    assert_eq!(
        declared,
        vec![&("c".to_owned(), 1)],
        "exactly one declaration"
    );
    let bumps: Vec<i64> = results.iter().filter_map(|(_, v)| *v).collect();
    assert_eq!(bumps, vec![v + 1], "one version bump");
    assert!(!m.renew("c", 1, LEASE).unwrap(), "c is fenced");
    let snap = m.snapshot().unwrap();
    let c = snap.nodes.iter().find(|n| n.name == "c").unwrap();
    assert_eq!(c.state, NodeState::Down);
    // Declaring again changes nothing and bumps nothing.
    assert_eq!(m.declare_expired_down("a").unwrap(), (vec![], None));
    // Leaving: b goes, the version moves, a stays.
    assert!(m.leave("b", 1).unwrap());
    assert!(!m.leave("b", 1).unwrap(), "only once");
    let snap = m.snapshot().unwrap();
    assert_eq!(snap.version, v + 2);
    assert_eq!(
        snap.up().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        vec!["a"]
    );
}

fn append(seq: u64) -> Vec<WriteOp> {
    vec![WriteOp::AppendMessage(MessageRecord {
        topic: "grpFence".into(),
        seq,
        ts: crate::ids::UnixMillis(1),
        from: UserId(7),
        head: None,
        content: "\"hi\"".into(),
        deleted: false,
    })]
}

#[test]
fn a_fenced_node_cannot_commit_after_it_was_declared_down() {
    let (url, mut m) = fresh();
    let (epoch, _) = m.register("old", "x:1", Duration::from_millis(50)).unwrap();
    let fence = Fence {
        node: "old".into(),
        epoch: Arc::new(std::sync::atomic::AtomicI64::new(epoch)),
    };
    let store = PgStore::open(&url, PgOptions::default())
        .unwrap()
        .with_fence(fence.clone());
    assert_eq!(store.apply(&[append(1)]), vec![Ok(())], "a member commits");
    // Its lease runs out and a peer declares it down: the same epoch is refused from now on,
    // although the node itself has not noticed yet.
    m.register("new", "x:2", LEASE).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(m.declare_expired_down("new").unwrap().0.len(), 1);
    let r = store.apply(&[append(2)]);
    assert!(
        matches!(&r[0], Err(StoreError::Backend(e)) if e.contains("fenced")),
        "{r:?}"
    );
    // Not a member (epoch 0): refused without asking.
    fence.epoch.store(0, Ordering::SeqCst);
    assert!(store.apply(&[append(2)])[0].is_err());
    // Re-joined under a new epoch: commits again.
    let (e2, _) = m.register("old", "x:1", LEASE).unwrap();
    fence.epoch.store(e2, Ordering::SeqCst);
    assert_eq!(store.apply(&[append(2)]), vec![Ok(())]);
    assert_eq!(
        store.last_message("grpFence").unwrap().map(|l| l.seq),
        Some(2)
    );
}

/// Waits until `f` holds for the latest view from `rx`.
fn wait_view(rx: &mpsc::Receiver<Arc<View>>, what: &str, f: impl Fn(&View) -> bool) -> Arc<View> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if f(&v) => return v,
            Ok(_) => {}
            Err(_) => panic!("no view where {what}"),
        }
    }
}

fn member(url: &str, name: &str) -> (Heartbeat, mpsc::Receiver<Arc<View>>) {
    let (tx, rx) = mpsc::channel();
    let hb = Heartbeat::start(
        url,
        MemberConfig {
            name: name.into(),
            addr: format!("127.0.0.1:{}", name.len()),
            lease: LEASE,
            heartbeat: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(5),
        },
        Box::new(move |v| {
            let _ = tx.send(v);
        }),
    )
    .expect("join");
    (hb, rx)
}

#[test]
fn a_stalled_member_is_declared_down_fences_itself_and_rejoins_under_a_new_epoch() {
    let (url, _m) = fresh();
    let (a, a_views) = member(&url, "a");
    let (b, b_views) = member(&url, "bb");
    let v = wait_view(&a_views, "both up", |v| v.up.len() == 2);
    assert_eq!(v.ring.nodes(), ["a", "bb"]);
    assert_eq!(a.status().live.load(Ordering::SeqCst), 2);
    let b_epoch = b.status().epoch.load(Ordering::SeqCst);
    assert_eq!(b_epoch, 1);

    // b stalls past its lease: a declares it down and places everything on itself.
    b.pause(true);
    let v = wait_view(&a_views, "b down", |v| v.up.len() == 1);
    assert!(v.masters("grpAnything") && v.masters("p2pOther"));
    assert_eq!(a.status().live.load(Ordering::SeqCst), 1);
    assert_eq!(a.status().total.load(Ordering::SeqCst), 2);

    // b wakes up: its renewal fails, it stops mastering, then re-joins under epoch 2.
    b.pause(false);
    let v = wait_view(&b_views, "b re-joined", |v| {
        v.epoch == b_epoch + 1 && v.up.len() == 2
    });
    assert_eq!(v.me, "bb");
    wait_view(&a_views, "b back", |v| v.up.len() == 2);

    // A clean stop leaves at once: no lease to wait for.
    let started = Instant::now();
    b.stop();
    wait_view(&a_views, "b left", |v| v.up.len() == 1);
    assert!(started.elapsed() < LEASE * 3);
    a.stop();
}
