//! The `coretalk` binary: parses the command line (`coretalk::cli`) and runs the server or one
//! of the tool subcommands.
//!
//! SIGINT and SIGTERM are blocked before anything else happens, so that every thread inherits
//! the mask and only the server's signal thread ever takes them.
//!
//! Exit status: 0 after a clean shutdown, 1 on a start-up or runtime error, 2 for bad arguments,
//! 3 when a second signal or `runtime.shutdown_timeout_ms` cut the shutdown short (the store was
//! still closed cleanly), 4 when even the store could not be closed (see `server::Exit`).

use clap::Parser;
use coretalk::cli::{Cli, Command, KeygenArgs, ServerArgs, StoreArgs};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // First, before any thread exists (the store writer, hash threads and shards inherit it).
    let signals = coretalk::server::signals::block();
    // No huge pages until the configuration asks for them (`server::run` applies
    // `runtime.transparent_huge_pages`): what is allocated before then stays in 4 KiB pages.
    let _ = coretalk::server::transparent_huge_pages(false);
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(&cli.run, signals),
        Some(Command::Run(args)) => run(&args, signals),
        Some(Command::Migrate(args)) => with_logs(&Default::default(), || migrate(&args)),
        Some(Command::CheckConfig(args)) => check_config(&args),
        Some(Command::Keygen(args)) => keygen(&args),
    };
    if let Err((code, e)) = result {
        if !e.is_empty() {
            eprintln!("coretalk: {e}");
        }
        std::process::exit(code);
    }
}

/// Runs `f` with the log pipeline installed, and writes out every buffered line before
/// returning (the process may exit right after).
fn with_logs(cfg: &coretalk::config::LogConfig, f: impl FnOnce() -> Outcome) -> Outcome {
    let guard = coretalk::logging::init(cfg).map_err(|e| (1, e))?;
    let result = f();
    drop(guard);
    result
}

type Outcome = Result<(), (i32, String)>;

fn usage(e: String) -> (i32, String) {
    (2, e)
}

fn run(args: &ServerArgs, signals: coretalk::server::Blocked) -> Outcome {
    let cfg = args.config().map_err(usage)?;
    let log = cfg.log.clone();
    with_logs(&log, || match coretalk::server::run(cfg, signals) {
        Ok(exit) if exit.code() == 0 => Ok(()),
        // Abandoned threads may still be running: `main` exits without waiting for them (after
        // the log lines are written).
        Ok(exit) => Err((exit.code(), String::new())),
        Err(e) => Err((1, format!("{e:#}"))),
    })
}

fn migrate(args: &StoreArgs) -> Outcome {
    let cfg = args.config().map_err(usage)?;
    let (before, after) = coretalk::server::migrate(&cfg).map_err(|e| (1, format!("{e:#}")))?;
    if before == after {
        println!("schema is at version {after}: nothing to do");
    } else {
        println!("schema migrated from version {before} to {after}");
    }
    Ok(())
}

fn check_config(args: &ServerArgs) -> Outcome {
    let cfg = args.config().map_err(|e| (1, e))?;
    cfg.validate().map_err(|e| (1, e.to_string()))?;
    coretalk::logging::filter(&cfg.log).map_err(|e| (1, e))?;
    let store = if cfg.store.embedded() {
        format!("embedded store in {}", cfg.store.data_dir.display())
    } else {
        format!(
            "PostgreSQL at {}",
            coretalk::server::redact_url(&cfg.store.url)
        )
    };
    let node = if cfg.cluster.enabled() {
        format!(
            ", cluster node {} (node links on {})",
            cfg.cluster.node.trim(),
            cfg.cluster.listen
        )
    } else {
        String::new()
    };
    println!(
        "configuration is valid: listen {}, {}{node}",
        cfg.listen.addr, store
    );
    Ok(())
}

fn keygen(args: &KeygenArgs) -> Outcome {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (salt, new) = match &args.salt {
        Some(s) => (
            b64.decode(s.trim())
                .map_err(|e| usage(format!("--salt is not standard base64: {e}")))?,
            false,
        ),
        None => (rand::random::<[u8; 32]>().to_vec(), true),
    };
    let key = coretalk::auth::apikey::make_key(&salt, args.sequence, args.root);
    let kind = if args.root { "ROOT" } else { "ordinary" };
    println!("API key v1 seq{} [{kind}]: {key}", args.sequence);
    if new {
        println!("salt (api.key_salt): {}", b64.encode(&salt));
    }
    Ok(())
}
