//! The raw WebSocket echo endpoint (`ws.echo_path`, workload W0): when set, text and binary
//! frames come back unchanged and in order, without an API key or a session; when not set
//! (the default), the path is an ordinary 404.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Server, RECV_TIMEOUT};

/// The next data frame (text or binary), skipping control frames.
async fn next_data<S>(ws: &mut S) -> Message
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let m = tokio::time::timeout(RECV_TIMEOUT, ws.next())
            .await
            .expect("an echo within the timeout")
            .expect("the connection stays open")
            .expect("a frame");
        if matches!(m, Message::Text(_) | Message::Binary(_)) {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_path_echoes_text_and_binary_frames() {
    let server = Server::start(1, "[ws]\necho_path = \"/echo\"\n");
    let url = format!("ws://127.0.0.1:{}/echo", server.port());
    let (mut ws, _) = tokio::time::timeout(RECV_TIMEOUT, tokio_tungstenite::connect_async(&url))
        .await
        .expect("connect within the timeout")
        .expect("the echo path upgrades without an API key");

    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("hello"));
    let bytes = vec![0u8, 1, 2, 0xff, 0xfe];
    ws.send(Message::binary(bytes.clone())).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::binary(bytes));

    // Pipelined frames (one flush may carry many) come back complete and in order.
    let sent: Vec<String> = (0..200).map(|i| format!("{i}:{}", "x".repeat(i))).collect();
    for t in &sent {
        ws.feed(Message::text(t.as_str())).await.unwrap();
    }
    ws.flush().await.unwrap();
    for t in &sent {
        assert_eq!(next_data(&mut ws).await, Message::text(t.as_str()));
    }

    // Nothing of it is a session.
    assert_eq!(server.vars()["LiveSessions"], 0);
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_knob_the_echo_path_is_not_found() {
    let server = Server::start(1, "");
    let (status, body) = server.http_get(
        "/echo",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    assert_eq!(status, 404, "{body}");
    let url = format!("ws://127.0.0.1:{}/echo", server.port());
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(&url),
    )
    .await
    .expect("an answer within the timeout");
    assert!(r.is_err(), "the upgrade must be refused");
}
