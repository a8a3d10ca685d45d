//! Fault injection for tests (`[store.faults]`): knobs that make the server misbehave on
//! purpose, so that integration tests can show what it does when the disk is slow. Every
//! default is "no fault"; the server warns loudly at start-up when any is set. Documented in
//! tuning/store.md.

use serde::Deserialize;

/// `[store.faults]`: leave every field at 0 in production.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreFaultsConfig {
    /// Delay every durable sync by this many ms: each shard's journal `fdatasync` (a timer on
    /// the shard, as io_uring would make it wait) and each durable commit of the store thread
    /// (either store; the thread sleeps, as a slow fsync would hold it). 0: no delay.
    pub sync_delay_ms: u64,
    /// Delay every answer of the reader threads (the PostgreSQL store's reads) by this many ms,
    /// after the queries ran: the answer reaches the shard as late as a slow network would
    /// bring it, while what it read is as of before the wait. 0: no delay.
    pub read_delay_ms: u64,
}

impl StoreFaultsConfig {
    /// Whether any fault is injected.
    pub fn any(&self) -> bool {
        self.sync_delay_ms > 0 || self.read_delay_ms > 0
    }
}
