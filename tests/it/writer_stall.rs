//! The store's durable sync stalling (a slow fsync, injected with `store.faults.sync_delay_ms`):
//! a publish waits for it, and meanwhile other sessions' reads (`{get data}`, `{get desc}`, a
//! token login) and WebSocket pings, on the stalled shard and on the other one, are answered
//! while the sync is still in progress; `/debug/vars` and `/metrics` report the sync's age and
//! count the stall, the log says when it began and ended, and once the sync completes the
//! publish is acknowledged and the ages are back to 0.
//!
//! Two runs: with the journal (the default: a publish waits for its shard's journal sync) and
//! without it (it waits for the store thread's durable commit, as with PostgreSQL). The order of
//! events is what is asserted (answered while the sync is seen in progress), with a 3 s delay so
//! that a busy machine has plenty of room; the data is made before the fault is switched on.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::prom_text;
use crate::support::{
    code, data, embedded_store, home_shard, http_raw, unique_login, Client, Server, API_KEY,
};

/// The injected delay of every durable sync.
const DELAY_MS: u64 = 3000;
/// `store.stall_warn_ms` in these runs: a stall is counted well before the sync ends.
const WARN_MS: u64 = 500;
/// Messages in the history that other sessions read during the stall.
const HISTORY: u64 = 5;

/// Which figures report the sync a publish waits for.
struct Figures {
    age_var: &'static str,
    stalls_var: &'static str,
    age_metric: &'static str,
    stalls_metric: &'static str,
    what: &'static str,
}

const JOURNAL: Figures = Figures {
    age_var: "JournalSyncAge",
    stalls_var: "JournalStallsTotal",
    age_metric: "coretalk_journal_sync_age_seconds",
    stalls_metric: "coretalk_journal_stalls_total",
    what: "journal sync",
};

const STORE: Figures = Figures {
    age_var: "StoreCommitAge",
    stalls_var: "StoreStallsTotal",
    age_metric: "coretalk_store_commit_age_seconds",
    stalls_metric: "coretalk_store_stalls_total",
    what: "store commit",
};

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("/debug/vars has no number {key}: {v}"))
}

fn metrics(server: &Server) -> prom_text::Exposition {
    let (status, body) = http_raw(
        server.port(),
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{body}");
    prom_text::parse(&body).unwrap_or_else(|e| panic!("/metrics is not valid: {e}\n{body}"))
}

/// No durable sync in progress and nothing queued for the store thread.
fn quiet(v: &Value) -> bool {
    num(v, "StoreCommitAge") == 0.0
        && num(v, "JournalSyncAge") == 0.0
        && num(v, "StoreQueued") == 0.0
}

/// A WebSocket ping answered by its pong (any other frame meanwhile is ignored).
async fn ping(c: &mut Client, payload: &[u8]) {
    c.ws.send(Message::Ping(payload.to_vec().into()))
        .await
        .expect("send ping");
    let pong = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match c.ws.next().await {
                Some(Ok(Message::Pong(p))) if p.as_ref() == payload => return true,
                Some(Ok(_)) => continue,
                _ => return false,
            }
        }
    })
    .await;
    assert_eq!(pong, Ok(true), "{}: no pong", c.name);
}

/// Frames of a `{get data}` reply that are messages.
fn messages(frames: &[Value]) -> usize {
    frames.iter().filter_map(data).count()
}

async fn stalled_sync_leaves_other_sessions_answering(journal: bool) {
    let fig = if journal && embedded_store() {
        &JOURNAL
    } else {
        &STORE
    };
    let base = format!(
        "[listen]\nshard_ports = true\n\n[store]\nstall_warn_ms = {WARN_MS}\njournal = {journal}\n"
    );
    let mut server = Server::start(2, &base);

    // The data, made before the fault is on: A's group G1, B's group G2 on the same home shard
    // with a short history.
    let mut a = Client::connect(&server, "stall-a").await;
    a.hi().await;
    let (_, token_a) = a.sign_up(&unique_login("stalla")).await;
    let g1 = a.create_group().await;
    let home = home_shard(&g1, 2);
    let mut b = Client::connect(&server, "stall-b").await;
    b.hi().await;
    let (_, token_b) = b.sign_up(&unique_login("stallb")).await;
    let mut g2 = None;
    for _ in 0..32 {
        let g = b.create_group().await;
        if home_shard(&g, 2) == home {
            g2 = Some(g);
            break;
        }
    }
    let g2 = g2.expect("a group on G1's home shard");
    for n in 0..HISTORY {
        b.publish(&g2, json!({ "n": n })).await;
    }
    a.close().await;
    b.close().await;

    // Every durable sync now takes DELAY_MS.
    server.rewrite_config(&format!(
        "[auth]\nbcrypt_cost = 4\n\n{base}\n[store.faults]\nsync_delay_ms = {DELAY_MS}\n"
    ));
    server.restart();
    assert!(
        server.log().contains("FAULT INJECTION ON"),
        "no start-up warning:\n{}",
        server.stderr_tail()
    );
    let url = |i: usize| {
        format!(
            "ws://127.0.0.1:{}/v0/channels?apikey={API_KEY}",
            server.shard_port(i)
        )
    };
    // A and B on G1's home shard (whose journal stalls), C on the other one.
    let mut a = Client::login_url(&url(home), "stall-a2", &token_a).await;
    a.sub(&g1).await;
    let mut b = Client::login_url(&url(home), "stall-b2", &token_b).await;
    b.sub(&g2).await;
    let mut c = Client::connect_url(&url(1 - home), "stall-c").await;
    c.hi().await;
    // Whatever the logins and joins wrote has been synced.
    let (v, ok) = server.wait_vars(Duration::from_secs(60), quiet).await;
    assert!(ok, "the store did not settle before the publish: {v}");
    let stalls_before = num(&v, fig.stalls_var);

    // The publish: its sync is seen in progress.
    let t0 = Instant::now();
    let pub_id = a.publish_nowait(&g1, json!("stalled"), true).await;
    let (v, ok) = server
        .wait_vars(Duration::from_secs(20), |v| num(v, fig.age_var) > 0.0)
        .await;
    assert!(
        ok,
        "no {} seen in progress after the publish: {v}",
        fig.what
    );

    // Other sessions: reads on the stalled shard, a login (a read) and pings on the other one.
    let t1 = Instant::now();
    let page = b.get(&g2, "data", None).await;
    assert_eq!(messages(&page), HISTORY as usize, "{page:?}");
    assert_eq!(code(page.last().unwrap()), Some(208), "{page:?}");
    let desc = b.get(&g2, "desc", None).await;
    assert!(
        desc.iter().any(|f| f["meta"]["desc"].is_object()),
        "{desc:?}"
    );
    ping(&mut b, b"b").await;
    ping(&mut c, b"c").await;
    c.login_token(&token_b).await;
    ping(&mut c, b"c2").await;
    let answered_in = t1.elapsed();
    // ...all while the publish's sync is still in progress.
    let v = server.vars();
    assert!(
        num(&v, fig.age_var) > 0.0,
        "the {} ended before the other sessions were answered ({answered_in:?}): {v}",
        fig.what
    );

    // The stall is counted while it lasts, in both exports.
    let (v, ok) = server
        .wait_vars(Duration::from_secs(20), |v| {
            num(v, fig.stalls_var) > stalls_before
        })
        .await;
    assert!(ok, "the stall was not counted: {v}");
    let m = metrics(&server);
    let age_then = num(&v, fig.age_var);
    assert!(age_then > 0.0, "counted only after it ended: {v}");
    assert!(
        m.sum(fig.age_metric, &[]) > 0.0,
        "{:?}",
        m.find(fig.age_metric, &[])
    );
    assert!(m.sum(fig.stalls_metric, &[]) >= 1.0);

    // The sync completes: the publish is acknowledged, no earlier than the delay.
    let ack = a.ctrl_for(&pub_id).await;
    assert_eq!(ack["code"], 202, "{ack}");
    let acked_in = t0.elapsed();
    assert!(
        acked_in >= Duration::from_millis(DELAY_MS / 2),
        "acknowledged after {acked_in:?}: the sync was not delayed"
    );
    let (v, ok) = server.wait_vars(Duration::from_secs(60), quiet).await;
    assert!(ok, "the sync ages did not go back to 0: {v}");
    assert!(num(&v, fig.stalls_var) > stalls_before);
    let m = metrics(&server);
    assert_eq!(m.sum("coretalk_journal_sync_age_seconds", &[]), 0.0);
    assert_eq!(m.sum("coretalk_store_commit_age_seconds", &[]), 0.0);
    assert!(m.sum(fig.stalls_metric, &[]) >= 1.0);

    // The log said when it began and when it ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("store stall over") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = server.log();
    assert!(
        log.contains(&format!("store stall: a {}", fig.what)),
        "{log}"
    );
    assert!(log.contains("store stall over"), "{log}");
    eprintln!(
        "{}: others answered in {answered_in:?} during the stall, publish acked after {acked_in:?}, stall seen at {age_then} s",
        fig.what
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_journal_sync_leaves_other_sessions_answering() {
    stalled_sync_leaves_other_sessions_answering(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_commit_leaves_other_sessions_answering() {
    stalled_sync_leaves_other_sessions_answering(false).await;
}

/// With the journal, a store commit that stalls must not hold up reads of other topics even
/// when a publish's write behind is queued after it: only reads of a topic with unapplied
/// writes of its own queue on the store thread (`src/shard/behind.rs`). Here a `{set desc}` (a
/// durable commit) stalls, a publish to G1 queues its write behind it, and a history read of
/// G2 is answered while the commit still stalls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_other_topics_do_not_wait_for_a_stalled_store_commit() {
    if !embedded_store() {
        return; // PostgreSQL has no writes behind: its reads never queue on the store thread
    }
    let base = format!("[store]\nstall_warn_ms = {WARN_MS}\n");
    let mut server = Server::start(1, &base);
    let mut a = Client::connect(&server, "gap-a").await;
    a.hi().await;
    let (_, token) = a.sign_up(&unique_login("gapa")).await;
    let g1 = a.create_group().await;
    let g2 = a.create_group().await;
    for n in 0..HISTORY {
        a.publish(&g2, json!({ "n": n })).await;
    }
    a.close().await;
    server.rewrite_config(&format!(
        "[auth]\nbcrypt_cost = 4\n\n{base}\n[store.faults]\nsync_delay_ms = {DELAY_MS}\n"
    ));
    server.restart();
    let mut a = Client::login(&server, "gap-a2", &token).await;
    a.sub(&g1).await;
    let mut b = Client::login(&server, "gap-b2", &token).await;
    b.sub(&g2).await;
    let (v, ok) = server.wait_vars(Duration::from_secs(60), quiet).await;
    assert!(ok, "{v}");
    let id = a.id();
    a.send(json!({"set": {"id": id, "topic": g1, "desc": {"public": {"fn": "slow"}}}}))
        .await;
    let (v, ok) = server
        .wait_vars(Duration::from_secs(20), |v| num(v, "StoreCommitAge") > 0.0)
        .await;
    assert!(ok, "{v}");
    let _ = a.publish_nowait(&g1, json!("behind"), true).await;
    // Its journal round is syncing: its write behind was queued in the same step.
    let (v, ok) = server
        .wait_vars(Duration::from_secs(20), |v| num(v, "JournalSyncAge") > 0.0)
        .await;
    assert!(ok, "{v}");
    let page = b.get(&g2, "data", None).await;
    assert_eq!(messages(&page), HISTORY as usize, "{page:?}");
    let v = server.vars();
    assert!(
        num(&v, "StoreCommitAge") > 0.0,
        "the read of another topic waited for the stalled commit: {v}"
    );
}
