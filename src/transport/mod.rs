//! The edge: sockets and bytes. Accepts TCP connections on a shard's listener, reads the HTTP
//! request head, and routes it: `/v0/channels` to the WebSocket transport, `/v0/channels/lp` to
//! long polling, the monitoring endpoints (`/metrics`, `/debug/vars`, `/healthz`, `/readyz`,
//! `monitor.rs`) unless `monitor.addr` gives them a listener of their own, `ws.echo_path` (when set) to the raw echo of
//! the W0 benchmark (`echo.rs`), paths under `web.static_mount` (when `web.static_dir` is set)
//! to the static file server, anything else to a JSON 404. The protocol paths keep priority
//! over the echo path and the static mount.
//!
//! gRPC has its own port and accept loop (`grpc.rs`).
//!
//! Transports talk to the protocol only through the shard's public entry points (open a
//! session, hand it a frame, close it) and the session's [`crate::shard::Outbox`].

pub mod accept;
pub mod client_addr;
pub mod door;
pub mod echo;
pub mod grpc;
pub mod http;
pub mod lp;
pub mod monitor;
pub mod static_files;
pub mod tick;
pub mod ws;
pub mod wsbatch;
pub mod wsframe;
pub mod wsout;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::shard::local::with;
use crate::shard::now;
use crate::transport::http::{ctrl_body, read_head, respond};

/// Accepts connections until the shard shuts down.
pub async fn serve(listener: TcpListener, cfg: Rc<Config>) {
    let resolution = tick::Wheel::resolution_for(
        Duration::from_millis(cfg.ws.ping_interval_ms),
        Duration::from_millis(cfg.ws.pong_timeout_ms),
    );
    let scratch = Rc::new(
        ws::Scratch::new(
            cfg.ws.read_buffer,
            cfg.ws.send_batch,
            resolution,
            Duration::from_millis(cfg.session.write_stall_ms),
        )
        .pinging(&cfg),
    );
    glommio::spawn_local(scratch.wheel.clone().drive()).detach();
    glommio::spawn_local(scratch.writer.clone().run(scratch.clone())).detach();
    let mut acceptor = accept::Acceptor::new("http", cfg.log.noisy_per_sec);
    door::init(&cfg);
    loop {
        let stream = acceptor.accept(&listener).await;
        if with(|ctx| ctx.is_shutting_down()) {
            return;
        }
        let Some((ticket, peer)) = admit(&stream) else {
            continue;
        };
        let (cfg, scratch) = (cfg.clone(), scratch.clone());
        glommio::spawn_local(async move { connection(stream, ticket, peer, &cfg, &scratch).await })
            .detach();
    }
}

/// The front door's verdict on a connection just accepted: its ticket and the peer's address
/// (read once here: one `getpeername` per connection), or `None` after answering 503 (its
/// address has too many connections pending) and closing it.
pub fn admit(stream: &TcpStream) -> Option<(door::Ticket, Option<SocketAddr>)> {
    use std::os::fd::AsRawFd;
    let peer = stream.peer_addr().ok();
    door::admit(stream.as_raw_fd(), peer.map(|a| a.ip()))
        .map_err(|_| door::refuse(stream.as_raw_fd()))
        .ok()
        .map(|ticket| (ticket, peer))
}

/// One connection's task: the request head, then the endpoint. A WebSocket session continues
/// in a task of its own (`ws::serve` spawns it), sized for its loop alone; the rarer paths here
/// are boxed so that this future stays small while it lives.
/// `ticket` is declared after `stream` so that it is dropped first: the door forgets the
/// socket before it closes.
async fn connection(
    mut stream: TcpStream,
    ticket: door::Ticket,
    peer: Option<SocketAddr>,
    cfg: &Rc<Config>,
    scratch: &Rc<ws::Scratch>,
) {
    let timeout = Duration::from_millis(cfg.ws.handshake_timeout_ms);
    let read = Box::pin(read_head(&mut stream, cfg.ws.max_header_bytes, timeout)).await;
    let (head, leftover) = match read {
        Ok(v) => v,
        Err(http::HeadError::TooLarge(_)) => {
            let body = ctrl_body(431, "request header fields too large", now());
            return Box::pin(respond(
                &mut stream,
                431,
                "Request Header Fields Too Large",
                "application/json",
                &body,
            ))
            .await;
        }
        Err(http::HeadError::Timeout(_)) => {
            let body = ctrl_body(408, "request timeout", now());
            let r = respond(
                &mut stream,
                408,
                "Request Timeout",
                "application/json",
                &body,
            );
            return Box::pin(r).await;
        }
        Err(http::HeadError::Invalid(_)) => {
            let body = ctrl_body(400, "malformed", now());
            let r = respond(&mut stream, 400, "Bad Request", "application/json", &body);
            return Box::pin(r).await;
        }
        Err(_) => return,
    };
    // The client's address: the peer, or what a trusted proxy says it forwarded.
    let remote = client_addr::client_addr(peer, &head, &cfg.listen.trusted_proxies);
    if !ws::is_path(&head.path) {
        // Every endpoint but the WebSocket bounds itself from here on.
        ticket.routed();
    }
    match head.path.as_str() {
        "/v0/channels" | "/v0/channels/" => {
            ws::serve(stream, ticket, head, leftover, remote, cfg, scratch).await
        }
        "/v0/channels/lp" | "/v0/channels/lp/" => {
            Box::pin(lp::serve(stream, head, leftover, remote, cfg)).await
        }
        path if cfg.monitor.addr.is_empty() && monitor::serves(cfg, path) => {
            Box::pin(monitor::answer(&mut stream, &head)).await
        }
        path if !cfg.ws.echo_path.is_empty() && path == cfg.ws.echo_path => {
            echo::serve(stream, head, leftover, cfg).await
        }
        // New protocol endpoints go above this arm: the mount may be `/`.
        path if static_files::mounted(&cfg.web, path) => {
            Box::pin(static_files::serve(&mut stream, &head, &cfg.web)).await
        }
        _ => {
            let body = ctrl_body(404, "not found", now());
            Box::pin(respond(
                &mut stream,
                404,
                "Not Found",
                "application/json",
                &body,
            ))
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    /// A WebSocket session's task holds its whole future for the session's life, so it must
    /// stay small: W1 budgets 2 KiB per idle session in all. glommio allocates a task as its
    /// 40-byte header, an 8-byte schedule closure and the future: 208 bytes of future fill
    /// mimalloc's 256-byte size class, and the next class up is 320.
    #[test]
    fn a_websocket_session_task_is_small() {
        let size = super::ws::session_future_size();
        println!("WebSocket session future: {size} bytes");
        assert!(size <= 208, "WebSocket session future is {size} bytes");
    }
}
