//! WebSocket sessions at `/v0/channels`: the upgrade handshake, then one task per connection
//! that reads client frames into the shard and writes everything queued on the session's
//! outbox in one flush, with server pings and the pong deadline.
//!
//! tungstenite does the framing with a small read buffer (idle connections stay cheap); the
//! socket is glommio's. Nothing here knows the protocol beyond the network probe `1` → `0`.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures_util::{AsyncWriteExt, SinkExt, StreamExt};
use glommio::net::TcpStream;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes};

use crate::config::Config;
use crate::shard::local::with;
use crate::shard::SessionKind;
use crate::shard::{now, CloseReason, Outbox};
use crate::transport::http::{ctrl_body, respond, RequestHead};

/// What woke the connection task.
enum Event {
    /// Frames were drained from the outbox (`None`), or it closed (`Some`).
    Out(Option<CloseReason>),
    /// A client frame, the end of the stream, or a read error.
    In(Option<Result<Message, tungstenite::Error>>),
    /// Time to ping (and to check the pong deadline).
    Tick,
}

/// Validates the upgrade request and answers it; then runs the session.
pub async fn serve(
    mut stream: TcpStream,
    head: RequestHead,
    leftover: Vec<u8>,
    remote: String,
    cfg: &Config,
) {
    if head.method != "GET" {
        let body = ctrl_body(405, "operation or method not allowed", now());
        return respond(
            &mut stream,
            405,
            "Method Not Allowed",
            "application/json",
            &body,
        )
        .await;
    }
    let key_ok = head
        .api_key()
        .is_some_and(|k| with(|ctx| ctx.api_key_ok(&k)));
    if !key_ok {
        let body = ctrl_body(403, "valid API key required", now());
        return respond(&mut stream, 403, "Forbidden", "application/json", &body).await;
    }
    let is_upgrade = head
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && head
            .header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"));
    let Some(ws_key) = head.header("sec-websocket-key").filter(|_| is_upgrade) else {
        let body = ctrl_body(400, "malformed", now());
        return respond(&mut stream, 400, "Bad Request", "application/json", &body).await;
    };
    let accept = tungstenite::handshake::derive_accept_key(ws_key.trim().as_bytes());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(resp.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    // A WebSocket session has its connection attached for its whole life and ends with it.
    let opened = with(|ctx| {
        let handle = ctx.open_session(SessionKind::WebSocket, remote)?;
        Some((handle.sid, ctx.attach_transport(handle)?))
    });
    let Some((sid, outbox)) = opened else {
        return;
    };
    let max = cfg.max_message_size(crate::config::Transport::WebSocket);
    let ws_cfg = WebSocketConfig::default()
        .read_buffer_size(cfg.ws.read_buffer)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let ws =
        WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(ws_cfg)).await;
    run(ws, &outbox, sid, cfg).await;
    outbox.close(CloseReason::Ended);
    with(|ctx| ctx.close_session(sid));
}

async fn run(
    mut ws: WebSocketStream<TcpStream>,
    outbox: &Rc<Outbox>,
    sid: crate::ids::SessionId,
    cfg: &Config,
) {
    let ping_every = Duration::from_millis(cfg.ws.ping_interval_ms);
    let pong_timeout = Duration::from_millis(cfg.ws.pong_timeout_ms);
    // The ticker fires at the next ping or at the pong deadline, whichever comes first, so a
    // silent client is dropped `pong_timeout` after its last pong, not a ping period later.
    let mut ticker = glommio::timer::Timer::new(ping_every);
    let mut last_pong = Instant::now();
    let mut next_ping = last_pong + ping_every;
    let mut frames: Vec<Bytes> = Vec::new();
    loop {
        let paused = with(|ctx| ctx.should_pause_reading());
        let ev = poll_fn(|cx| {
            if let Poll::Ready(r) = outbox.poll_drain(cx, &mut frames) {
                return Poll::Ready(Event::Out(r));
            }
            if !paused {
                if let Poll::Ready(m) = ws.poll_next_unpin(cx) {
                    return Poll::Ready(Event::In(m));
                }
            }
            if Pin::new(&mut ticker).poll(cx).is_ready() {
                return Poll::Ready(Event::Tick);
            }
            Poll::Pending
        });
        let ev = if paused {
            // Back-pressure from the mesh: only write and tick until the backlog drains.
            futures_lite::future::or(ev, async {
                glommio::timer::sleep(Duration::from_millis(1)).await;
                Event::Out(None)
            })
            .await
        } else {
            ev.await
        };
        match ev {
            Event::Out(None) => {
                if write_all(&mut ws, &mut frames).await.is_err() {
                    return;
                }
            }
            Event::Out(Some(reason)) => {
                if reason != CloseReason::Overflow {
                    let _ = write_all(&mut ws, &mut frames).await;
                }
                let _ = ws.close(None).await;
                return;
            }
            Event::In(Some(Ok(msg))) => match msg {
                Message::Text(t) => on_frame(sid, outbox, t.as_bytes()),
                Message::Binary(b) => on_frame(sid, outbox, &b),
                Message::Pong(_) => last_pong = Instant::now(),
                Message::Ping(_) => {
                    // tungstenite queued the pong; send it now.
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
                Message::Close(_) => {
                    let _ = ws.close(None).await;
                    return;
                }
                Message::Frame(_) => {}
            },
            Event::In(_) => return,
            Event::Tick => {
                let now = Instant::now();
                if now.duration_since(last_pong) >= pong_timeout {
                    log::debug!("session {sid}: no pong for {pong_timeout:?}, closing");
                    let _ = ws.close(None).await;
                    return;
                }
                if now >= next_ping {
                    next_ping = now + ping_every;
                    if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                        return;
                    }
                }
                let deadline = last_pong + pong_timeout;
                ticker.reset(
                    next_ping
                        .min(deadline)
                        .saturating_duration_since(Instant::now()),
                );
            }
        }
    }
}

/// One client frame: the network probe is answered here, anything else goes to the shard.
fn on_frame(sid: crate::ids::SessionId, outbox: &Outbox, data: &[u8]) {
    if data == b"1" {
        let _ = outbox.push(Bytes::from_static(b"0"));
        return;
    }
    with(|ctx| ctx.client_frame(sid, data));
}

/// A queued frame as a WebSocket text payload. Frames come from `proto::encode` (serde_json,
/// always UTF-8) or are the one-byte probe answer, so revalidating every copy of a fanned-out
/// frame per recipient is wasted work; debug builds still check it.
fn text_frame(f: Bytes) -> Utf8Bytes {
    debug_assert!(std::str::from_utf8(&f).is_ok(), "frames are UTF-8");
    // SAFETY: every frame pushed to an outbox is UTF-8: `proto::encode` output (serde_json
    // writes UTF-8) or the static probe answer `0`.
    unsafe { Utf8Bytes::from_bytes_unchecked(f) }
}

/// Writes every drained frame, then flushes once: one write for the whole batch.
async fn write_all(
    ws: &mut WebSocketStream<TcpStream>,
    frames: &mut Vec<Bytes>,
) -> Result<(), tungstenite::Error> {
    for f in frames.drain(..) {
        ws.feed(Message::Text(text_frame(f))).await?;
    }
    ws.flush().await
}
