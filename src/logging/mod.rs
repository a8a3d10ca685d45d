//! Logs: `tracing` events, with the older `log` lines bridged in (tracing-subscriber's
//! `tracing-log` support), filtered in `RUST_LOG` syntax (`RUST_LOG` wins over `log.filter`),
//! rendered as text or JSON (`log.format`) and written to stderr by a thread of its own
//! (tracing-appender's non-blocking writer, `coretalk-log`): a shard only formats a line and
//! hands it over, and when the writer falls `log.buffer_lines` behind, lines are dropped
//! rather than ever blocking a shard.
//!
//! Each shard thread runs inside a `shard{id=N}` span, so every line it logs carries its shard;
//! lines about one session or topic carry `session` / `topic` fields. `noisy.rs` rate-limits
//! conditions that can flood the log.

pub mod noisy;

use std::io::IsTerminal as _;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

pub use noisy::Noisy;

/// Keeps the writer thread; dropping it writes out every buffered line (do so before the
/// process exits).
pub struct Guard(#[allow(dead_code)] WorkerGuard);

/// The filter: `RUST_LOG` when set, else `log.filter`.
pub fn filter(cfg: &LogConfig) -> Result<EnvFilter, String> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG {v:?}: {e}"))
        }
        _ => {
            EnvFilter::try_new(&cfg.filter).map_err(|e| format!("log.filter {:?}: {e}", cfg.filter))
        }
    }
}

/// Installs the process's log pipeline. Call once, after the signal mask is set (the writer
/// thread inherits it) and before any thread logs.
pub fn init(cfg: &LogConfig) -> Result<Guard, String> {
    let filter = filter(cfg)?;
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(cfg.buffer_lines)
        .lossy(true)
        .thread_name("coretalk-log")
        .finish(std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match cfg.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install the log pipeline: {e}"))?;
    Ok(Guard(guard))
}

/// The span a shard's thread runs in: every line logged on it carries `shard`.
pub fn shard_span(id: usize) -> tracing::Span {
    tracing::info_span!("shard", id)
}
