//! The append fast path of the write transaction: a batch that opens with a message append
//! and creates, claims or removes nothing else checks that the message is new by inserting it
//! (redb hands back the row it replaced) instead of reading the key first.
//!
//! It owns only that shortcut; every other batch goes through
//! [`precondition`](super::precondition) and [`write`](super::write), and the result is the
//! same either way: a message that exists makes the whole batch a conflict and changes no row.

use super::tables::WriteTables;
use super::{backend, codec};
use crate::store::{StoreError, WriteBatch, WriteOp};

impl WriteTables<'_> {
    /// Applies `batch` if it is such an append. `Ok(None)`: it is not (check and apply it the
    /// general way); `Ok(Some(result))`: what the batch came to; `Err`: the transaction failed.
    pub(super) fn try_append(
        &mut self,
        batch: &WriteBatch,
    ) -> Result<Option<Result<(), StoreError>>, StoreError> {
        let Some((WriteOp::AppendMessage(m), rest)) = batch.split_first() else {
            return Ok(None);
        };
        if !rest.iter().all(untracked) {
            return Ok(None);
        }
        let key = (m.topic.as_str(), m.seq);
        let bytes = codec::encode_message(m);
        let replaced = self
            .messages
            .insert(key, bytes.as_slice())
            .map_err(backend)?
            .map(|old| old.value().to_vec());
        if let Some(old) = replaced {
            // The message was there: put it back, and nothing of the batch applies.
            self.messages.insert(key, old.as_slice()).map_err(backend)?;
            return Ok(Some(Err(StoreError::Conflict(format!(
                "message {}#{} exists",
                m.topic, m.seq
            )))));
        }
        for op in rest {
            self.apply_op(op)?;
        }
        Ok(Some(Ok(())))
    }
}

/// Ops the preconditions neither check nor track (see `WriteTables::conflict`).
fn untracked(op: &WriteOp) -> bool {
    matches!(
        op,
        WriteOp::PutSub(_)
            | WriteOp::PatchUser(_)
            | WriteOp::DeleteSub { .. }
            | WriteOp::Markers { .. }
            | WriteOp::DeleteMessages(_)
    )
}
