//! The slow-consumer policy in a large group: 150 members read, 20 stop reading (with small
//! receive buffers, as a phone that went to sleep). The readers receive every message in order
//! with their latency unchanged, the stalled sessions are cut once their writes have been
//! blocked for `session.write_stall_ms`, and the server's memory stays bounded by the queue
//! and socket-buffer limits (tuning/queues.md).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use socket2::{Domain, Socket, Type};
use tokio_tungstenite::MaybeTlsStream;

use crate::support::{data, unique_login, Client, Server};

const READERS: usize = 150;
const STALLED: usize = 20;
const BASELINE: usize = 100;
const LOADED: usize = 300;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A client whose socket has a 4 KiB receive buffer, so that it fills fast once unread.
pub(crate) async fn tiny_buffer_client(server: &Server, name: &str, token: &str) -> Client {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    s.connect(&addr.into()).unwrap();
    s.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(s.into()).unwrap();
    let (ws, _) = tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let mut c = Client::from_ws(ws, name);
    c.hi().await;
    c.login_token(token).await;
    c
}

/// Reads `count` data messages (1 KB each) and returns each one's latency, ms, in order.
async fn read_messages(mut c: Client, from: u64, count: usize) -> (Client, Vec<u64>) {
    let mut lat = Vec::with_capacity(count);
    let mut next = from;
    while lat.len() < count {
        let v = c.recv().await;
        if let Some(d) = data(&v) {
            let n = d["content"]["n"].as_u64().expect("n");
            assert_eq!(n, next, "{}: messages in order, none missing", c.name);
            next += 1;
            lat.push(now_ms().saturating_sub(d["content"]["t"].as_u64().expect("t")));
        }
    }
    (c, lat)
}

async fn publish(p: &mut Client, grp: &str, from: u64, count: usize) {
    let pad = "x".repeat(1000);
    for n in from..from + count as u64 {
        p.publish_nowait(grp, json!({"n": n, "t": now_ms(), "pad": pad}), true)
            .await;
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
}

fn p99(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// Runs every reader over `count` messages from `from` while the publisher sends them.
async fn round(
    readers: Vec<Client>,
    publisher: &mut Client,
    grp: &str,
    from: u64,
    count: usize,
) -> (Vec<Client>, Vec<u64>) {
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|c| tokio::spawn(read_messages(c, from, count)))
        .collect();
    publish(publisher, grp, from, count).await;
    let mut back = Vec::new();
    let mut all = Vec::new();
    for t in tasks {
        let (c, lat) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("a reader did not get every message")
            .expect("reader task");
        back.push(c);
        all.extend(lat);
    }
    (back, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_members_are_cut_and_the_others_keep_their_latency() {
    let server = Server::start(
        1,
        "[limits]\nmsg_per_sec = 0\nmax_sessions_per_user = 0\n\
         [session]\noutbound_max_bytes = 1048576\noutbound_max_frames = 2048\n\
         socket_send_buffer = 16384\nwrite_stall_ms = 1000\n\
         [topic]\nmax_subscriber_count = 512\n",
    );
    let mut owner = Client::connect(&server, "slow-owner").await;
    owner.hi().await;
    let (_, token) = owner.sign_up(&unique_login("slow")).await;
    let grp = owner.create_group().await;
    // Readers: the same user on many sessions (the group counts sessions, not users).
    let mut readers = Vec::new();
    for i in 0..READERS {
        let mut c = Client::login(&server, &format!("reader{i}"), &token).await;
        c.sub(&grp).await;
        readers.push(c);
    }
    let sessions_before = server.shard_sessions().iter().sum::<u64>();

    // Baseline: everybody reads.
    let (readers, base) = round(readers, &mut owner, &grp, 0, BASELINE).await;
    let rss_before = server.rss_kib();

    // 20 members subscribe and then never read again.
    let mut stalled = Vec::new();
    for i in 0..STALLED {
        let mut c = tiny_buffer_client(&server, &format!("stalled{i}"), &token).await;
        c.sub(&grp).await;
        stalled.push(c);
    }
    let started = Instant::now();
    let (_readers, loaded) = round(readers, &mut owner, &grp, BASELINE as u64, LOADED).await;
    let rss_after = server.rss_kib();

    // Every reader got every message in order (checked while reading); their latency did not
    // wait for the stalled ones (those are cut after 1 s, so a reader held up by them would
    // see a p99 of a second or more).
    let (p_base, p_loaded) = (p99(base), p99(loaded));
    eprintln!(
        "slow consumers: reader p99 {p_base} ms alone, {p_loaded} ms beside {STALLED} stalled members; RSS {rss_before} -> {rss_after} KiB"
    );
    assert!(
        p_loaded <= (p_base * 3).max(p_base + 250),
        "readers slowed by stalled members: p99 {p_base} -> {p_loaded} ms"
    );
    // The stalled sessions are cut: the session count falls back to the readers and owner.
    let sessions = |v: &Value| -> u64 {
        v["Shards"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["sessions"].as_u64()).sum())
            .unwrap_or(0)
    };
    let (v, ok) = server
        .wait_vars(Duration::from_secs(20), |v| sessions(v) == sessions_before)
        .await;
    assert!(
        ok,
        "stalled sessions not cut within {:?}: {} sessions, {sessions_before} expected",
        started.elapsed(),
        sessions(&v)
    );
    assert!(
        v["SlowConsumersTotal"].as_u64() >= Some(STALLED as u64),
        "counted as slow consumers: {}",
        v["SlowConsumersTotal"]
    );
    // Memory: each stalled session may hold its queue (at most 300 KB of messages here) and
    // its socket buffers (2 × 16 KiB); nothing else grows with them.
    let grown_kib = rss_after.saturating_sub(rss_before);
    assert!(
        grown_kib < 40 * 1024,
        "RSS grew by {grown_kib} KiB beside {STALLED} stalled members"
    );
    drop(stalled);
}
