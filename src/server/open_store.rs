//! Opens the store the configuration names: the embedded store in `store.data_dir` (replaying
//! what a crash left in the shards' journals first) or PostgreSQL at `store.url` (migrated at
//! open, with a pool of reader threads so that no shard waits on the network).
//!
//! It owns the choice of backend and the start-up errors an operator sees when it cannot be
//! opened; it does not run the writer thread nor decide how writes are acknowledged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::store_gate::StoreGate;
use crate::auth::keys::token_key_candidate;
use crate::config::{Config, PostgresConfig};
use crate::store::pg::{Fence, PgOptions, PgStore};
use crate::store::readers::{ReaderPool, ReadersJoin};
use crate::store::{journal, RedbStore, Store};

/// The open store and what comes with it.
pub(super) struct Opened {
    pub gate: Arc<StoreGate<Box<dyn Store>>>,
    /// The reader pool of a network store.
    pub readers: Option<(ReaderPool, ReadersJoin)>,
    /// The embedded store's journal directory (cleared after a clean shutdown).
    pub journal_dir: Option<PathBuf>,
    /// What to print at start: the data directory or the database, without its password.
    pub describe: String,
    /// The token key every server on the PostgreSQL database shares (none for the embedded
    /// store, nor when `auth.token_key` is configured).
    pub shared_token_key: Option<Vec<u8>>,
}

/// Opens the configured store for `n_shards` shards; a cluster node's PostgreSQL store
/// checks `fence` before every commit.
pub(super) fn open(cfg: &Config, n_shards: usize, fence: Option<Fence>) -> anyhow::Result<Opened> {
    let data_dir = &cfg.store.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    if cfg.store.embedded() {
        if !cfg.store.durable {
            log::warn!(
                "store.durable = false: no write is made durable before a clean shutdown. A crash (kill -9, an abort, an OOM kill, a power loss) loses every write since the server started, acknowledged messages and new accounts included. This is for benchmarks and throw-away servers; see tuning/store.md."
            );
        }
        let gate = Arc::new(StoreGate::new(Box::new(RedbStore::open_with_cache(
            data_dir,
            cfg.store.durable,
            cfg.store.cache_mib.max(1) << 20,
        )?) as Box<dyn Store>));
        let journal_dir = data_dir.join(journal::DIR);
        replay_journal(&journal_dir, &*gate)?;
        if cfg.store.durable && cfg.store.journal {
            std::fs::create_dir_all(&journal_dir).with_context(|| {
                format!("cannot create journal directory {}", journal_dir.display())
            })?;
        }
        return Ok(Opened {
            gate,
            readers: None,
            journal_dir: Some(journal_dir),
            describe: format!("data in {}", data_dir.display()),
            shared_token_key: None,
        });
    }
    let url = cfg.store.url.trim();
    let shown = redact(url);
    let pg = &cfg.store.postgres;
    let readers = reader_threads(pg, n_shards);
    let mut opts = pg_options(pg, readers);
    if fence.is_some() {
        // A master paused inside a commit holds the share lock on its membership row: it must
        // not hold off its peers' declaring it down for longer than its lease.
        opts.idle_in_transaction_timeout_ms = cfg.cluster.lease_ms;
    }
    let mut store = PgStore::open(url, opts)
        .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL store at {shown}: {e}"))?;
    if let Some(f) = fence {
        store = store.with_fence(f);
    }
    // Every server on the database signs tokens with one key, so a token from one cluster
    // node logs in on any other (a configured `auth.token_key` overrides it).
    let shared_token_key = if cfg.auth.token_key.is_empty() {
        let candidate = token_key_candidate(data_dir).context("token key")?;
        Some(
            store
                .shared_secret("token_key", &candidate)
                .map_err(|e| anyhow::anyhow!("cannot read the shared token key at {shown}: {e}"))?,
        )
    } else {
        None
    };
    let gate = Arc::new(StoreGate::new(Box::new(store) as Box<dyn Store>));
    let as_store: Arc<dyn Store> = gate.clone();
    let delay = std::time::Duration::from_millis(cfg.store.faults.read_delay_ms);
    let pool = ReaderPool::spawn(as_store, readers, pg.read_queue, delay)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Opened {
        gate,
        readers: Some(pool),
        journal_dir: None,
        describe: format!("data in PostgreSQL {shown} ({readers} reader threads)"),
        shared_token_key,
    })
}

/// `store.postgres.readers`, 0 meaning one per shard plus one.
fn reader_threads(pg: &PostgresConfig, n_shards: usize) -> usize {
    if pg.readers > 0 {
        pg.readers
    } else {
        n_shards + 1
    }
}

/// The store's options from the configuration (`readers` threads share the pool).
pub fn pg_options(pg: &PostgresConfig, readers: usize) -> PgOptions {
    PgOptions {
        connect_timeout_ms: pg.connect_timeout_ms,
        statement_timeout_ms: pg.statement_timeout_ms,
        idle_in_transaction_timeout_ms: pg.statement_timeout_ms,
        max_connections: if pg.max_connections > 0 {
            pg.max_connections
        } else {
            readers + 2
        },
        max_rows_per_statement: pg.max_rows_per_statement.max(1),
    }
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(p) => p,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Replays what a crash left in the journal into the store before anything else runs.
fn replay_journal(dir: &Path, store: &dyn Store) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let rep = journal::replay(dir, store)
        .with_context(|| format!("cannot replay the journal in {}", dir.display()))?;
    for (file, at, why) in &rep.torn {
        log::warn!(
            "journal {}: {why} at byte {at}: the rest of that segment was never acknowledged",
            file.display()
        );
    }
    if rep.files > 0 {
        log::info!(
            "journal replayed in {} ms: {} segment(s), {} record(s), {} op(s) applied, {} message(s) already stored",
            started.elapsed().as_millis(),
            rep.files,
            rep.records,
            rep.applied,
            rep.present
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact("postgres://app:s3cret@10.0.0.5:5432/chat"),
            "postgres://app:***@10.0.0.5:5432/chat"
        );
        assert_eq!(
            redact("postgres://app@10.0.0.5:5432/chat"),
            "postgres://app@10.0.0.5:5432/chat"
        );
        assert_eq!(redact("postgresql://a:b:c@h/db"), "postgresql://a:***@h/db");
    }
}
