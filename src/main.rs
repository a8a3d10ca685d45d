//! The `coretalk` binary: parses the command line, loads the configuration and runs the server.
//!
//! Flags override only a handful of config fields; everything else lives in the TOML file
//! documented in `tuning/`. SIGINT and SIGTERM are blocked before anything else happens, so that
//! every thread inherits the mask and only the server's signal thread ever takes them.
//!
//! Exit status: 0 after a clean shutdown, 1 on a start-up or runtime error, 2 for bad arguments,
//! 3 when a second signal or `runtime.shutdown_timeout_ms` cut the shutdown short (the store was
//! still closed cleanly), 4 when even the store could not be closed (see `server::Exit`).

use std::path::PathBuf;

use coretalk::config::Config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
coretalk: a thread-per-core chat server speaking the Tinode protocol

USAGE: coretalk [--listen HOST:PORT] [--grpc-listen HOST:PORT] [--data DIR] [--shards N] [--config FILE]

  --listen HOST:PORT  HTTP/WebSocket listen address (default 0.0.0.0:6060; port 0 = any free port)
  --grpc-listen HOST:PORT  gRPC (pbx.Node) listen address (default 0.0.0.0:16060; empty = off)
  --data DIR          embedded store directory (default ./data)
  --shards N          number of shards, one pinned core each (default: one per core)
  --config FILE       TOML configuration (see tuning/); flags override it
  --help, --version
";

fn main() {
    // First, before any thread exists (the store writer, hash threads and shards inherit it).
    let signals = coretalk::server::signals::block();
    // No huge pages until the configuration asks for them (`server::run` applies
    // `runtime.transparent_huge_pages`): what is allocated before then stays in 4 KiB pages.
    let _ = coretalk::server::transparent_huge_pages(false);
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(cfg)) => match coretalk::server::run(cfg, signals) {
            Ok(exit) if exit.code() == 0 => {}
            // Abandoned threads may still be running: leave without waiting for them.
            Ok(exit) => std::process::exit(exit.code()),
            Err(e) => {
                eprintln!("coretalk: {e:#}");
                std::process::exit(1);
            }
        },
        Ok(None) => {}
        Err(e) => {
            eprintln!("coretalk: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

/// Builds the configuration from the arguments; `None` when only help or version was asked.
fn parse_args(args: Vec<String>) -> Result<Option<Config>, String> {
    let (mut listen, mut grpc, mut data, mut shards, mut config) = (None, None, None, None, None);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--listen" => listen = Some(value("--listen")?),
            "--grpc-listen" => grpc = Some(value("--grpc-listen")?),
            "--data" => data = Some(PathBuf::from(value("--data")?)),
            "--shards" => {
                let v = value("--shards")?;
                shards = Some(
                    v.parse::<usize>()
                        .map_err(|_| format!("--shards: not a number: {v}"))?,
                );
            }
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("coretalk {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let mut cfg = match config {
        Some(path) => Config::from_file(&path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(l) = listen {
        cfg.listen.addr = l;
    }
    if let Some(g) = grpc {
        cfg.listen.grpc_addr = g;
    }
    if let Some(d) = data {
        cfg.store.data_dir = d;
    }
    if let Some(s) = shards {
        cfg.runtime.shards = s;
    }
    Ok(Some(cfg))
}
