//! The monitoring endpoints: `/metrics` (Prometheus text), `/debug/vars` (the reference's
//! expvar JSON), `/healthz` (the process answers) and `/readyz` (store open, every shard
//! accepting, cluster membership valid). Served on `listen.addr`, or on `monitor.addr` by a
//! listener of their own (`serve`) that answers nothing else; `monitor.metrics` and
//! `monitor.health` turn them off.
//!
//! Each answer reads counters and flags only (no store call, no other shard woken): health
//! checks are answered in microseconds even while the store is slow.

use std::rc::Rc;

use glommio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::shard::local::with;
use crate::shard::now;
use crate::transport::accept::Acceptor;
use crate::transport::http::{ctrl_body, read_head, respond, RequestHead};

/// Whether `path` is a monitoring endpoint that is switched on.
pub fn serves(cfg: &Config, path: &str) -> bool {
    match path {
        "/metrics" | "/debug/vars" => cfg.monitor.metrics,
        "/healthz" | "/readyz" => cfg.monitor.health,
        _ => false,
    }
}

/// Answers one monitoring request (the path was checked with [`serves`]).
pub async fn answer(stream: &mut TcpStream, head: &RequestHead) {
    match head.path.as_str() {
        "/metrics" => {
            let body = with(|ctx| ctx.metrics_text());
            respond(
                stream,
                200,
                "OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
            )
            .await
        }
        "/debug/vars" => {
            let body = with(|ctx| ctx.stats_json());
            respond(stream, 200, "OK", "application/json", &body).await
        }
        "/healthz" => respond(stream, 200, "OK", "text/plain", "ok\n").await,
        "/readyz" => match with(|ctx| ctx.readiness()) {
            Ok(()) => respond(stream, 200, "OK", "text/plain", "ready\n").await,
            Err(why) => {
                let body = format!("not ready: {why}\n");
                respond(stream, 503, "Service Unavailable", "text/plain", &body).await
            }
        },
        _ => {
            let body = ctrl_body(404, "not found", now());
            respond(stream, 404, "Not Found", "application/json", &body).await
        }
    }
}

/// The accept loop of `monitor.addr`: every path but the monitoring ones is a 404.
pub async fn serve(listener: TcpListener, cfg: Rc<Config>) {
    let mut acceptor = Acceptor::new("monitor", cfg.log.noisy_per_sec);
    loop {
        let stream = acceptor.accept(&listener).await;
        if with(|ctx| ctx.is_shutting_down()) {
            return;
        }
        let cfg = cfg.clone();
        glommio::spawn_local(async move { connection(stream, &cfg).await }).detach();
    }
}

async fn connection(mut stream: TcpStream, cfg: &Config) {
    let timeout = std::time::Duration::from_millis(cfg.ws.handshake_timeout_ms);
    let Ok((head, _)) = read_head(&mut stream, cfg.ws.max_header_bytes, timeout).await else {
        return;
    };
    if serves(cfg, &head.path) {
        answer(&mut stream, &head).await
    } else {
        let body = ctrl_body(404, "not found", now());
        respond(&mut stream, 404, "Not Found", "application/json", &body).await
    }
}
