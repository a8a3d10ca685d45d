//! The front door under abuse: a request head trickled one byte at a time is cut at the
//! handshake deadline however often bytes arrive (slowloris), and answered 408; a burst of
//! WebSocket pings gets one pong for the last of them (RFC 6455 §5.5.3); a ping flood past
//! `ws.max_pings_per_sec` is closed with status 1008; the server pings every connection and
//! closes one that leaves its pings unanswered past `ws.pong_timeout_ms` with status 1001.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::support::Server;

#[test]
fn a_trickled_request_head_is_cut_at_the_deadline_with_408() {
    let server = Server::start(1, "[ws]\nhandshake_timeout_ms = 1000\n");
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // A head that never ends: one byte every 200 ms, each well inside the 1 s deadline.
    let head = b"GET /v0/channels HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut got = Vec::new();
    let mut sent = 0;
    let closed = loop {
        if sent == head.len() {
            break false;
        }
        if s.write_all(&head[sent..sent + 1]).is_err() {
            break true; // cut while writing
        }
        sent += 1;
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break true,
        }
    };
    assert!(
        closed,
        "the connection outlived {sent} trickled bytes ({} ms at 200 ms each)",
        sent * 200
    );
    // 1 s deadline, 200 ms per byte: cut after about 5 bytes; 15 leaves room for a slow box
    // while far below what a per-read timeout would allow (the whole head, never cut).
    assert!(sent <= 15, "cut only after {sent} bytes");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 408") && text.contains("request timeout"),
        "answered 408: {text:?}"
    );
}

async fn ws(
    server: &Server,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("websocket");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_pings_gets_one_pong_for_the_last() {
    let server = Server::start(1, "");
    let mut c = ws(&server).await;
    // Ten pings written at once: read together, answered once.
    for i in 0..10u8 {
        c.feed(Message::Ping(vec![b'0' + i].into())).await.unwrap();
    }
    c.flush().await.unwrap();
    let mut pongs = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, c.next()).await {
        if let Message::Pong(p) = m {
            pongs.push(p.to_vec());
            if p.as_ref() == b"9" {
                break;
            }
        }
    }
    assert_eq!(
        pongs.last().map(|p| p.as_slice()),
        Some(&b"9"[..]),
        "{pongs:?}"
    );
    assert!(pongs.len() < 10, "pongs were not coalesced: {pongs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_is_closed_with_1008() {
    let server = Server::start(1, "[ws]\nmax_pings_per_sec = 20\n");
    let mut c = ws(&server).await;
    for _ in 0..50 {
        c.feed(Message::Ping(Vec::new().into())).await.unwrap();
    }
    c.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, c.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                assert_eq!(f.code, CloseCode::Policy);
                assert_eq!(f.reason.as_str(), "too many pings");
                return;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no 1008 close: {other:?}"),
        }
    }
}

/// `ws.ping_interval_ms` 200 and `ws.pong_timeout_ms` 500, kept by the shard's deadline wheel.
const PINGS: &str = "[ws]\nping_interval_ms = 200\npong_timeout_ms = 500\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pings_and_a_client_that_answers_stays() {
    let server = Server::start(1, PINGS);
    let mut c = ws(&server).await;
    // tungstenite answers each ping as it reads it; 2 s is four pong deadlines.
    let start = tokio::time::Instant::now();
    let mut pings = Vec::new();
    while start.elapsed() < Duration::from_secs(2) {
        match tokio::time::timeout(Duration::from_millis(100), c.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings.push(start.elapsed()),
            Ok(Some(Ok(_))) | Err(_) => {}
            other => panic!(
                "the connection ended after {:?}: {other:?}",
                start.elapsed()
            ),
        }
    }
    // One ping per 200 ms at most (each fired up to a 20 ms wheel tick late): ten in 2 s on
    // an idle box, fewer when it is busy.
    assert!(
        (4..=10).contains(&pings.len()),
        "{} pings in 2 s: {pings:?}",
        pings.len()
    );
    assert!(
        pings[0] >= Duration::from_millis(150),
        "first ping early: {pings:?}"
    );
    c.send(Message::Text(
        "{\"hi\":{\"id\":\"1\",\"ver\":\"0.22\"}}".into(),
    ))
    .await
    .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(2), c.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                assert!(t.contains("\"code\":201"), "{t}");
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no answer to hi: {other:?}"),
        }
    }
}

#[test]
fn a_client_that_never_answers_a_ping_is_closed_at_the_pong_deadline() {
    let server = Server::start(1, PINGS);
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    s.write_all(
        b"GET /v0/channels?apikey=AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K HTTP/1.1\r\nHost: x\r\n\
          Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // Read (never write) until the server closes: the pings arrive unanswered.
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("not closed after {:?}: {e}", start.elapsed()),
        }
    }
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text:?}");
    let body = &got[text.find("\r\n\r\n").unwrap() + 4..];
    // Pings (0x89, empty: two on an idle box), then the close frame: status 1001, "no pong".
    let pings = body.chunks(2).take_while(|c| c == &[0x89, 0]).count();
    assert!(pings >= 1, "{body:?}");
    let close = &body[2 * pings..];
    assert_eq!(close[0], 0x88, "{body:?}");
    assert_eq!(&close[2..4], &1001u16.to_be_bytes(), "{body:?}");
    assert_eq!(&close[4..], b"no pong", "{body:?}");
    assert!(took >= Duration::from_millis(500), "closed early: {took:?}");
}
