//! The raw WebSocket echo endpoint at `ws.echo_path` (off when empty, the default): every text
//! and binary frame is written straight back. No API key, no session, no topic: it measures
//! what the edge alone costs (workload W0, against the tokio baseline's `/echo`).
//!
//! Framing is `wsframe`'s, as for sessions: each read is parsed completely (up to [`BATCH`]
//! messages) and everything it asks for — echoes, pongs — is written back with one write.

use std::time::Duration;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::config::Config;
use crate::shard::now;
use crate::transport::http::{websocket_upgrade, RequestHead};
use crate::transport::wsframe::{self, Event, Reader, OP_BINARY, OP_CLOSE, OP_PONG, OP_TEXT};

/// Messages echoed per write at most, so a client that floods cannot starve its own writes
/// (the baseline's figure).
pub const BATCH: usize = 64;

/// Upgrades the connection and echoes until the client closes or fails.
pub async fn serve(mut stream: TcpStream, head: RequestHead, leftover: Vec<u8>, cfg: &Config) {
    if !websocket_upgrade(&mut stream, &head, now()).await {
        return;
    }
    drop(head);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut reader = Reader::new(cfg.max_message_size(crate::config::Transport::WebSocket));
    reader.preload(leftover);
    let _ = run(&mut stream, &mut reader, cfg.ws.read_buffer.max(512)).await;
}

/// What one batch of client frames asked for.
enum Next {
    /// Keep reading.
    More,
    /// Close after writing what was gathered.
    Close,
}

/// The echo loop: parse what is carried or read, gather the replies, write them at once.
async fn run(stream: &mut TcpStream, reader: &mut Reader, read_size: usize) -> std::io::Result<()> {
    let mut buf = vec![0u8; read_size];
    let mut out: Vec<u8> = Vec::new();
    // Whether the carried bytes (if any) end in an incomplete frame: then only a read helps.
    let mut starved = true;
    loop {
        out.clear();
        let mut next = Next::More;
        let mut n_msgs = 0;
        // Complete frames carried from an earlier read first, else one fresh read.
        let mut fresh = if reader.has_carry() && !starved {
            0
        } else {
            match stream.read(&mut buf).await? {
                0 => return Ok(()),
                n => n,
            }
        };
        loop {
            let input: &mut [u8] = if fresh > 0 {
                &mut buf[..fresh]
            } else {
                &mut []
            };
            fresh = 0;
            let start = out.len();
            let ev = match reader.next(input) {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    starved = true;
                    break;
                }
                Err(_) => return Ok(()),
            };
            starved = false;
            let mut message = false;
            match ev {
                Event::Message(data) => {
                    wsframe::encode(&mut out, OP_TEXT, data);
                    message = true;
                }
                Event::Ping(p) => wsframe::encode(&mut out, OP_PONG, p),
                Event::Pong => {}
                Event::Close(reply) => {
                    let payload = wsframe::close_payload(&reply);
                    wsframe::encode(&mut out, OP_CLOSE, &payload);
                    next = Next::Close;
                }
            }
            if message && !reader.last_was_text() {
                // Same frame, binary opcode (FIN stays set).
                out[start] = 0x80 | OP_BINARY;
            }
            reader.release();
            if message {
                n_msgs += 1;
            }
            if matches!(next, Next::Close) || n_msgs >= BATCH || !reader.has_carry() {
                break;
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        if matches!(next, Next::Close) {
            return Ok(());
        }
    }
}
