//! [`PgStore`]: the [`Store`](crate::store::Store) implementation on PostgreSQL, for clusters or
//! for operators who prefer a database server to the embedded file. It mirrors the observable
//! semantics of [`RedbStore`](crate::store::RedbStore) exactly; the shared conformance suite
//! runs on both.
//!
//! This file owns the public face: [`PgOptions`], [`PgStore::open`], [`migrate`] and
//! [`is_postgres_url`]. It is called from blocking threads only (the writer thread and a reader
//! pool), never from an executor: the `postgres` client blocks its caller.
//!
//! Files: `pool.rs` (connections: a capped pool, a statement cache, reconnection), `schema.rs`
//! (versioned migrations under an advisory lock), `keys.rs` (u64 values in `bigint` columns and
//! u64 ranges as bigint spans), `rows.rs` (row ↔ record), `read.rs` (the `Store` impl: reads),
//! `query.rs` (composite reads in one statement), `write.rs` (`apply`: one transaction, runs
//! of batches), `precondition.rs` (a general batch's conflicts), `write_ops.rs` (one op's
//! statements), `write_fast.rs` (runs of append/markers batches as multi-row statements),
//! `testing.rs` (a throw-away PostgreSQL for tests), `tests/`.
//!
//! Storage conventions (also written as `COMMENT`s on the schema, see `schema.rs`): every u64
//! (user ids, seqs, delete ids, read/recv markers, unix-millisecond times) is stored in a
//! `bigint` column bit-cast (`v as i64`): values below 2^63 read as themselves, larger ones as
//! negative numbers; the store orders and compares them as u64. Client JSON (`public`,
//! `private`, `trusted`, `head`, `content`, `aux`) is stored verbatim in `text` columns (never
//! `jsonb`, which rewrites bytes). Names and keys are `text COLLATE "C"`, ordered byte by byte
//! like redb's keys.

mod fence;
mod keys;
mod pool;
mod precondition;
mod query;
mod read;
mod rows;
mod schema;
mod write;
mod write_fast;
mod write_ops;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use pool::Pool;

pub use fence::Fence;
pub use schema::SCHEMA_VERSION;

/// Connection settings of a [`PgStore`]. Every field has a default ([`PgOptions::default`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// How long one connection attempt may take before it fails, in milliseconds; 0 means no
    /// limit but the system's (default 5000). An unreachable server fails at once when its port
    /// is closed; this bounds the wait on a silent network.
    pub connect_timeout_ms: u64,
    /// `statement_timeout` set on every connection, in milliseconds; 0 means none (default
    /// 30000). A statement running longer fails, and its whole `apply` group fails with it.
    pub statement_timeout_ms: u64,
    /// `idle_in_transaction_session_timeout` set on every connection, in milliseconds; 0 means
    /// none (default 30000). PostgreSQL ends a session that sits inside a transaction for longer
    /// (its process stopped or stalled mid-commit), releasing its locks: a cluster node sets it
    /// to its lease, so that a master paused inside a commit, which holds the share lock on its
    /// own membership row (`Fence`), cannot keep its peers from declaring it down for longer.
    pub idle_in_transaction_timeout_ms: u64,
    /// The most connections open at once (default 16): the writer holds one while it commits,
    /// each reader thread one while it reads. Connections open lazily; a caller finding all of
    /// them busy waits for one to be returned.
    pub max_connections: usize,
    /// The most rows one multi-row statement carries (default 1000): a group of appends larger
    /// than this is inserted in several statements of the same transaction.
    pub max_rows_per_statement: usize,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            connect_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            idle_in_transaction_timeout_ms: 30_000,
            max_connections: 16,
            max_rows_per_statement: 1_000,
        }
    }
}

/// A [`Store`](crate::store::Store) backed by one PostgreSQL database.
///
/// Every read takes a pooled connection for one statement (or a few, for composite reads);
/// `apply` runs a whole group of batches in one transaction, committed with
/// `synchronous_commit = on`, so that it returns only once PostgreSQL has made the commit
/// durable. A connection lost mid-group fails every batch of the group; the next call connects
/// afresh.
pub struct PgStore {
    pool: Pool,
    /// In a cluster: the node row every group commit must find up with this node's epoch.
    fence: Option<Fence>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("server", &self.pool.target())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects (failing fast with a [`StoreError::Backend`](crate::store::StoreError) naming
    /// the server's host:port and the cause when PostgreSQL cannot be reached), applies the
    /// pending schema migrations under an advisory lock, and returns the store. A database whose
    /// schema is newer than this binary knows is refused.
    pub fn open(url: &str, opts: PgOptions) -> Result<PgStore, crate::store::StoreError> {
        let pool = Pool::new(url, opts)?;
        {
            let mut conn = pool.get()?;
            schema::migrate_conn(&mut conn)?;
        }
        Ok(PgStore { pool, fence: None })
    }

    /// Makes every group commit check `fence` first (a cluster node's own row): a node that
    /// was declared down, or re-joined under a newer epoch, can then never commit again.
    pub fn with_fence(mut self, fence: Fence) -> PgStore {
        self.fence = Some(fence);
        self
    }

    /// The secret `name` every server on this database shares: the stored one, or, when
    /// there is none yet, `candidate` stored as it (insert if absent, so servers starting
    /// together agree on the first writer's). Never replaces a stored value.
    pub fn shared_secret(
        &self,
        name: &str,
        candidate: &[u8],
    ) -> Result<Vec<u8>, crate::store::StoreError> {
        let mut conn = self.pool.get()?;
        conn.execute(
            "INSERT INTO shared_secret (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &candidate],
        )?;
        let row = conn
            .query_opt("SELECT value FROM shared_secret WHERE name = $1", &[&name])?
            .ok_or_else(|| crate::store::StoreError::Backend(format!("secret {name} vanished")))?;
        row.try_get(0)
            .map_err(|e| crate::store::StoreError::Backend(format!("reading secret {name}: {e}")))
    }

    /// Statements this store has sent to PostgreSQL so far (prepares excluded): for tests and
    /// diagnostics of how many round trips a group costs.
    pub fn statements_sent(&self) -> u64 {
        self.pool.statements_sent()
    }
}

/// Applies the pending schema migrations by hand (a `coretalk migrate` subcommand) and returns
/// the schema version before and after. A database already current is left as it is:
/// `(N, N)`.
pub fn migrate(url: &str, opts: &PgOptions) -> Result<(u32, u32), crate::store::StoreError> {
    let pool = Pool::new(url, opts.clone())?;
    let mut conn = pool.get()?;
    schema::migrate_conn(&mut conn)
}

/// Whether `s` is a PostgreSQL connection URL (`postgres://…` or `postgresql://…`), as opposed
/// to a data directory for the embedded store.
pub fn is_postgres_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}
