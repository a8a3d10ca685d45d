//! A session that joins a group with a page of history while messages to it are in flight gets
//! every message once: those the page holds, then the rest live, with no gap between them and
//! no repeat. The messages' writes are slowed (`store.faults.sync_delay_ms`) so they are in
//! flight when the join arrives, and the reads' answers are slowed (`read_delay_ms`, the
//! PostgreSQL store's reader threads) so a read that ran before those writes committed would
//! reach the topic after the messages were already sent to the sessions attached then.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{data, unique_login, Client, Server};

/// Messages published before the join, all in flight when it arrives.
const BEFORE: u64 = 5;
/// Messages published after the join's reply.
const AFTER: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_while_messages_are_in_flight_sees_each_once_page_then_live() {
    let server = Server::start(
        1,
        "[limits]\nmsg_per_sec = 0\nmax_sessions_per_user = 0\n\
         [store.faults]\nsync_delay_ms = 200\nread_delay_ms = 500\n",
    );
    let mut owner = Client::connect(&server, "race-owner").await;
    owner.hi().await;
    let (_, token) = owner.sign_up(&unique_login("race")).await;
    let grp = owner.create_group().await;
    let mut joiner = Client::login(&server, "race-joiner", &token).await;

    // In flight: each write waits 200 ms for its sync.
    for n in 0..BEFORE {
        owner.publish_nowait(&grp, json!({ "n": n }), true).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    // The join and its page of history, then what arrives live.
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let note = |v: &serde_json::Value, seen: &mut BTreeMap<u64, usize>| {
        if let Some(d) = data(v) {
            if d["topic"] == grp.as_str() {
                let seq = d["seq"].as_u64().expect("data.seq");
                *seen.entry(seq).or_default() += 1;
            }
        }
    };
    let reply = joiner
        .sub_get(&grp, Some("data"), Some(json!({ "limit": 100 })))
        .await;
    for v in &reply {
        note(v, &mut seen);
    }
    for n in BEFORE..BEFORE + AFTER {
        owner.publish(&grp, json!({ "n": n })).await;
    }
    let total = BEFORE + AFTER;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(1..=total).all(|s| seen.contains_key(&s)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, joiner.recv()).await {
            Ok(v) => note(&v, &mut seen),
            Err(_) => break,
        }
    }
    let missing: Vec<u64> = (1..=total).filter(|s| !seen.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "the joiner never got messages {missing:?} (got {seen:?})"
    );
    // Anything still on its way would be a repeat.
    let late = tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            let v = joiner.recv().await;
            if data(&v).is_some() {
                return v;
            }
        }
    })
    .await;
    if let Ok(v) = &late {
        note(v, &mut seen);
    }
    let repeated: Vec<(u64, usize)> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, n)| (*s, *n))
        .collect();
    assert!(
        repeated.is_empty(),
        "messages the joiner got more than once: {repeated:?}"
    );
    assert_eq!(
        seen.len() as u64,
        total,
        "exactly the published messages: {seen:?}"
    );
}
