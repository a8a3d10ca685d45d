//! [`RedbStore`]: the [`Store`](crate::store::Store) implementation on an embedded redb file
//! (or redb's in-memory backend for tests): opening, creating the tables, and building the
//! indexes a database written by an older version lacks.
//!
//! It owns the on-disk format and the transactional semantics of `Store::apply` (per-batch
//! preconditions inside one write transaction). It deliberately does not queue, group or
//! schedule writes — that is the [`writer`](crate::store::writer) thread's job — and it never
//! interprets the JSON text fields it stores.
//!
//! Files: `tables.rs` (table definitions), `codec.rs` (value encoding), `read.rs` (the `Store`
//! impl: every read), `write.rs` (`Store::apply`: one transaction, op by op),
//! `precondition.rs` (a batch's conflicts), `index.rs` (the tag index), `claims.rs`
//! (credential claims), `tests/` (what only
//! redb shows: reopening files, corrupt rows, old databases; the shared suite is
//! [`conformance`](crate::store::conformance)).

mod append;
mod claims;
mod codec;
mod index;
mod precondition;
mod read;
mod tables;
mod write;

#[doc(hidden)]
pub(crate) use codec::fuzz as codec_fuzz;

#[cfg(test)]
mod tests;

use redb::backends::InMemoryBackend;
use redb::{Database, ReadTransaction, ReadableDatabase, TableHandle};
use std::path::Path;

use crate::store::StoreError;
use tables::{WriteTables, CREDS, TAGS};

/// Name of the database file created inside the data directory.
pub const FILE_NAME: &str = "coretalk.redb";

/// Maps any redb error (they all implement `Display`) to [`StoreError::Backend`].
fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(format!("redb: {e}"))
}

/// A [`Store`](crate::store::Store) backed by one redb database.
///
/// Reads open a short read transaction each (redb MVCC: they never block the writer). Writes go
/// through `Store::apply`, which runs all the batches it is given in a single write
/// transaction, committed with [`Durability::Immediate`](redb::Durability::Immediate) (fsync)
/// when the store was opened `durable`, or [`Durability::None`](redb::Durability::None)
/// otherwise. Non-durable commits are made durable when the database is closed cleanly
/// (dropped), but a crash loses them.
pub struct RedbStore {
    db: Database,
    durable: bool,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (or creates) `dir/coretalk.redb`, creating `dir` if needed. With `durable`, every
    /// commit is fsynced before `Store::apply` returns.
    pub fn open(dir: &Path, durable: bool) -> Result<RedbStore, StoreError> {
        RedbStore::open_with_cache(dir, durable, 1024 << 20)
    }

    /// [`RedbStore::open`] with a page cache of `cache_bytes` (`store.cache_mib`).
    pub fn open_with_cache(
        dir: &Path,
        durable: bool,
        cache_bytes: usize,
    ) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        RedbStore::init(db, durable)
    }

    /// A fresh, empty store held in memory (tests, ephemeral runs).
    ///
    /// # Panics
    /// Only if redb cannot initialise an in-memory database, which involves no I/O.
    pub fn in_memory() -> RedbStore {
        Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .map_err(backend)
            .and_then(|db| RedbStore::init(db, false))
            .expect("in-memory redb database")
    }

    /// Whether commits are fsynced.
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// Creates every table, so that read transactions never meet a missing one. A database
    /// written before the tag index or the credential claims existed gets them built from its
    /// records here.
    fn init(db: Database, durable: bool) -> Result<RedbStore, StoreError> {
        let txn = db.begin_write().map_err(backend)?;
        let (mut has_tag_index, mut has_claims) = (false, false);
        for table in txn.list_tables().map_err(backend)? {
            has_tag_index |= table.name() == TAGS.name();
            has_claims |= table.name() == CREDS.name();
        }
        {
            let mut t = WriteTables::open(&txn)?;
            if !has_tag_index {
                t.build_tag_index()?;
            }
            if !has_claims {
                t.build_cred_claims()?;
            }
        }
        txn.commit().map_err(backend)?;
        Ok(RedbStore { db, durable })
    }

    /// A read transaction: a consistent snapshot for one `Store` read.
    fn read_txn(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(backend)
    }
}
