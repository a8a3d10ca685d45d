//! Fencing of a cluster node's writes: [`Fence`] names the node and holds the epoch under which
//! it currently masters topics; every group commit of a fenced [`PgStore`](super::PgStore)
//! first finds that node row `up` with that epoch and takes a share lock on it, inside the same
//! transaction.
//!
//! The lock orders the commit against the conditional `UPDATE` with which a peer declares the
//! node down: either the commit runs first and the peer takes over only after it, or the peer's
//! update wins and the commit finds no row and fails. So a master paused past its lease (a long
//! GC-like stall, `SIGSTOP`) can never commit after its successor took over. The epoch is kept
//! by the membership thread (`crate::cluster`); 0 means "not a member now": every write fails.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::pool::Conn;
use crate::store::StoreError;

/// A node's name and its current epoch (shared with the membership thread).
#[derive(Clone, Debug)]
pub struct Fence {
    pub node: String,
    pub epoch: Arc<AtomicI64>,
}

impl Fence {
    /// Inside an open transaction: fails unless the node row is up with the current epoch,
    /// which it then holds a share lock on until the transaction ends.
    pub(super) fn check(&self, conn: &mut Conn) -> Result<(), StoreError> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        if epoch <= 0 {
            return Err(StoreError::Backend(format!(
                "node {} is not a cluster member now (fenced): writes are refused",
                self.node
            )));
        }
        let row = conn.query_opt(
            "SELECT 1 FROM cluster_node WHERE name = $1 AND epoch = $2 AND state = 'up' FOR SHARE",
            &[&self.node, &epoch],
        )?;
        match row {
            Some(_) => Ok(()),
            None => Err(StoreError::Backend(format!(
                "node {} epoch {epoch} was fenced (declared down or superseded): the write is refused",
                self.node
            ))),
        }
    }
}
