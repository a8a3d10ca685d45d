//! The edge: sockets and bytes. Accepts TCP connections on a shard's listener, reads the HTTP
//! request head, and routes it: `/v0/channels` to the WebSocket transport, `/v0/channels/lp` to
//! long polling, `/debug/vars` to the stats page, `ws.echo_path` (when set) to the raw echo of
//! the W0 benchmark (`echo.rs`), paths under `web.static_mount` (when `web.static_dir` is set)
//! to the static file server, anything else to a JSON 404. The protocol paths keep priority
//! over the echo path and the static mount.
//!
//! gRPC has its own port and accept loop (`grpc.rs`).
//!
//! Transports talk to the protocol only through the shard's public entry points (open a
//! session, hand it a frame, close it) and the session's [`crate::shard::Outbox`].

pub mod echo;
pub mod grpc;
pub mod http;
pub mod lp;
pub mod static_files;
pub mod ws;

use std::rc::Rc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::shard::local::with;
use crate::shard::now;
use crate::transport::http::{ctrl_body, read_head, respond};

/// Accepts connections until the shard shuts down.
pub async fn serve(listener: TcpListener, cfg: Rc<Config>) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if with(|ctx| ctx.is_shutting_down()) {
            return;
        }
        let cfg = cfg.clone();
        glommio::spawn_local(async move { connection(stream, &cfg).await }).detach();
    }
}

async fn connection(mut stream: TcpStream, cfg: &Config) {
    let remote = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let timeout = Duration::from_millis(cfg.ws.handshake_timeout_ms);
    let (head, leftover) = match read_head(&mut stream, cfg.ws.max_header_bytes, timeout).await {
        Ok(v) => v,
        Err(http::HeadError::TooLarge(_)) => {
            let body = ctrl_body(431, "request header fields too large", now());
            return respond(
                &mut stream,
                431,
                "Request Header Fields Too Large",
                "application/json",
                &body,
            )
            .await;
        }
        Err(http::HeadError::Invalid(_)) => {
            let body = ctrl_body(400, "malformed", now());
            return respond(&mut stream, 400, "Bad Request", "application/json", &body).await;
        }
        Err(_) => return,
    };
    match head.path.as_str() {
        "/v0/channels" | "/v0/channels/" => ws::serve(stream, head, leftover, remote, cfg).await,
        "/v0/channels/lp" | "/v0/channels/lp/" => {
            lp::serve(stream, head, leftover, remote, cfg).await
        }
        "/debug/vars" => {
            let body = with(|ctx| ctx.stats_json());
            respond(&mut stream, 200, "OK", "application/json", &body).await
        }
        path if !cfg.ws.echo_path.is_empty() && path == cfg.ws.echo_path => {
            echo::serve(stream, head, leftover, cfg).await
        }
        // New protocol endpoints go above this arm: the mount may be `/`.
        path if static_files::mounted(&cfg.web, path) => {
            static_files::serve(&mut stream, &head, &cfg.web).await
        }
        _ => {
            let body = ctrl_body(404, "not found", now());
            respond(&mut stream, 404, "Not Found", "application/json", &body).await
        }
    }
}
