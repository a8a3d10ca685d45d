//! The write path of [`RedbStore`]: `Store::apply`'s one write transaction over many batches,
//! and the application of each op of a batch that passed its preconditions, tombstones and
//! whole-topic deletion included.
//!
//! It owns how each [`WriteOp`] changes the rows and keeps the by-user and tag indexes in step
//! (through [`index`](super::index); credential claims through [`claims`](super::claims)). It does not decide whether a batch may apply — that is
//! [`precondition`](super::precondition) — and does not group or schedule writes.

use redb::{Durability, ReadableTable};

use super::tables::WriteTables;
use super::{backend, codec, RedbStore};
use crate::store::{MessageRecord, StoreError, UserState, WriteBatch, WriteOp};

/// How many tombstones a hard delete rewrites per pass, bounding its memory on huge ranges.
pub(super) const TOMBSTONE_CHUNK: usize = 512;

impl RedbStore {
    /// The fallible body of [`Store::apply`](crate::store::Store::apply): `Err` means the whole transaction failed.
    /// An empty transaction committed with [`Durability::Immediate`]: redb then persists it
    /// and every volatile commit before it.
    pub(super) fn sync_txn(&self) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate).map_err(backend)?;
        txn.commit().map_err(backend)
    }

    pub(super) fn apply_txn(
        &self,
        batches: &[WriteBatch],
        durable: bool,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(backend)?;
        let mut results = Vec::with_capacity(batches.len());
        {
            let mut t = WriteTables::open(&txn)?;
            for batch in batches {
                if let Some(result) = t.try_append(batch)? {
                    results.push(result);
                    continue;
                }
                match t.conflict(batch)? {
                    Some(msg) => results.push(Err(StoreError::Conflict(msg))),
                    None => {
                        for op in batch {
                            t.apply_op(op)?;
                        }
                        results.push(Ok(()));
                    }
                }
            }
        }
        txn.commit().map_err(backend)?;
        Ok(results)
    }
}

impl WriteTables<'_> {
    /// Applies one op whose batch passed [`WriteTables::conflict`].
    pub(super) fn apply_op(&mut self, op: &WriteOp) -> Result<(), StoreError> {
        match op {
            WriteOp::CreateUser(u) | WriteOp::PutUser(u) => {
                // The index follows the tags whatever the user's state; readers filter states.
                let old_tags = match self.users.get(u.id.0).map_err(backend)? {
                    Some(g) => match codec::decode_user(u.id, g.value()) {
                        Ok(old) => Some(old.tags),
                        Err(e) => {
                            log::error!("replacing unreadable user record {}: {e}", u.id);
                            None
                        }
                    },
                    None => Some(Vec::new()),
                };
                let bytes = codec::encode_user(u);
                self.users
                    .insert(u.id.0, bytes.as_slice())
                    .map_err(backend)?;
                self.retag(&u.id.usr(), old_tags.as_deref(), &u.tags)?;
            }
            WriteOp::PatchUser(p) => {
                let old = match self.users.get(p.id.0).map_err(backend)? {
                    Some(g) => match codec::decode_user(p.id, g.value()) {
                        Ok(u) => Some(u),
                        Err(e) => {
                            log::error!("not patching unreadable user record {}: {e}", p.id);
                            None
                        }
                    },
                    None => None,
                };
                if let Some(old) = old.filter(|u| u.state != UserState::Deleted) {
                    let mut u = old.clone();
                    p.apply(&mut u);
                    let bytes = codec::encode_user(&u);
                    self.users
                        .insert(u.id.0, bytes.as_slice())
                        .map_err(backend)?;
                    self.retag(&u.id.usr(), Some(&old.tags), &u.tags)?;
                }
            }
            WriteOp::CreateAuth(a) | WriteOp::PutAuth(a) => {
                let unique = a.unique.as_str();
                // A corrupt old row is replaced by this put rather than failing the whole
                // group; only its index entry (owner unknown) may be left behind, and readers
                // skip such stale entries.
                let previous_owner = match self.auth.get(unique).map_err(backend)? {
                    Some(g) => match codec::decode_auth(unique, g.value()) {
                        Ok(old) => Some(old.user),
                        Err(e) => {
                            log::error!("replacing unreadable auth record {unique}: {e}");
                            None
                        }
                    },
                    None => None,
                };
                if let Some(old) = previous_owner.filter(|old| *old != a.user) {
                    self.auth_by_user.remove((old.0, unique)).map_err(backend)?;
                }
                let bytes = codec::encode_auth(a);
                self.auth
                    .insert(unique, bytes.as_slice())
                    .map_err(backend)?;
                self.auth_by_user
                    .insert((a.user.0, unique), ())
                    .map_err(backend)?;
            }
            WriteOp::DeleteAuth { unique } => {
                let unique = unique.as_str();
                let owner = match self.auth.remove(unique).map_err(backend)? {
                    Some(g) => match codec::decode_auth(unique, g.value()) {
                        Ok(old) => Some(Some(old.user)),
                        Err(e) => {
                            log::error!("deleting unreadable auth record {unique}: {e}");
                            Some(None)
                        }
                    },
                    None => None,
                };
                match owner {
                    Some(Some(user)) => {
                        self.auth_by_user
                            .remove((user.0, unique))
                            .map_err(backend)?;
                    }
                    // Owner unknown: drop whichever index entry names this login.
                    Some(None) => self
                        .auth_by_user
                        .retain(|(_, login), ()| login != unique)
                        .map_err(backend)?,
                    None => {}
                }
            }
            WriteOp::CreateTopic(t) | WriteOp::PutTopic(t) => {
                let name = t.name.as_str();
                let old_tags = match self.topics.get(name).map_err(backend)? {
                    Some(g) => match codec::decode_topic(name, g.value()) {
                        Ok(old) => Some(old.tags),
                        Err(e) => {
                            log::error!("replacing unreadable topic record {name}: {e}");
                            None
                        }
                    },
                    None => Some(Vec::new()),
                };
                let bytes = codec::encode_topic(t);
                self.topics
                    .insert(name, bytes.as_slice())
                    .map_err(backend)?;
                self.retag(name, old_tags.as_deref(), &t.tags)?;
            }
            WriteOp::DeleteTopic { name } => self.delete_topic(name)?,
            WriteOp::PutSub(s) => {
                let bytes = codec::encode_sub(s);
                self.subs
                    .insert((s.topic.as_str(), s.user.0), bytes.as_slice())
                    .map_err(backend)?;
                self.subs_by_user
                    .insert((s.user.0, s.topic.as_str()), ())
                    .map_err(backend)?;
            }
            WriteOp::DeleteSub { topic, user } => {
                self.subs
                    .remove((topic.as_str(), user.0))
                    .map_err(backend)?;
                self.subs_by_user
                    .remove((user.0, topic.as_str()))
                    .map_err(backend)?;
            }
            WriteOp::Markers {
                topic,
                user,
                read,
                recv,
            } => {
                let key = (topic.as_str(), user.0);
                // An unreadable row is left alone (logged) rather than failing every batch of
                // the group; the next PutSub replaces it.
                let current = match self.subs.get(key).map_err(backend)? {
                    Some(g) => match codec::decode_sub(topic, *user, g.value()) {
                        Ok(sub) => Some(sub),
                        Err(e) => {
                            log::error!("markers skipped, unreadable sub ({topic}, {user}): {e}");
                            None
                        }
                    },
                    None => None,
                };
                if let Some(mut sub) = current {
                    let new_read = sub.read.max(*read);
                    let new_recv = sub.recv.max(*recv).max(new_read);
                    if new_read != sub.read || new_recv != sub.recv {
                        sub.read = new_read;
                        sub.recv = new_recv;
                        let bytes = codec::encode_sub(&sub);
                        self.subs.insert(key, bytes.as_slice()).map_err(backend)?;
                    }
                }
            }
            WriteOp::AppendMessage(m) => {
                let bytes = codec::encode_message(m);
                self.messages
                    .insert((m.topic.as_str(), m.seq), bytes.as_slice())
                    .map_err(backend)?;
            }
            WriteOp::ClaimCred { unique, user } => self.claim_cred(unique, *user)?,
            WriteOp::ReleaseCred { unique, user } => self.release_cred(unique, *user)?,
            WriteOp::DeleteMessages(d) => {
                let bytes = codec::encode_del(d);
                self.dels
                    .insert((d.topic.as_str(), d.del_id), bytes.as_slice())
                    .map_err(backend)?;
                if d.user.is_none() {
                    for &(low, hi) in &d.ranges {
                        self.tombstone(&d.topic, low, hi)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Turns the stored messages of `topic` with seqs in `[low, hi)` into tombstones, a chunk
    /// at a time. Tombstones already there are left as they are; an unreadable row is logged
    /// and left alone (its readers already fail on it).
    fn tombstone(&mut self, topic: &str, low: u64, hi: u64) -> Result<(), StoreError> {
        let mut next = low;
        while next < hi {
            let mut stones = Vec::new();
            let mut last = None;
            for entry in self
                .messages
                .range((topic, next)..(topic, hi))
                .map_err(backend)?
                .take(TOMBSTONE_CHUNK)
            {
                let (key, value) = entry.map_err(backend)?;
                let (_, seq) = key.value();
                last = Some(seq);
                match codec::decode_message(topic, seq, value.value()) {
                    Ok(m) if !m.deleted => stones.push(MessageRecord {
                        deleted: true,
                        head: None,
                        content: String::new(),
                        ..m
                    }),
                    Ok(_) => {}
                    Err(e) => {
                        log::error!("hard delete skips unreadable message {topic}#{seq}: {e}")
                    }
                }
            }
            for m in &stones {
                let bytes = codec::encode_message(m);
                self.messages
                    .insert((topic, m.seq), bytes.as_slice())
                    .map_err(backend)?;
            }
            // `last < hi`, so `last + 1` cannot overflow.
            match last {
                Some(seq) => next = seq + 1,
                None => break,
            }
        }
        Ok(())
    }

    /// Removes a topic and everything stored under its name. Rows left without a topic record
    /// (subscriptions, messages) go too; nothing stored under the name makes this a no-op.
    fn delete_topic(&mut self, name: &str) -> Result<(), StoreError> {
        let old_tags = match self.topics.remove(name).map_err(backend)? {
            Some(g) => match codec::decode_topic(name, g.value()) {
                Ok(old) => Some(old.tags),
                Err(e) => {
                    log::error!("deleting unreadable topic record {name}: {e}");
                    None
                }
            },
            None => Some(Vec::new()),
        };
        self.retag(name, old_tags.as_deref(), &[])?;
        let mut users = Vec::new();
        for entry in self
            .subs
            .range((name, 0u64)..=(name, u64::MAX))
            .map_err(backend)?
        {
            let (key, _) = entry.map_err(backend)?;
            users.push(key.value().1);
        }
        for user in users {
            self.subs.remove((name, user)).map_err(backend)?;
            self.subs_by_user.remove((user, name)).map_err(backend)?;
        }
        self.messages
            .retain_in((name, 0u64)..=(name, u64::MAX), |_, _| false)
            .map_err(backend)?;
        self.dels
            .retain_in((name, 0u64)..=(name, u64::MAX), |_, _| false)
            .map_err(backend)?;
        Ok(())
    }
}
