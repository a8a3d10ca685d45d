//! Node links on loopback without PostgreSQL (views made by hand): a link follows the view,
//! says hello, measures a round trip, refuses sends at once when the peer is not linked or its
//! queue is full, reconnects after the peer's listener comes back, and is dropped when the
//! peer leaves the view.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::heartbeat::{Status, View};
use super::link::{LinkConfig, SendError};
use super::links::Links;
use super::membership::{NodeRow, NodeState};
use super::ring::Ring;
use super::wire::NodeMsg;

fn cfg(queue: usize) -> LinkConfig {
    LinkConfig {
        queue,
        ping: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        backoff_max: Duration::from_millis(200),
    }
}

fn node(name: &str, queue: usize) -> (Arc<Links>, Arc<Status>) {
    let status = Arc::new(Status::default());
    status.epoch.store(1, Ordering::SeqCst);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        Links::start(name, cfg(queue), l, status.clone(), Box::new(|_, _| {})).unwrap(),
        status,
    )
}

fn view(me: &str, version: i64, up: &[(&str, String)]) -> View {
    let rows: Vec<NodeRow> = up
        .iter()
        .map(|(n, a)| NodeRow {
            name: (*n).into(),
            addr: a.clone(),
            epoch: 1,
            state: NodeState::Up,
            lease_live: true,
        })
        .collect();
    let names: Vec<&str> = up.iter().map(|(n, _)| *n).collect();
    View {
        version,
        me: me.into(),
        epoch: 1,
        total: rows.len(),
        ring: Ring::new(&names),
        up: rows,
    }
}

fn wait(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_link_follows_the_view_measures_rtt_and_refuses_when_it_cannot_send() {
    let (a, a_status) = node("a", 4);
    let (b, b_status) = node("b", 4);
    let b_addr = b.local_addr().to_string();
    let up = [("a", a.local_addr().to_string()), ("b", b_addr.clone())];
    a_status.version.store(5, Ordering::SeqCst);
    b_status.version.store(5, Ordering::SeqCst);
    assert_eq!(
        a.send("b", NodeMsg::Ping { sent_us: 0 }),
        Err(SendError::Down)
    );
    a.update(&view("a", 5, &up));
    wait("a's link to b up with an rtt", || {
        a.figures()
            .first()
            .is_some_and(|l| l.connected && l.rtt_us > 0)
    });
    wait("b sees one inbound link", || b.counts().0 == 1);
    let f = &a.figures()[0];
    assert_eq!(
        (f.peer.as_str(), f.addr.as_str(), f.capacity),
        ("b", b_addr.as_str(), 4)
    );
    assert_eq!(a.counts().1, 0, "same version: no mismatch");
    assert_eq!(a.send("b", NodeMsg::Ping { sent_us: 1 }), Ok(()));

    // b moves to another version: a counts the pongs stamped with it.
    b_status.version.store(6, Ordering::SeqCst);
    wait("a counts mismatched frames", || a.counts().1 > 0);

    // b leaves the view: the link goes and sends are refused at once.
    a.update(&view("a", 7, &up[..1]));
    assert!(a.figures().is_empty());
    assert_eq!(
        a.send("b", NodeMsg::Ping { sent_us: 2 }),
        Err(SendError::Down)
    );
    wait("b's inbound link closed", || b.counts().0 == 0);
    a.stop();
    b.stop();
}

#[test]
fn a_link_reconnects_when_its_peer_comes_back() {
    let (a, _) = node("a", 8);
    // A peer address nothing listens on yet.
    let spare = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = spare.local_addr().unwrap();
    drop(spare);
    a.update(&view("a", 1, &[("c", addr.to_string())]));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.figures()[0].connected);
    assert_eq!(
        a.send("c", NodeMsg::Ping { sent_us: 0 }),
        Err(SendError::Down)
    );
    assert!(a.figures()[0].refused >= 1);
    let status = Arc::new(Status::default());
    let c = Links::start(
        "c",
        cfg(8),
        TcpListener::bind(addr).unwrap(),
        status,
        Box::new(|_, _| {}),
    )
    .unwrap();
    wait("a reconnected to c", || a.figures()[0].connected);
    assert_eq!(a.figures()[0].connects, 1);
    a.stop();
    c.stop();
}
