//! Failure without loss in a cluster. Three nodes, a group mastered on one, publishers and
//! receivers on the two others: the master is killed (`kill -9`), or stopped past its lease,
//! mid-stream; the survivors take the group over once its lease ran out, their sessions are
//! re-joined to the new master by their own nodes (no re-subscribe, no `{pres term}`) and the
//! seq gap is backfilled, so every receiver sees every stored message exactly once, in seq
//! order; publishes refused during the gap (502/503/504, or 409 while the re-join lands) are
//! retried; every acknowledged message is stored once, seqs contiguous; and a client of the
//! dead node logs in on a survivor with its token and carries on. A stopped master wakes up
//! fenced and commits nothing late. And PostgreSQL restarted under a running two-node cluster:
//! requests meanwhile get clear errors, not hangs, and afterwards both nodes are members again
//! and publishing works, without restarting a node.
//!
//! They need a PostgreSQL (`CORETALK_TEST_PG`, tests/pg.sh; the restart test starts one of its
//! own) and run in the embedded run only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster_nodes::{cluster_base, master, psql, start_node, wait_settled};
use crate::postgres::OwnPostgres;
use crate::support::{create_database, embedded_store, unique_login, Client, Server};

const SETTLE: Duration = Duration::from_secs(30);

/// A signed-up client of `node` subscribed to `grp`.
async fn member(node: &Server, name: &str, grp: &str) -> Client {
    let mut c = Client::connect(node, name).await;
    c.hi().await;
    c.sign_up(&unique_login("fo")).await;
    c.sub(grp).await;
    c
}

/// One publish attempt: the seq when acknowledged, the code otherwise. Data frames read
/// meanwhile are kept in `seen`.
async fn attempt(
    c: &mut Client,
    grp: &str,
    content: Value,
    seen: &mut Vec<Value>,
) -> Result<u64, u64> {
    let id = c.publish_nowait(grp, content, false).await;
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < SETTLE, "{}: no answer to {id}", c.name);
        let v = c.recv().await;
        if v["data"].is_object() || v["pres"]["what"] == "term" {
            seen.push(v);
            continue;
        }
        if v["ctrl"]["id"] == id.as_str() {
            let code = v["ctrl"]["code"].as_u64().unwrap_or(0);
            return match code {
                202 => Ok(v["ctrl"]["params"]["seq"].as_u64().expect("params.seq")),
                _ => Err(code),
            };
        }
    }
}

/// Reads `c`'s frames until it has seen every seq in `want`; asserts it saw each once, in
/// order, and no `{pres term}`.
async fn received_all(c: &mut Client, mut seen: Vec<Value>, want: &BTreeSet<u64>) -> Vec<u64> {
    let done = |seen: &Vec<Value>| {
        let got: BTreeSet<u64> = seen
            .iter()
            .filter_map(|v| v["data"]["seq"].as_u64())
            .collect();
        want.is_subset(&got)
    };
    let started = Instant::now();
    while !done(&seen) {
        assert!(
            started.elapsed() < SETTLE,
            "{}: not all of {want:?}",
            c.name
        );
        let v = c.recv().await;
        if v["data"].is_object() || v["pres"]["what"] == "term" {
            seen.push(v);
        }
    }
    let terms: Vec<&Value> = seen.iter().filter(|v| v["pres"].is_object()).collect();
    assert!(
        terms.is_empty(),
        "{}: told the topic is gone: {terms:?}",
        c.name
    );
    let seqs: Vec<u64> = seen
        .iter()
        .filter_map(|v| v["data"]["seq"].as_u64())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "{}: data not once each in seq order: {seqs:?}",
        c.name
    );
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_loses_nothing_and_its_groups_clients_keep_chatting() {
    failover(Failure::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_stopped_past_its_lease_is_taken_over_the_same_way() {
    failover(Failure::Stop).await;
}

/// How the master fails: `kill -9`, or `SIGSTOP` (it is fenced once its lease runs out; it
/// wakes up at the end, when its late commits must be refused).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failure {
    Kill,
    Stop,
}

async fn failover(how: Failure) {
    let Some(base) = cluster_base() else { return };
    let url = create_database(&base);
    let mut n1 = start_node("n1", &url);
    let n2 = start_node("n2", &url);
    let n3 = start_node("n3", &url);
    wait_settled(&[&n1, &n2, &n3], 3, SETTLE).await;

    let mut owner = Client::connect(&n1, "owner@n1").await;
    owner.hi().await;
    let (_, token) = owner.sign_up(&unique_login("fo")).await;
    let grp = owner.create_group().await;
    assert_eq!(master(&grp, &["n1", "n2", "n3"]), "n1", "{grp}");
    let mut pubs = [
        member(&n2, "pub@n2", &grp).await,
        member(&n3, "pub@n3", &grp).await,
    ];
    let mut recvs = [
        member(&n2, "recv@n2", &grp).await,
        member(&n3, "recv@n3", &grp).await,
    ];
    // A member that publishes with `noecho`: it never gets its own messages as `{data}`, not
    // even from the backfill after the failover.
    let mut quiet = member(&n2, "quiet@n2", &grp).await;

    // Publishing from both survivors-to-be, one request in flight each; acknowledged
    // messages by seq, and what each publisher read meanwhile.
    let mut acked: BTreeMap<u64, Value> = BTreeMap::new();
    let mut refused: Vec<u64> = Vec::new();
    let mut seen: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    let mut tries = 0u64;
    for n in 0..15u64 {
        for (i, p) in pubs.iter_mut().enumerate() {
            tries += 1;
            let content = json!({"from": i, "n": n, "try": tries});
            // (A debug build on a loaded machine may miss `link_timeout_ms`: 504, not acked.)
            match attempt(p, &grp, content.clone(), &mut seen[i]).await {
                Ok(seq) => assert!(
                    acked.insert(seq, content).is_none(),
                    "seq {seq} acknowledged twice"
                ),
                Err(504) => refused.push(504),
                Err(c) => panic!("a publish before the failure answered {c}"),
            }
        }
    }

    let (mut quiet_seen, mut quiet_own) = (Vec::new(), BTreeSet::new());
    for n in 0..3 {
        let content = json!({"quiet": n});
        let id = quiet.publish_nowait(&grp, content.clone(), true).await;
        loop {
            let v = quiet.recv().await;
            if v["data"].is_object() {
                quiet_seen.push(v);
            } else if v["ctrl"]["id"] == id.as_str() {
                assert_eq!(v["ctrl"]["code"], 202, "{v}");
                let seq = v["ctrl"]["params"]["seq"].as_u64().expect("params.seq");
                quiet_own.insert(seq);
                acked.insert(seq, content);
                break;
            }
        }
    }

    // Killed: the master's own client sends a burst without waiting, and the master dies
    // with some of it committed and maybe not yet broadcast; and, for certain, a gap:
    // messages "committed by the dead master but never broadcast", written straight into the
    // database before a survivor takes the group over (it loads the group, and its seq, from
    // there once the lease ran out). Stopped: it stops idle (a master stopped inside a commit
    // holds its membership row, which its fence locks, so the takeover waits until it
    // resumes: no two masters, but no failover either; and the rows written here would wait
    // on its locks).
    let killed = match how {
        Failure::Kill => {
            for n in 0..10 {
                owner.publish_nowait(&grp, json!({"owner": n}), false).await;
            }
            n1.kill9();
            let killed = Instant::now();
            let gap = psql(
                &url,
                &format!(
                    "INSERT INTO messages (topic, seq, ts, from_user, head, content, deleted) \
                     SELECT '{grp}', m + g, 0, 0, NULL, '\"gap ' || g || '\"', false \
                     FROM (SELECT max(seq) AS m FROM messages WHERE topic = '{grp}') x, \
                     generate_series(1, 3) g RETURNING seq"
                ),
            );
            eprintln!("seqs written behind the survivors' backs: {gap:?}");
            assert_eq!(gap.lines().count(), 3, "{gap}");
            killed
        }
        Failure::Stop => {
            n1.pause();
            Instant::now()
        }
    };

    // The survivors keep publishing: refusals while the cluster settles are retried, and each
    // publisher must get 20 acknowledgements after the kill without re-subscribing.
    let mut after = [0usize; 2];
    let mut n = 15u64;
    while after.iter().any(|a| *a < 20) {
        assert!(
            killed.elapsed() < Duration::from_secs(90),
            "publishing never recovered: {refused:?}"
        );
        for (i, p) in pubs.iter_mut().enumerate() {
            if after[i] >= 20 {
                continue;
            }
            tries += 1;
            let content = json!({"from": i, "n": n, "try": tries});
            match attempt(p, &grp, content.clone(), &mut seen[i]).await {
                Ok(seq) => {
                    assert!(
                        acked.insert(seq, content).is_none(),
                        "seq {seq} acknowledged twice"
                    );
                    after[i] += 1;
                }
                Err(code) => {
                    assert!(
                        matches!(code, 409 | 502 | 503 | 504),
                        "a publish during the failover answered {code}"
                    );
                    refused.push(code);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        n += 1;
    }
    eprintln!(
        "after the master failed: {} refusals while settling ({refused:?}), recovered after {:?}",
        refused.len(),
        killed.elapsed()
    );

    // A client of the dead node logs in on a survivor with its token and carries on.
    let mut back = Client::login(&n2, "owner@n2", &token).await;
    back.sub(&grp).await;
    let seq = back.publish(&grp, json!({"owner": "back"})).await;
    acked.insert(seq, json!({"owner": "back"}));

    // The database: seqs 1..=max once each; every acknowledged message at its seq.
    let rows = psql(
        &url,
        &format!(
            "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM messages WHERE topic = '{grp}'"
        ),
    );
    let max = psql(
        &url,
        &format!("SELECT max(seq) FROM messages WHERE topic = '{grp}'"),
    );
    let max: u64 = max.parse().expect("max seq");
    assert_eq!(
        rows,
        format!("{max}|{max}|1|{max}"),
        "count|distinct|min|max"
    );
    for (seq, content) in &acked {
        let stored = psql(
            &url,
            &format!("SELECT content FROM messages WHERE topic = '{grp}' AND seq = {seq}"),
        );
        let stored: Value = serde_json::from_str(&stored).expect("stored content is JSON");
        assert_eq!(&stored, content, "seq {seq}");
    }
    // `{get data}` agrees on the newest page.
    let frames = back.get(&grp, "data", Some(json!({"limit": 50}))).await;
    let page: BTreeSet<u64> = frames
        .iter()
        .filter_map(|v| v["data"]["seq"].as_u64())
        .collect();
    assert_eq!(
        page,
        (max.saturating_sub(49).max(1)..=max).collect(),
        "{frames:?}"
    );

    // Every receiver and publisher on a survivor saw every stored message (the ones the dead
    // master committed but never broadcast included) once each, in order.
    let all: BTreeSet<u64> = (1..=max).collect();
    for (i, c) in recvs.iter_mut().enumerate() {
        received_all(c, Vec::new(), &all).await;
        eprintln!("receiver {i} saw all {max} messages once each, in order");
    }
    for (i, p) in pubs.iter_mut().enumerate() {
        received_all(p, std::mem::take(&mut seen[i]), &all).await;
    }
    let others: BTreeSet<u64> = all.difference(&quiet_own).copied().collect();
    let got = received_all(&mut quiet, quiet_seen, &others).await;
    assert!(
        got.iter().all(|s| !quiet_own.contains(s)),
        "the noecho publisher was shown its own messages {quiet_own:?}: {got:?}"
    );

    // A stopped master wakes up fenced: what it still had to commit is refused, and once it
    // re-joined (and took its group back) the seqs are still unique and contiguous.
    if how == Failure::Stop {
        n1.signal(libc::SIGCONT);
        let (v, ok) = n1.wait_vars(SETTLE, |v| v["ClusterEpoch"] == 2).await;
        assert!(ok, "n1 never re-joined: {v}");
        // The group moved back to n1 (`{pres term}` for its sessions elsewhere, as the
        // reference): subscribe again where needed.
        let started = Instant::now();
        let seq = loop {
            assert!(
                started.elapsed() < SETTLE,
                "publishing after the wake-up never worked"
            );
            let mut none = Vec::new();
            match attempt(&mut back, &grp, json!("after the wake-up"), &mut none).await {
                Ok(seq) => break seq,
                Err(409) => {
                    back.sub_get(&grp, None, None).await;
                }
                Err(code) => {
                    assert!(matches!(code, 502..=504), "{code}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        assert!(seq > max, "{seq} after {max}");
        let rows = psql(
            &url,
            &format!(
                "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM messages WHERE topic = '{grp}'"
            ),
        );
        assert_eq!(
            rows,
            format!("{seq}|{seq}|1|{seq}"),
            "count|distinct|min|max"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_a_cluster_gives_clear_errors_and_recovers_without_restarts() {
    if !embedded_store() {
        eprintln!("skipped: the cluster tests pick their own databases (embedded run only)");
        return;
    }
    let pg = Arc::new(OwnPostgres::start());
    let url = create_database(&pg.base);
    let n1 = start_node("n1", &url);
    let n2 = start_node("n2", &url);
    wait_settled(&[&n1, &n2], 2, SETTLE).await;
    let mut a = Client::connect(&n1, "a@n1").await;
    a.hi().await;
    a.sign_up(&unique_login("fopg")).await;
    let grp = a.create_group().await;
    let mut b = member(&n2, "b@n2", &grp).await;
    assert_eq!(b.publish(&grp, json!("before")).await, 1);

    // PostgreSQL goes away for 3 s (longer than the lease): requests meanwhile are answered,
    // with an error, well within the client's patience.
    let restarting = {
        let pg = pg.clone();
        tokio::task::spawn_blocking(move || pg.restart(Duration::from_secs(3)))
    };
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let mut codes = Vec::new();
    for c in [&mut a, &mut b] {
        let asked = Instant::now();
        let id = c.publish_nowait(&grp, json!("during"), false).await;
        let frames = c
            .collect_until("the answer", |v| v["ctrl"]["id"] == id.as_str())
            .await;
        let r = &frames[frames.len() - 1]["ctrl"];
        let code = r["code"].as_u64().unwrap_or(0);
        eprintln!(
            "{}: a publish while PostgreSQL is down: {r} after {:?}",
            c.name,
            asked.elapsed()
        );
        // A store error; or, once the master fenced itself (a lease without PostgreSQL), "must
        // attach first" after the `{pres term}` that told the session the topic is gone.
        let termed = frames.iter().any(|v| v["pres"]["what"] == "term");
        assert!(
            code >= 500 || (code == 409 && termed),
            "{}: {frames:?}",
            c.name
        );
        assert!(
            asked.elapsed() < Duration::from_secs(15),
            "{:?}",
            asked.elapsed()
        );
        codes.push(code);
    }
    // A login (a read) is answered too.
    let mut c = Client::connect(&n2, "login@n2").await;
    c.hi().await;
    let id = c.id();
    let asked = Instant::now();
    c.send(json!({"login": {"id": id, "scheme": "token", "secret": a.token.clone()}}))
        .await;
    let r = c.ctrl_for(&id).await;
    eprintln!(
        "a token login while PostgreSQL is down: {r} after {:?}",
        asked.elapsed()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    restarting.await.expect("restart");

    // Both nodes are members again by themselves.
    // (Its lease ran out meanwhile: each node fenced itself and re-joined under epoch 2.)
    let mut vars = Vec::new();
    for n in [&n1, &n2] {
        let (v, ok) = n
            .wait_vars(SETTLE, |v| {
                crate::cluster_nodes::settled(v, 2) && v["ClusterEpoch"].as_i64() >= Some(2)
            })
            .await;
        assert!(ok, "a node never re-joined: {v}");
        vars.push(v);
    }
    eprintln!(
        "members again, epochs {} and {}",
        vars[0]["ClusterEpoch"], vars[1]["ClusterEpoch"]
    );

    // Publishing works again (a session the cluster told `{pres term}` subscribes again).
    let started = Instant::now();
    let mut recovered = Vec::new();
    for c in [&mut a, &mut b] {
        loop {
            assert!(
                started.elapsed() < SETTLE,
                "{}: publishing never recovered",
                c.name
            );
            let id = c.publish_nowait(&grp, json!("after"), false).await;
            let r = c.ctrl_for(&id).await;
            match r["code"].as_u64() {
                Some(202) => break,
                Some(409) => {
                    let s = c.sub_get(&grp, None, None).await;
                    eprintln!("{}: re-subscribed: {}", c.name, s.last().expect("reply"));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            recovered.push(r["code"].clone());
        }
    }
    eprintln!("after the restart: {recovered:?} before the first 202s");
    let frames = b.get(&grp, "data", None).await;
    let got: Vec<&Value> = frames.iter().filter(|v| v["data"].is_object()).collect();
    assert!(
        got.iter().any(|v| v["data"]["content"] == "after"),
        "{frames:?}"
    );
}
