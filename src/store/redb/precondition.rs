//! The preconditions of a write batch: which keys its creations require to be new and which
//! credentials it claims, checked against the write transaction as earlier batches of the group
//! left it and against the earlier ops of the same batch.
//!
//! It owns the answer "does this batch conflict, and why"; it changes no row (the
//! [`write`](super::write) path applies a batch only after this says it may).

use redb::ReadableTable;

use super::backend;
use super::tables::WriteTables;
use crate::ids::UserId;
use crate::store::batch_keys::{BatchKeys, Created};
use crate::store::{StoreError, WriteBatch, WriteOp};

impl WriteTables<'_> {
    /// keys created or removed by earlier ops of the same batch. `Some(reason)` = the batch
    /// conflicts.
    pub(super) fn conflict(&self, batch: &WriteBatch) -> Result<Option<String>, StoreError> {
        // Only multi-op batches can conflict with themselves; single ops skip the sets.
        let track = batch.len() > 1;
        let mut keys = BatchKeys::default();
        for op in batch {
            let (key, must_be_new) = match op {
                WriteOp::CreateUser(u) => (Created::User(u.id.0), true),
                WriteOp::PutUser(u) => (Created::User(u.id.0), false),
                WriteOp::CreateAuth(a) => (Created::Auth(a.unique.as_str()), true),
                WriteOp::PutAuth(a) => (Created::Auth(a.unique.as_str()), false),
                WriteOp::CreateTopic(t) => (Created::Topic(t.name.as_str()), true),
                WriteOp::PutTopic(t) => (Created::Topic(t.name.as_str()), false),
                WriteOp::AppendMessage(m) => (Created::Message(m.topic.as_str(), m.seq), true),
                WriteOp::DeleteAuth { unique } => {
                    if track {
                        keys.remove(Created::Auth(unique.as_str()));
                    }
                    continue;
                }
                WriteOp::DeleteTopic { name } => {
                    if track {
                        keys.remove_topic(name.as_str());
                    }
                    continue;
                }
                WriteOp::ClaimCred { unique, user } => {
                    let holder = self.claim_holder(&keys, unique)?;
                    if holder.is_some_and(|h| h != *user) {
                        return Ok(Some(format!(
                            "credential {unique} is claimed by another user"
                        )));
                    }
                    if track {
                        keys.claims.insert(unique.as_str(), Some(*user));
                    }
                    continue;
                }
                WriteOp::ReleaseCred { unique, user } => {
                    if track && self.claim_holder(&keys, unique)? == Some(*user) {
                        keys.claims.insert(unique.as_str(), None);
                    }
                    continue;
                }
                WriteOp::PutSub(_)
                | WriteOp::PatchUser(_)
                | WriteOp::DeleteSub { .. }
                | WriteOp::Markers { .. }
                | WriteOp::DeleteMessages(_) => continue,
            };
            if must_be_new {
                let exists = match keys.exists(&key) {
                    Some(known) => known,
                    None => self.exists(&key)?,
                };
                if exists {
                    return Ok(Some(match key {
                        Created::User(id) => format!("user {} exists", UserId(id)),
                        Created::Auth(unique) => format!("login {unique} exists"),
                        Created::Topic(name) => format!("topic {name} exists"),
                        Created::Message(topic, seq) => format!("message {topic}#{seq} exists"),
                    }));
                }
            }
            if track {
                keys.create(key);
            }
        }
        Ok(None)
    }

    /// Who holds the claim on `unique` once the batch's ops seen so far are applied.
    fn claim_holder(
        &self,
        keys: &BatchKeys<'_>,
        unique: &str,
    ) -> Result<Option<UserId>, StoreError> {
        match keys.claims.get(unique) {
            Some(holder) => Ok(*holder),
            None => self.cred_holder(unique),
        }
    }

    /// Whether the row behind a creation key is present in the transaction.
    fn exists(&self, key: &Created<'_>) -> Result<bool, StoreError> {
        let found = match *key {
            Created::User(id) => self.users.get(id).map_err(backend)?.is_some(),
            Created::Auth(unique) => self.auth.get(unique).map_err(backend)?.is_some(),
            Created::Topic(name) => self.topics.get(name).map_err(backend)?.is_some(),
            Created::Message(topic, seq) => {
                self.messages.get((topic, seq)).map_err(backend)?.is_some()
            }
        };
        Ok(found)
    }
}
