//! The raw WebSocket echo endpoint at `ws.echo_path` (off when empty, the default): every text
//! and binary frame is written straight back. No API key, no session, no topic: it measures
//! what the edge alone costs (workload W0, against the tokio baseline's `/echo`).
//!
//! The write path is the one `ws.rs` uses for sessions: everything already readable (up to
//! [`BATCH`] frames) is echoed, then one flush writes it all.

use std::time::Duration;

use async_tungstenite::WebSocketStream;
use futures_util::{SinkExt, StreamExt};
use glommio::net::TcpStream;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::Message;

use crate::config::Config;
use crate::shard::now;
use crate::transport::http::{websocket_upgrade, RequestHead};

/// Frames echoed per flush at most, so a client that floods cannot starve its own writes (the
/// baseline's figure).
pub const BATCH: usize = 64;

/// Upgrades the connection and echoes until the client closes or fails.
pub async fn serve(mut stream: TcpStream, head: RequestHead, leftover: Vec<u8>, cfg: &Config) {
    if !websocket_upgrade(&mut stream, &head, now()).await {
        return;
    }
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let max = cfg.max_message_size(crate::config::Transport::WebSocket);
    let ws_cfg = WebSocketConfig::default()
        .read_buffer_size(cfg.ws.read_buffer)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let ws =
        WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(ws_cfg)).await;
    let _ = run(ws).await;
}

/// The echo loop: wait for a frame, take every further one that is already readable, write
/// them back with one flush.
async fn run(mut ws: WebSocketStream<TcpStream>) -> Result<(), tungstenite::Error> {
    while let Some(first) = ws.next().await {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(msg) = next.take() {
            match msg? {
                m @ (Message::Text(_) | Message::Binary(_)) => ws.feed(m).await?,
                Message::Close(_) => return ws.close(None).await,
                // tungstenite queues the pong for a ping; the flush below sends it.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
            n += 1;
            if n < BATCH {
                // Polled with this task's waker: a frame not yet readable wakes it later.
                next = futures_lite::future::poll_once(ws.next()).await.flatten();
            }
        }
        ws.flush().await?;
    }
    Ok(())
}
