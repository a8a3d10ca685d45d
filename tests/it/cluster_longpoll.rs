//! Long polling across cluster nodes: a long-poll session created on one node is used through
//! another (every send and poll forwarded over the node link, the answers relayed back), as
//! behind a load balancer without stickiness; a request for a session of a node that died gets
//! a prompt `502` with a `{ctrl}`, a poll held for it when it died too.
//!
//! They need a PostgreSQL (`CORETALK_TEST_PG`, tests/pg.sh) and are skipped, saying so,
//! without one; they pick their own databases, so they run in the embedded run only.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::clients::lp::Lp;
use crate::cluster_nodes::{master, two_nodes, wait_settled, SETTLE};
use crate::support::{b64, unique_login, Client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_session_of_one_node_works_through_another() {
    let Some((n1, n2)) = two_nodes("").await else {
        return;
    };

    // Created on n1, which its sid names; everything after goes through n2.
    let created = Lp::create(&n1).await;
    assert!(created.sid.ends_with(".n1"), "{}", created.sid);
    let mut lp = created.via(&n2);
    let hi = lp
        .request(json!({"hi": {"ver": "0.25.3", "ua": "it-lp/1.0"}}))
        .await;
    assert_eq!(hi["code"], 200, "{hi}");
    let login = unique_login("lpx");
    let secret = b64(&format!("{login}:{login}-pw"));
    let acc = lp
        .request(
            json!({"acc": {"user": "new", "scheme": "basic", "secret": secret,
            "login": true, "desc": {"public": {"fn": "LP"}}}}),
        )
        .await;
    assert_eq!(acc["code"], 200, "{acc}");
    let created = lp.request(json!({"sub": {"topic": "new"}})).await;
    assert_eq!(created["code"], 200, "{created}");
    let grp = created["topic"].as_str().expect("group name").to_owned();
    assert_eq!(
        master(&grp, &["n1", "n2"]),
        "n1",
        "created where the session is"
    );

    // The probe crosses too: a later poll answers `0`.
    let r = lp.send_raw(b"1").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""), "{r:?}");
    let r = lp.poll().await;
    assert_eq!((r.status, r.body.as_str()), (200, "0"), "{r:?}");

    // A WebSocket client of n2 joins the group (proxied to n1).
    let mut ws = Client::connect(&n2, "ws@n2").await;
    ws.hi().await;
    ws.sign_up(&unique_login("lpw")).await;
    let uid = ws.uid.clone();
    let inv = lp
        .request(json!({"set": {"topic": grp, "sub": {"user": uid, "mode": "JRWPS"}}}))
        .await;
    assert_eq!(inv["code"], 200, "{inv}");
    ws.sub(&grp).await;

    // The long-poll session publishes through n2: the ack and the {data} come back through
    // polls of n2, and the WebSocket member gets it.
    let id = lp.id();
    lp.send(json!({"pub": {"id": id, "topic": grp, "content": "over LP via n2"}}))
        .await;
    let got = lp
        .poll_until("the {data}", |v| v["data"]["content"] == "over LP via n2")
        .await;
    assert!(
        got.iter()
            .any(|v| v["ctrl"]["id"] == json!(id) && v["ctrl"]["code"] == 202),
        "no ack: {got:?}"
    );
    let d = ws
        .recv_until("the LP message", |v| {
            v["data"]["content"] == "over LP via n2"
        })
        .await;
    assert_eq!(d["data"]["topic"], grp.as_str(), "{d}");

    // And back: the WebSocket member publishes; the session polls it through n2, and
    // through n1 as well (either node serves it).
    let seq = ws.publish(&grp, json!("over WS")).await;
    let got = lp
        .poll_until("the WS message", |v| v["data"]["content"] == "over WS")
        .await;
    assert_eq!(got.last().expect("data")["data"]["seq"], seq);
    let seq = ws.publish(&grp, json!("again")).await;
    let got = lp
        .via(&n1)
        .poll_until("the second WS message", |v| v["data"]["content"] == "again")
        .await;
    assert_eq!(got.last().expect("data")["data"]["seq"], seq);

    // A forged sid naming n1 is refused by n1, through n2, as on n1 itself.
    let mut bad = lp.via(&n2);
    bad.sid = bad_sid(&lp.sid);
    let r = bad.poll().await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["ctrl"]["code"], 403, "{r:?}");
}

/// `sid` with one character of its secret changed.
fn bad_sid(sid: &str) -> String {
    let mut b = sid.as_bytes().to_vec();
    b[15] = if b[15] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).expect("a sid is ASCII")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_for_a_session_of_a_dead_node_is_answered_promptly() {
    let Some((mut n1, n2)) = two_nodes("").await else {
        return;
    };

    let mut lp = Lp::create(&n1).await.via(&n2);
    let hi = lp.request(json!({"hi": {"ver": "0.25.3"}})).await;
    assert_eq!(hi["code"], 200, "{hi}");

    // A poll held for the session (nothing is queued) when its node dies: answered 502, long
    // before the hold time (49.5 s) would have ended it.
    let held = lp.via(&n2);
    let poll = tokio::spawn(async move { held.poll().await });
    n1.kill9();
    let killed = Instant::now();
    let r = poll.await.expect("the poll task");
    eprintln!(
        "held poll answered {} after {:?}",
        r.status,
        killed.elapsed()
    );
    assert_eq!(r.status, 502, "{r:?}");
    let c = r.json();
    assert_eq!(c["ctrl"]["code"], 502, "{c}");
    assert_eq!(
        c["ctrl"]["text"],
        "the session's cluster node is unreachable"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "{:?}",
        killed.elapsed()
    );

    // Once n1 is declared down, a request for its session is refused at once.
    wait_settled(&[&n2], 1, SETTLE).await;
    let asked = Instant::now();
    let r = lp.via(&n2).send_raw(br#"{"hi":{"ver":"0.25.3"}}"#).await;
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.json()["ctrl"]["code"], 502, "{r:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}
