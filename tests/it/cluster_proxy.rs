//! Group topics across cluster nodes (proxied requests): a client on one node subscribes to a
//! group mastered on another, publishes, sends notes, reads history and leaves, and
//! broadcasts reach the clients of both nodes (two sessions of one node alike); the master
//! detaches the members of a node declared down; a request forwarded while the master is
//! killed gets a prompt `{ctrl 502}`, and one to a stopped (silent) master `{ctrl 504}` at its
//! deadline: never silence.
//!
//! They need a PostgreSQL (`CORETALK_TEST_PG`, tests/pg.sh) and are skipped, saying so,
//! without one; they pick their own databases, so they run in the embedded run only.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster_nodes::{master, two_nodes, wait_settled, SETTLE};
use crate::support::{unique_login, Client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_on_one_node_serves_clients_of_another_and_a_dead_master_answers_promptly() {
    let Some((mut n1, n2)) = two_nodes("").await else {
        return;
    };

    let mut a = Client::connect(&n1, "a@n1").await;
    a.hi().await;
    a.sign_up(&unique_login("pxa")).await;
    let grp = a.create_group().await;
    assert_eq!(master(&grp, &["n1", "n2"]), "n1", "{grp}");
    assert_eq!(a.publish(&grp, json!("a1")).await, 1);

    // A client of n2 joins the group n1 masters, through n2.
    let mut b = Client::connect(&n2, "b@n2").await;
    b.hi().await;
    b.sign_up(&unique_login("pxb")).await;
    b.sub(&grp).await;

    // Its publish reaches n1's client; n1's client's publish reaches it.
    assert_eq!(b.publish(&grp, json!("b2")).await, 2);
    let d = a.recv_until("data 2", |v| v["data"]["seq"] == 2).await;
    assert_eq!(d["data"]["content"], "b2", "{d}");
    assert_eq!(a.publish(&grp, json!("a3")).await, 3);
    let d = b.recv_until("data 3", |v| v["data"]["seq"] == 3).await;
    assert_eq!(d["data"]["content"], "a3", "{d}");
    assert_eq!(d["data"]["topic"], grp.as_str(), "{d}");

    // Notes cross both ways as {info}.
    b.note(&grp, "kp", 0).await;
    let i = a.recv_until("info kp", |v| v["info"]["what"] == "kp").await;
    assert_eq!(i["info"]["topic"], grp.as_str(), "{i}");
    a.note(&grp, "kp", 0).await;
    let i = b.recv_until("info kp", |v| v["info"]["what"] == "kp").await;
    assert_eq!(i["info"]["topic"], grp.as_str(), "{i}");

    // History through n2.
    let frames = b.get(&grp, "data", None).await;
    let seqs: Vec<u64> = frames
        .iter()
        .filter_map(|v| v["data"]["seq"].as_u64())
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(sorted, [1, 2, 3], "{frames:?}");

    // Leave through n2; then n1's client publishes and n2's client gets nothing of it.
    b.leave(&grp).await;
    assert_eq!(a.publish(&grp, json!("a4")).await, 4);
    b.sub(&grp).await;
    assert_eq!(a.publish(&grp, json!("a5")).await, 5);
    let d = b
        .recv_until("data after re-join", |v| v["data"].is_object())
        .await;
    assert_eq!(d["data"]["seq"], 5, "a4 came after the leave: {d}");

    // The master dies: a request forwarded to it is answered 502 or 504 promptly.
    n1.kill9();
    let killed = Instant::now();
    let id = b.publish_nowait(&grp, json!("lost"), false).await;
    let c = b.ctrl_for(&id).await;
    let took = killed.elapsed();
    eprintln!("a publish forwarded to a killed master was answered {c} after {took:?}");
    assert!(c["code"] == 502 || c["code"] == 504, "{c}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_origin_nodes_members_are_detached_by_the_master() {
    let Some((n1, mut n2)) = two_nodes("").await else {
        return;
    };
    let mut a = Client::connect(&n1, "a@n1").await;
    a.hi().await;
    a.sign_up(&unique_login("pxo")).await;
    let grp = a.create_group().await;
    let attached = |v: &serde_json::Value| v["Attachments"].as_u64().unwrap_or(0);
    let (v, _) = n1.wait_vars(SETTLE, |v| attached(v) >= 1).await;
    let before = attached(&v);

    // Two sessions of n2 join: the master counts two more members.
    let mut bs = Vec::new();
    for i in 0..2 {
        let mut b = Client::connect(&n2, &format!("b{i}@n2")).await;
        b.hi().await;
        b.sign_up(&unique_login("pxo")).await;
        b.sub(&grp).await;
        bs.push(b);
    }
    let (v, ok) = n1.wait_vars(SETTLE, |v| attached(v) == before + 2).await;
    assert!(
        ok,
        "n1 never counted the remote members: {}",
        v["Attachments"]
    );
    // One broadcast reaches both.
    assert_eq!(a.publish(&grp, json!("to both")).await, 1);
    for b in &mut bs {
        let d = b.recv_until("data 1", |v| v["data"]["seq"] == 1).await;
        assert_eq!(d["data"]["content"], "to both", "{d}");
    }

    // n2 dies: once it is declared down, the master detaches its members.
    n2.kill9();
    wait_settled(&[&n1], 1, SETTLE).await;
    let (v, ok) = n1.wait_vars(SETTLE, |v| attached(v) == before).await;
    assert!(ok, "n1 kept a dead node's members: {}", v["Attachments"]);
    assert_eq!(a.publish(&grp, json!("alone")).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_master_gets_a_forwarded_request_answered_in_time() {
    let Some((n1, n2)) = two_nodes("").await else {
        return;
    };
    let mut a = Client::connect(&n1, "a@n1").await;
    a.hi().await;
    a.sign_up(&unique_login("pxs")).await;
    let grp = a.create_group().await;
    let mut b = Client::connect(&n2, "b@n2").await;
    b.hi().await;
    b.sign_up(&unique_login("pxs")).await;
    b.sub(&grp).await;

    // The master stops answering (SIGSTOP: its sockets stay open): the request is answered
    // 504 at its deadline (`link_timeout_ms`, 1 s here) or 502 when the silent link is closed.
    n1.pause();
    let stopped = Instant::now();
    let id = b.publish_nowait(&grp, json!("unanswered"), false).await;
    let c = b.ctrl_for(&id).await;
    let took = stopped.elapsed();
    n1.signal(libc::SIGCONT);
    eprintln!("a publish forwarded to a stopped master was answered {c} after {took:?}");
    assert!(c["code"] == 504 || c["code"] == 502, "{c}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}
