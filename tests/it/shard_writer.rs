//! The shard's WebSocket writer (`ws.shard_writer`, tuning/websocket.md) and the session task
//! it hands blocked writes to: a member that stops reading for a while (under the stall bound,
//! with a small receive buffer) while messages keep coming, and while the server pings it,
//! gets every frame intact and in order once it reads again, and is not cut. The same holds
//! with the writer off (each session's task writes its own frames).

use std::time::Duration;

use serde_json::json;

use crate::slow_consumers::tiny_buffer_client;
use crate::support::{data, unique_login, Client, Server};

const MESSAGES: u64 = 200;

async fn paused_reader_gets_everything(shard_writer: bool) {
    let server = Server::start(
        1,
        &format!(
            "[limits]\nmsg_per_sec = 0\nmax_sessions_per_user = 0\n\
             [session]\noutbound_max_bytes = 1048576\noutbound_max_frames = 2048\n\
             socket_send_buffer = 16384\nwrite_stall_ms = 5000\n\
             [ws]\nping_interval_ms = 50\npong_timeout_ms = 10000\nshard_writer = {shard_writer}\n"
        ),
    );
    let mut owner = Client::connect(&server, "writer-owner").await;
    owner.hi().await;
    let (_, token) = owner.sign_up(&unique_login("writer")).await;
    let grp = owner.create_group().await;
    let mut reader = tiny_buffer_client(&server, "paused-reader", &token).await;
    reader.sub(&grp).await;

    // 200 KB for a client that reads nothing: most of it cannot be written at once.
    let pad = "y".repeat(1000);
    for n in 0..MESSAGES {
        owner
            .publish_nowait(&grp, json!({"n": n, "pad": pad}), true)
            .await;
    }
    // Pings fall due meanwhile (every 50 ms) behind the blocked write.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let mut next = 0;
    while next < MESSAGES {
        let v = tokio::time::timeout(Duration::from_secs(20), reader.recv())
            .await
            .unwrap_or_else(|_| panic!("writer={shard_writer}: stuck after {next} messages"));
        if let Some(d) = data(&v) {
            assert_eq!(
                d["content"]["n"].as_u64(),
                Some(next),
                "writer={shard_writer}: messages in order, none missing"
            );
            assert_eq!(d["content"]["pad"].as_str().map(str::len), Some(1000));
            next += 1;
        }
    }
    // Still connected: it answers a request.
    let seq = reader.publish(&grp, json!("still here")).await;
    assert_eq!(
        seq,
        MESSAGES + 1,
        "writer={shard_writer}: the reader's own message"
    );
    let vars = server.vars();
    assert_eq!(
        vars["SlowConsumersTotal"].as_u64(),
        Some(0),
        "writer={shard_writer}: nobody was cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_reader_gets_every_frame_in_order_with_the_shard_writer() {
    paused_reader_gets_everything(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_reader_gets_every_frame_in_order_without_it() {
    paused_reader_gets_everything(false).await;
}
