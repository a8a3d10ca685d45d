//! Many messages released to a group at once reach the members that read, even when they
//! outnumber `session.outbound_max_frames`. A stalled durable sync (injected with
//! `store.faults.sync_delay_ms`) holds every message published meanwhile, and its end releases
//! them together: each member's queue then fills within one pass of the shard. A full queue is
//! written to its socket before it counts as an overflow, so only a member that does not read
//! is cut (that one is `slow_consumers.rs`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{code, ctrl, data, unique_login, Client, Server};

/// `session.outbound_max_frames` in this run.
const QUEUE: u64 = 16;
/// Messages published back to back while the first one's sync stalls: five queues' worth.
const MESSAGES: u64 = 5 * QUEUE;
/// Members reading the group (sessions of the owner's account).
const MEMBERS: usize = 4;

/// Reads `MESSAGES` data messages, asserting they arrive in order, none missing.
async fn read_all(mut c: Client) -> Client {
    let mut next = 0;
    while next < MESSAGES {
        let v = c.recv().await;
        if let Some(d) = data(&v) {
            assert_eq!(
                d["content"]["n"], next,
                "{}: in order, none missing",
                c.name
            );
            next += 1;
        }
    }
    c
}

/// Reads the publisher's replies until every `{pub}` is answered; returns their codes.
async fn acks(p: &mut Client) -> Vec<u64> {
    let mut codes = Vec::new();
    while (codes.len() as u64) < MESSAGES {
        let v: Value = p.recv().await;
        if ctrl(&v).is_some_and(|c| c["id"].is_string()) {
            codes.push(code(&v).expect("ctrl code"));
        }
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_larger_than_the_queue_reaches_members_that_read() {
    let server = Server::start(
        1,
        &format!(
            "[limits]\nmsg_per_sec = 0\nmax_sessions_per_user = 0\n\
             [session]\noutbound_max_frames = {QUEUE}\n\
             [store.faults]\nsync_delay_ms = 300\n"
        ),
    );
    let mut owner = Client::connect(&server, "burst-owner").await;
    owner.hi().await;
    let (_, token) = owner.sign_up(&unique_login("burst")).await;
    let grp = owner.create_group().await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let mut c = Client::login(&server, &format!("burst-member{i}"), &token).await;
        c.sub(&grp).await;
        members.push(c);
    }
    let readers: Vec<_> = members
        .into_iter()
        .map(|c| tokio::spawn(read_all(c)))
        .collect();

    // Back to back: the first message's sync takes 300 ms, and the rest arrive meanwhile, so
    // they are synced and released together.
    for n in 0..MESSAGES {
        owner.publish_nowait(&grp, json!({ "n": n }), true).await;
    }
    let codes = tokio::time::timeout(Duration::from_secs(30), acks(&mut owner))
        .await
        .expect("every {pub} answered");
    assert!(codes.iter().all(|&c| c == 202), "acks: {codes:?}");
    let mut members = Vec::new();
    for r in readers {
        let c = tokio::time::timeout(Duration::from_secs(30), r)
            .await
            .expect("a member did not get every message")
            .expect("reader task");
        members.push(c);
    }

    // Nobody was cut: no slow consumer counted, every session still open.
    let v = server.vars();
    assert_eq!(v["SlowConsumersTotal"], 0, "{v}");
    let sessions: u64 = v["Shards"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["sessions"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(sessions, 1 + MEMBERS as u64, "{v}");
    drop(members);
}
