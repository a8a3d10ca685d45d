//! `coretalk-baseline`: the plain tokio peer that coretalk's load targets compare against.
//!
//! A fair, ordinary tokio design, not a strawman: a multi-thread runtime (`--threads N`,
//! default 1), one task per connection, tokio-tungstenite for WebSocket, writes fed into the
//! sink and flushed once per drained batch. Two endpoints:
//! - `/echo`: every text or binary frame is sent back (W0);
//! - `/v0/channels`: the Tinode JSON subset the load harness speaks (`hi`, `acc`, `login`,
//!   `sub`, `pub`, `leave`), in memory only (W1-W4, W6).
//!
//! Prints `coretalk-baseline listening on HOST:PORT` on stdout once bound, and runs until killed.

mod echo;
mod hub;
mod proto;
mod session;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::hub::Hub;

/// Largest client message, as coretalk's `session.max_message_size` default.
const MAX_MESSAGE: usize = 128 * 1024;
/// Per-connection read buffer, as coretalk's `ws.read_buffer` default.
const READ_BUFFER: usize = 4096;
/// A connection that has not finished its upgrade by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Command-line settings.
struct Args {
    listen: String,
    threads: usize,
    /// Frames a connection may have queued for it before it is cut as a slow consumer.
    outbound_frames: usize,
}

const USAGE: &str = "usage: coretalk-baseline [--listen ADDR] [--threads N] [--outbound-frames N]
  --listen ADDR          address to bind (default 127.0.0.1:0)
  --threads N            tokio worker threads (default 1)
  --outbound-frames N    frames queued per connection before it is cut (default 256)";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:0".into(),
        threads: 1,
        outbound_frames: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value("--listen")?,
            "--threads" => {
                args.threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            "--outbound-frames" => {
                args.outbound_frames = value("--outbound-frames")?
                    .parse()
                    .map_err(|e| format!("--outbound-frames: {e}"))?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.threads == 0 || args.outbound_frames == 0 {
        return Err("--threads and --outbound-frames must be > 0".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("coretalk-baseline: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .thread_name("baseline-worker")
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("coretalk-baseline: runtime: {e}");
            std::process::exit(1)
        });
    if let Err(e) = rt.block_on(serve(args)) {
        eprintln!("coretalk-baseline: {e}");
        std::process::exit(1);
    }
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "coretalk-baseline listening on {addr}")?;
        out.flush()?;
    }
    let hub = Arc::new(Hub::new(args.outbound_frames));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(connection(stream, peer, hub.clone()));
            }
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                eprintln!("coretalk-baseline: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Which endpoint a connection asked for.
#[derive(Clone, Copy)]
enum Route {
    Echo,
    Channels,
}

async fn connection(stream: TcpStream, peer: SocketAddr, hub: Arc<Hub>) {
    let _ = stream.set_nodelay(true);
    let mut route = None;
    // The API key (header, query or cookie) is accepted and ignored. The error type is
    // tungstenite's, large or not.
    #[allow(clippy::result_large_err)]
    let pick = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        route = match req.uri().path() {
            "/echo" => Some(Route::Echo),
            "/v0/channels" => Some(Route::Channels),
            _ => None,
        };
        if route.is_some() {
            Ok(resp)
        } else {
            let mut err = ErrorResponse::new(Some("not found".into()));
            *err.status_mut() = StatusCode::NOT_FOUND;
            Err(err)
        }
    };
    let cfg = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(stream, pick, Some(cfg)),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(_)) | Err(_) => return,
    };
    let res = match route {
        Some(Route::Echo) => echo::run(ws).await,
        Some(Route::Channels) => session::run(ws, hub).await,
        None => return,
    };
    if let Err(e) = res {
        // Resets and protocol errors of departing clients are normal under load: one line each
        // would be noise, so only unusual errors are reported.
        if !echo::is_disconnect(&e) {
            eprintln!("coretalk-baseline: {peer}: {e}");
        }
    }
}
