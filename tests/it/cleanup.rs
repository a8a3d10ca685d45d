//! Nothing leaks: thousands of sessions that log in, attach and go away (politely or not)
//! leave no session, attachment or topic behind, and the server's memory returns to its
//! post-warm-up baseline.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{b64, unique_login, Client, Server};

/// Sessions per round.
const SESSIONS: usize = 5_000;
/// Concurrent connections per batch (the process limit on open files is 20,000).
const BATCH: usize = 250;
/// Users the sessions log in as.
const USERS: usize = 8;
/// Longest wait for the server to drop everything after a round.
const SETTLE: Duration = Duration::from_secs(30);

/// The server holds no session, attachment or topic.
fn idle(v: &Value) -> bool {
    v["LiveSessions"] == 0 && v["Attachments"] == 0 && v["LiveTopics"] == 0 && v["PendingAuth"] == 0
}

async fn wait_idle(server: &Server, when: &str) -> Value {
    let (v, ok) = server.wait_vars(SETTLE, idle).await;
    assert!(
        ok,
        "{when}: the server still holds sessions/attachments/topics/auth work after {SETTLE:?}: LiveSessions={} Attachments={} LiveTopics={} PendingAuth={} Shards={}",
        v["LiveSessions"], v["Attachments"], v["LiveTopics"], v["PendingAuth"], v["Shards"]
    );
    v
}

/// One session's life: hi, token login, sub the group, sometimes `me` and a message. One in
/// ten leaves without waiting for its subscriptions (or a group creation) to be answered, so
/// joins complete after the session is gone. `None` when the session already went away.
async fn session(
    url: String,
    i: usize,
    (login, token): (String, String),
    grp: String,
) -> Option<Client> {
    if i % 100 == 13 {
        // A password login (hashed off the executors) whose session is gone before the answer.
        let mut c = Client::connect_url(&url, &format!("s{i}")).await;
        c.hi().await;
        let secret = b64(&format!("{login}:{login}-pw"));
        c.send(json!({"login": {"id": "l", "scheme": "basic", "secret": secret}}))
            .await;
        c.drop_abruptly();
        return None;
    }
    let mut c = Client::login_url(&url, &format!("s{i}"), &token).await;
    if i % 10 == 7 {
        c.send(json!({"sub": {"id": "x1", "topic": grp}})).await;
        c.send(json!({"sub": {"id": "x2", "topic": "me"}})).await;
        if i % 20 == 7 {
            c.send(json!({"sub": {"id": "x3", "topic": "new"}})).await;
            c.send(json!({"pub": {"id": "x4", "topic": grp, "content": "bye"}}))
                .await;
        }
        c.drop_abruptly();
        return None;
    }
    c.sub(&grp).await;
    if i.is_multiple_of(4) {
        c.sub("me").await;
    }
    if i.is_multiple_of(50) {
        c.publish(&grp, json!({"from": i})).await;
    }
    Some(c)
}

/// Runs `SESSIONS` sessions in batches of `BATCH`; returns the peak RSS seen (KiB), sampled
/// while each batch is connected.
async fn round(server: &Server, users: &[(String, String)], grp: &str, offset: usize) -> u64 {
    let url = server.ws_url();
    let mut peak = 0;
    for b in 0..SESSIONS / BATCH {
        let tasks: Vec<_> = (0..BATCH)
            .map(|k| {
                let i = offset + b * BATCH + k;
                tokio::spawn(session(
                    url.clone(),
                    i,
                    users[i % USERS].clone(),
                    grp.to_owned(),
                ))
            })
            .collect();
        let mut clients = Vec::with_capacity(BATCH);
        for t in tasks {
            let c = t
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            clients.extend(c);
        }
        peak = peak.max(server.rss_kib());
        // Half close the WebSocket properly, half just drop the TCP connection.
        let mut closing = Vec::new();
        for (k, c) in clients.into_iter().enumerate() {
            if k % 2 == 0 {
                closing.push(tokio::spawn(c.close()));
            } else {
                c.drop_abruptly();
            }
        }
        for t in closing {
            t.await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        }
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_attachments_topics_and_memory_are_released() {
    let server = Server::start(2, "[topic]\nidle_unload_ms = 500\n");

    // Users, all members of one group.
    let mut users = Vec::new();
    let mut setup = Vec::new();
    for u in 0..USERS {
        let mut c = Client::connect(&server, &format!("setup{u}")).await;
        c.hi().await;
        let login = unique_login("leak");
        let (_, token) = c.sign_up(&login).await;
        users.push((login, token));
        setup.push(c);
    }
    let grp = setup[0].create_group().await;
    for c in setup.iter_mut().skip(1) {
        c.sub(&grp).await;
    }
    for c in setup {
        c.close().await;
    }
    wait_idle(&server, "after setup").await;

    // Warm-up: allocator pools, tables and buffers reach their working size.
    round(&server, &users, &grp, 0).await;
    let before = wait_idle(&server, "after the warm-up round").await;
    let baseline = server.rss_kib();
    let total_before = before["TotalSessions"].as_u64().expect("TotalSessions");

    let peak = round(&server, &users, &grp, SESSIONS).await;
    let after_vars = wait_idle(&server, "after the measured round").await;
    let after = server.rss_kib();
    let total_after = after_vars["TotalSessions"].as_u64().expect("TotalSessions");

    let growth = peak.saturating_sub(baseline);
    let allowed = baseline + (growth / 4).max(16 * 1024);
    println!(
        "RSS: baseline {baseline} KiB, peak {peak} KiB, after {after} KiB (allowed up to {allowed} KiB); TotalSessions {total_before} -> {total_after}"
    );
    assert_eq!(
        total_after - total_before,
        SESSIONS as u64,
        "every session of the round was counted once"
    );
    assert_eq!(after_vars["SlowConsumersTotal"], 0, "{after_vars}");
    for (i, s) in after_vars["Shards"]
        .as_array()
        .expect("Shards")
        .iter()
        .enumerate()
    {
        assert_eq!(
            s,
            &json!({"sessions": 0, "topics": 0, "attachments": 0}),
            "shard {i}"
        );
    }
    assert!(
        after <= allowed,
        "RSS did not return to baseline: baseline {baseline} KiB, peak {peak} KiB, after {after} KiB > allowed {allowed} KiB"
    );

    // The server still works.
    let mut c = Client::login(&server, "after", &users[0].1).await;
    c.sub(&grp).await;
    c.publish(&grp, json!("still alive")).await;
}
