//! [`RedbStore`]: the [`Store`] implementation on an embedded redb file (or redb's in-memory
//! backend for tests), with its table layout and the compact binary record codec.
//!
//! It owns the on-disk format and the transactional semantics of [`Store::apply`] (per-batch
//! preconditions inside one write transaction). It deliberately does not queue, group or
//! schedule writes — that is the [`writer`](super::writer) thread's job — and it never
//! interprets the JSON text fields it stores.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::path::Path;

use redb::backends::InMemoryBackend;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    TableHandle, WriteTransaction,
};

use super::{
    AuthRecord, DelRecord, LastMessage, MessageQuery, MessageRecord, Store, StoreError, SubRecord,
    TopicRecord, UserRecord, WriteBatch, WriteOp,
};
use crate::ids::UserId;

/// Name of the database file created inside the data directory.
pub const FILE_NAME: &str = "coretalk.redb";

/// user id → encoded [`UserRecord`].
const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// unique login (`scheme:login`) → encoded [`AuthRecord`].
const AUTH: TableDefinition<&str, &[u8]> = TableDefinition::new("auth");
/// (user id, unique login) → (): the auth records of a user.
const AUTH_BY_USER: TableDefinition<(u64, &str), ()> = TableDefinition::new("auth_by_user");
/// topic name → encoded [`TopicRecord`].
const TOPICS: TableDefinition<&str, &[u8]> = TableDefinition::new("topics");
/// (topic, user id) → encoded [`SubRecord`].
const SUBS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("subs");
/// (user id, topic) → (): the subscriptions of a user.
const SUBS_BY_USER: TableDefinition<(u64, &str), ()> = TableDefinition::new("subs_by_user");
/// (topic, seq) → encoded [`MessageRecord`] (tombstones included).
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// (topic, delete id) → encoded [`DelRecord`]: the delete history of a topic.
const DELS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dels");
/// (tag, owner) → (): the tag index. The owner is `usr…` for a user, the topic name for a
/// topic. Kept in step with the records' `tags` by every write that stores or removes them.
const TAGS: TableDefinition<(&str, &str), ()> = TableDefinition::new("tags");

/// How many tombstones a hard delete rewrites per pass, bounding its memory on huge ranges.
const TOMBSTONE_CHUNK: usize = 512;

/// Maps any redb error (they all implement `Display`) to [`StoreError::Backend`].
fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(format!("redb: {e}"))
}

/// A [`Store`] backed by one redb database.
///
/// Reads open a short read transaction each (redb MVCC: they never block the writer). Writes go
/// through [`Store::apply`], which runs all the batches it is given in a single write
/// transaction, committed with [`Durability::Immediate`] (fsync) when the store was opened
/// `durable`, or [`Durability::None`] otherwise. Non-durable commits are made durable when the
/// database is closed cleanly (dropped), but a crash loses them.
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
    /// commit is fsynced before [`Store::apply`] returns.
    pub fn open(dir: &Path, durable: bool) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path)
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
    /// written before the tag index existed gets it built from its users and topics here.
    fn init(db: Database, durable: bool) -> Result<RedbStore, StoreError> {
        let txn = db.begin_write().map_err(backend)?;
        let has_tag_index = txn
            .list_tables()
            .map_err(backend)?
            .any(|t| t.name() == TAGS.name());
        {
            txn.open_table(USERS).map_err(backend)?;
            txn.open_table(AUTH).map_err(backend)?;
            txn.open_table(AUTH_BY_USER).map_err(backend)?;
            txn.open_table(TOPICS).map_err(backend)?;
            txn.open_table(SUBS).map_err(backend)?;
            txn.open_table(SUBS_BY_USER).map_err(backend)?;
            txn.open_table(MESSAGES).map_err(backend)?;
            txn.open_table(DELS).map_err(backend)?;
            txn.open_table(TAGS).map_err(backend)?;
            if !has_tag_index {
                WriteTables::open(&txn)?.build_tag_index()?;
            }
        }
        txn.commit().map_err(backend)?;
        Ok(RedbStore { db, durable })
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(backend)
    }

    /// The fallible body of [`Store::apply`]: `Err` means the whole transaction failed.
    fn apply_txn(&self, batches: &[WriteBatch]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(if self.durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(backend)?;
        let mut results = Vec::with_capacity(batches.len());
        {
            let mut t = WriteTables::open(&txn)?;
            for batch in batches {
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

/// The tables of one write transaction.
struct WriteTables<'txn> {
    users: Table<'txn, u64, &'static [u8]>,
    auth: Table<'txn, &'static str, &'static [u8]>,
    auth_by_user: Table<'txn, (u64, &'static str), ()>,
    topics: Table<'txn, &'static str, &'static [u8]>,
    subs: Table<'txn, (&'static str, u64), &'static [u8]>,
    subs_by_user: Table<'txn, (u64, &'static str), ()>,
    messages: Table<'txn, (&'static str, u64), &'static [u8]>,
    dels: Table<'txn, (&'static str, u64), &'static [u8]>,
    tags: Table<'txn, (&'static str, &'static str), ()>,
}

/// A key that an earlier op of the same batch creates, for intra-batch conflict checks.
#[derive(PartialEq, Eq, Hash)]
enum Created<'b> {
    User(u64),
    Auth(&'b str),
    Topic(&'b str),
    Message(&'b str, u64),
}

/// What the ops of a batch seen so far did to the keys that creations must not find: the keys
/// they created and the ones they removed, so that a batch may delete and then recreate.
#[derive(Default)]
struct BatchKeys<'b> {
    created: HashSet<Created<'b>>,
    removed: HashSet<Created<'b>>,
    /// Topics removed whole: their messages are gone too.
    removed_topics: HashSet<&'b str>,
}

impl<'b> BatchKeys<'b> {
    /// `Some(answer)` when the batch so far decides whether `key` exists, `None` when the
    /// transaction's own state does.
    fn exists(&self, key: &Created<'b>) -> Option<bool> {
        if self.created.contains(key) {
            return Some(true);
        }
        let gone = self.removed.contains(key)
            || matches!(key, Created::Message(topic, _) if self.removed_topics.contains(topic));
        gone.then_some(false)
    }

    fn create(&mut self, key: Created<'b>) {
        self.removed.remove(&key);
        self.created.insert(key);
    }

    fn remove(&mut self, key: Created<'b>) {
        self.created.remove(&key);
        self.removed.insert(key);
    }

    fn remove_topic(&mut self, name: &'b str) {
        self.created
            .retain(|k| !matches!(k, Created::Message(topic, _) if *topic == name));
        self.removed_topics.insert(name);
        self.remove(Created::Topic(name));
    }
}

/// Seqs `[low, hi)` to leave out of a message query, merged and sorted by `low`.
struct Exclusions(Vec<(u64, u64)>);

impl Exclusions {
    fn new(mut ranges: Vec<(u64, u64)>) -> Exclusions {
        ranges.retain(|&(low, hi)| low < hi);
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (low, hi) in ranges {
            match merged.last_mut() {
                Some(last) if low <= last.1 => last.1 = last.1.max(hi),
                _ => merged.push((low, hi)),
            }
        }
        Exclusions(merged)
    }

    /// The low end of the range that holds `seq`, if one does.
    fn low_of(&self, seq: u64) -> Option<u64> {
        let i = self.0.partition_point(|&(low, _)| low <= seq);
        let (low, hi) = *self.0.get(i.checked_sub(1)?)?;
        (seq < hi).then_some(low)
    }
}

impl<'txn> WriteTables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(WriteTables {
            users: txn.open_table(USERS).map_err(backend)?,
            auth: txn.open_table(AUTH).map_err(backend)?,
            auth_by_user: txn.open_table(AUTH_BY_USER).map_err(backend)?,
            topics: txn.open_table(TOPICS).map_err(backend)?,
            subs: txn.open_table(SUBS).map_err(backend)?,
            subs_by_user: txn.open_table(SUBS_BY_USER).map_err(backend)?,
            messages: txn.open_table(MESSAGES).map_err(backend)?,
            dels: txn.open_table(DELS).map_err(backend)?,
            tags: txn.open_table(TAGS).map_err(backend)?,
        })
    }

    /// Checks the preconditions of a batch against the transaction as it is now, including the
    /// keys created or removed by earlier ops of the same batch. `Some(reason)` = the batch
    /// conflicts.
    fn conflict(&self, batch: &WriteBatch) -> Result<Option<String>, StoreError> {
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

    /// Applies one op whose batch passed [`WriteTables::conflict`].
    fn apply_op(&mut self, op: &WriteOp) -> Result<(), StoreError> {
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
                if let Some(old) = old.filter(|u| u.state != super::UserState::Deleted) {
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

    /// Moves `owner`'s tag index entries from `old` to `new` tags. `old: None` means the
    /// previous tags are unknown (unreadable record): every entry of the owner is dropped first.
    fn retag(
        &mut self,
        owner: &str,
        old: Option<&[String]>,
        new: &[String],
    ) -> Result<(), StoreError> {
        match old {
            Some(old) => {
                for tag in old.iter().filter(|t| !new.contains(t)) {
                    self.tags.remove((tag.as_str(), owner)).map_err(backend)?;
                }
            }
            None => self.tags.retain(|(_, o), ()| o != owner).map_err(backend)?,
        }
        for tag in new {
            if !old.is_some_and(|old| old.contains(tag)) {
                self.tags
                    .insert((tag.as_str(), owner), ())
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    /// Fills the (empty) tag index from every stored user and topic; unreadable records are
    /// logged and skipped.
    fn build_tag_index(&mut self) -> Result<(), StoreError> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for entry in self.users.iter().map_err(backend)? {
            let (key, value) = entry.map_err(backend)?;
            let id = UserId(key.value());
            match codec::decode_user(id, value.value()) {
                Ok(u) => entries.extend(u.tags.into_iter().map(|t| (t, id.usr()))),
                Err(e) => log::error!("tag index skips unreadable user {id}: {e}"),
            }
        }
        for entry in self.topics.iter().map_err(backend)? {
            let (key, value) = entry.map_err(backend)?;
            let name = key.value();
            match codec::decode_topic(name, value.value()) {
                Ok(t) => entries.extend(t.tags.into_iter().map(|tag| (tag, name.to_owned()))),
                Err(e) => log::error!("tag index skips unreadable topic {name}: {e}"),
            }
        }
        if !entries.is_empty() {
            log::info!("building the tag index: {} entries", entries.len());
        }
        for (tag, owner) in &entries {
            self.tags
                .insert((tag.as_str(), owner.as_str()), ())
                .map_err(backend)?;
        }
        Ok(())
    }
}

impl Store for RedbStore {
    fn user(&self, uid: UserId) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(USERS).map_err(backend)?;
        match table.get(uid.0).map_err(backend)? {
            Some(g) => codec::decode_user(uid, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn auth(&self, unique: &str) -> Result<Option<AuthRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(AUTH).map_err(backend)?;
        match table.get(unique).map_err(backend)? {
            Some(g) => codec::decode_auth(unique, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn auths_of_user(&self, uid: UserId) -> Result<Vec<AuthRecord>, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(AUTH_BY_USER).map_err(backend)?;
        let auth = txn.open_table(AUTH).map_err(backend)?;
        let mut out = Vec::new();
        for entry in index.range((uid.0, "")..).map_err(backend)? {
            let (key, _) = entry.map_err(backend)?;
            let (user, unique) = key.value();
            if user != uid.0 {
                break;
            }
            match auth.get(unique).map_err(backend)? {
                Some(g) => {
                    let rec = codec::decode_auth(unique, g.value())?;
                    if rec.user == uid {
                        out.push(rec);
                    } else {
                        log::warn!("stale auth index entry ({uid}, {unique})");
                    }
                }
                None => log::warn!("dangling auth index entry ({uid}, {unique})"),
            }
        }
        Ok(out)
    }

    fn topic(&self, name: &str) -> Result<Option<TopicRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(TOPICS).map_err(backend)?;
        match table.get(name).map_err(backend)? {
            Some(g) => codec::decode_topic(name, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn sub(&self, topic: &str, uid: UserId) -> Result<Option<SubRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(SUBS).map_err(backend)?;
        match table.get((topic, uid.0)).map_err(backend)? {
            Some(g) => codec::decode_sub(topic, uid, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn subs_of_topic(&self, topic: &str) -> Result<Vec<SubRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(SUBS).map_err(backend)?;
        let mut out = Vec::new();
        for entry in table
            .range((topic, 0u64)..=(topic, u64::MAX))
            .map_err(backend)?
        {
            let (key, value) = entry.map_err(backend)?;
            let (_, user) = key.value();
            out.push(codec::decode_sub(topic, UserId(user), value.value())?);
        }
        Ok(out)
    }

    fn subs_of_user(&self, uid: UserId) -> Result<Vec<SubRecord>, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(SUBS_BY_USER).map_err(backend)?;
        let subs = txn.open_table(SUBS).map_err(backend)?;
        let mut out = Vec::new();
        for entry in index.range((uid.0, "")..).map_err(backend)? {
            let (key, _) = entry.map_err(backend)?;
            let (user, topic) = key.value();
            if user != uid.0 {
                break;
            }
            match subs.get((topic, uid.0)).map_err(backend)? {
                Some(g) => out.push(codec::decode_sub(topic, uid, g.value())?),
                None => log::warn!("dangling subscription index entry ({uid}, {topic})"),
            }
        }
        Ok(out)
    }

    fn messages(&self, topic: &str, q: MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        let since = q.since.unwrap_or(0);
        if q.limit == 0 || q.before.is_some_and(|b| b <= since) {
            return Ok(Vec::new());
        }
        let exclude = Exclusions::new(q.exclude);
        let mut upper = match q.before {
            Some(b) => Bound::Excluded((topic, b)),
            None => Bound::Included((topic, u64::MAX)),
        };
        let txn = self.read()?;
        let table = txn.open_table(MESSAGES).map_err(backend)?;
        let mut out = Vec::with_capacity(q.limit.min(256));
        // Walks down from `upper`; meeting an excluded seq restarts the walk below its range,
        // so a large exclusion costs one seek, not a scan.
        'walk: loop {
            let range = table
                .range((Bound::Included((topic, since)), upper))
                .map_err(backend)?;
            for entry in range.rev() {
                let (key, value) = entry.map_err(backend)?;
                let (_, seq) = key.value();
                if let Some(low) = exclude.low_of(seq) {
                    if low <= since {
                        break 'walk;
                    }
                    upper = Bound::Excluded((topic, low));
                    continue 'walk;
                }
                let m = codec::decode_message(topic, seq, value.value())?;
                if m.deleted {
                    continue;
                }
                out.push(m);
                if out.len() == q.limit {
                    break 'walk;
                }
            }
            break;
        }
        Ok(out)
    }

    fn last_message(&self, topic: &str) -> Result<Option<LastMessage>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(MESSAGES).map_err(backend)?;
        let mut range = table
            .range((topic, 0u64)..=(topic, u64::MAX))
            .map_err(backend)?;
        match range.next_back() {
            Some(entry) => {
                let (key, value) = entry.map_err(backend)?;
                let (_, seq) = key.value();
                let m = codec::decode_message(topic, seq, value.value())?;
                Ok(Some(LastMessage { seq, ts: m.ts }))
            }
            None => Ok(None),
        }
    }

    fn del_log(
        &self,
        topic: &str,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DelRecord>, StoreError> {
        if limit == 0 || before.is_some_and(|b| b <= since) {
            return Ok(Vec::new());
        }
        let upper = match before {
            Some(b) => Bound::Excluded((topic, b)),
            None => Bound::Included((topic, u64::MAX)),
        };
        let txn = self.read()?;
        let table = txn.open_table(DELS).map_err(backend)?;
        let mut out = Vec::new();
        for entry in table
            .range((Bound::Included((topic, since)), upper))
            .map_err(backend)?
            .take(limit)
        {
            let (key, value) = entry.map_err(backend)?;
            let (_, del_id) = key.value();
            out.push(codec::decode_del(topic, del_id, value.value())?);
        }
        Ok(out)
    }

    fn find_tags(
        &self,
        tags: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.read()?;
        let table = txn.open_table(TAGS).map_err(backend)?;
        // Walking the tags in the order given keeps each owner's matches in that order.
        let mut seen: HashSet<&str> = HashSet::new();
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for tag in tags.iter().filter(|t| seen.insert(t.as_str())) {
            for entry in table.range((tag.as_str(), "")..).map_err(backend)? {
                let (key, _) = entry.map_err(backend)?;
                let (t, owner) = key.value();
                if t != tag {
                    break;
                }
                found.entry(owner.to_owned()).or_default().push(tag.clone());
            }
        }
        let mut out: Vec<(String, Vec<String>)> = found.into_iter().collect();
        // Stable sort over owners already in name order: most matches first, then by name.
        out.sort_by_key(|(_, matched)| std::cmp::Reverse(matched.len()));
        out.truncate(limit);
        Ok(out)
    }

    fn read(&self, q: &super::ReadQuery) -> Result<super::ReadAnswer, StoreError> {
        super::read::run(self, q)
    }

    fn apply(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        if batches.is_empty() {
            return Vec::new();
        }
        match self.apply_txn(batches) {
            Ok(results) => results,
            Err(e) => {
                log::error!("store commit of {} batches failed: {e}", batches.len());
                vec![Err(e); batches.len()]
            }
        }
    }
}

/// The value encoding of every record: a format version byte, then the fields that the key does
/// not already hold, as LEB128 varints, length-prefixed byte strings and one-byte tags. JSON
/// text fields are stored as plain UTF-8 strings, byte for byte.
///
/// Version 2 appended fields to version 1 layouts (user `creds`, topic `aux`, message
/// `deleted`) and added the delete record; version 1 records still decode, the missing fields
/// taking their defaults. Records are always written in the current version.
mod codec {
    use super::super::{
        AuthRecord, CredRecord, DelRecord, JsonText, MessageRecord, StoreError, SubRecord,
        TopicRecord, UserRecord, UserState,
    };
    use crate::access::{AccessMode, AuthLevel, DefaultAccess};
    use crate::ids::{UnixMillis, UserId};

    /// Bumped whenever a layout below changes; decoding rejects unknown versions.
    const VERSION: u8 = 2;
    /// The oldest version still decoded.
    const MIN_VERSION: u8 = 1;

    #[cfg(test)]
    pub(super) fn version() -> u8 {
        VERSION
    }

    fn corrupt(what: &str) -> StoreError {
        StoreError::Backend(format!("corrupt stored record: {what}"))
    }

    struct Enc(Vec<u8>);

    impl Enc {
        fn new() -> Enc {
            let mut v = Vec::with_capacity(64);
            v.push(VERSION);
            Enc(v)
        }
        fn u8(&mut self, v: u8) {
            self.0.push(v);
        }
        fn u64(&mut self, mut v: u64) {
            while v >= 0x80 {
                self.0.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.0.push(v as u8);
        }
        fn bytes(&mut self, b: &[u8]) {
            self.u64(b.len() as u64);
            self.0.extend_from_slice(b);
        }
        fn str(&mut self, s: &str) {
            self.bytes(s.as_bytes());
        }
        fn opt_str(&mut self, s: &Option<String>) {
            match s {
                Some(s) => {
                    self.u8(1);
                    self.str(s);
                }
                None => self.u8(0),
            }
        }
        fn opt_u64(&mut self, v: Option<u64>) {
            match v {
                Some(v) => {
                    self.u8(1);
                    self.u64(v);
                }
                None => self.u8(0),
            }
        }
        fn strs(&mut self, v: &[String]) {
            self.u64(v.len() as u64);
            for s in v {
                self.str(s);
            }
        }
        fn access(&mut self, a: &DefaultAccess) {
            self.u8(a.auth.0);
            self.u8(a.anon.0);
        }
        fn bool(&mut self, b: bool) {
            self.u8(b as u8);
        }
        fn ranges(&mut self, v: &[(u64, u64)]) {
            self.u64(v.len() as u64);
            for &(low, hi) in v {
                self.u64(low);
                self.u64(hi);
            }
        }
        fn creds(&mut self, v: &[CredRecord]) {
            self.u64(v.len() as u64);
            for c in v {
                self.str(&c.method);
                self.str(&c.value);
                self.bool(c.done);
            }
        }
    }

    struct Dec<'a> {
        buf: &'a [u8],
        /// The format version of the record being decoded.
        version: u8,
    }

    impl<'a> Dec<'a> {
        fn new(buf: &'a [u8]) -> Result<Dec<'a>, StoreError> {
            let mut d = Dec { buf, version: 0 };
            match d.u8()? {
                v @ MIN_VERSION..=VERSION => {
                    d.version = v;
                    Ok(d)
                }
                v => Err(corrupt(&format!("unknown format version {v}"))),
            }
        }
        /// Whether the record carries the fields added in format version `v`.
        fn has(&self, v: u8) -> bool {
            self.version >= v
        }
        fn u8(&mut self) -> Result<u8, StoreError> {
            let (&b, rest) = self.buf.split_first().ok_or_else(|| corrupt("truncated"))?;
            self.buf = rest;
            Ok(b)
        }
        fn u64(&mut self) -> Result<u64, StoreError> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = self.u8()?;
                let part = u64::from(b & 0x7f);
                if shift == 63 && part > 1 {
                    return Err(corrupt("varint overflow"));
                }
                v |= part << shift;
                if b & 0x80 == 0 {
                    return Ok(v);
                }
            }
            Err(corrupt("varint too long"))
        }
        fn len(&mut self) -> Result<usize, StoreError> {
            let n = self.u64()?;
            // Every counted item takes at least one byte: a larger count is corrupt, and this
            // bound keeps a bad count from driving a huge allocation.
            if n > self.buf.len() as u64 {
                return Err(corrupt("length past end"));
            }
            Ok(n as usize)
        }
        fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
            let n = self.len()?;
            let (head, rest) = self.buf.split_at(n);
            self.buf = rest;
            Ok(head)
        }
        fn str(&mut self) -> Result<String, StoreError> {
            let b = self.bytes()?;
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| corrupt("invalid UTF-8"))
        }
        fn tag(&mut self) -> Result<bool, StoreError> {
            match self.u8()? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(corrupt("bad option tag")),
            }
        }
        fn opt_str(&mut self) -> Result<Option<JsonText>, StoreError> {
            if self.tag()? {
                self.str().map(Some)
            } else {
                Ok(None)
            }
        }
        fn opt_u64(&mut self) -> Result<Option<u64>, StoreError> {
            if self.tag()? {
                self.u64().map(Some)
            } else {
                Ok(None)
            }
        }
        fn strs(&mut self) -> Result<Vec<String>, StoreError> {
            let n = self.len()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(self.str()?);
            }
            Ok(v)
        }
        fn access(&mut self) -> Result<DefaultAccess, StoreError> {
            Ok(DefaultAccess {
                auth: AccessMode(self.u8()?),
                anon: AccessMode(self.u8()?),
            })
        }
        fn millis(&mut self) -> Result<UnixMillis, StoreError> {
            self.u64().map(UnixMillis)
        }
        fn ranges(&mut self) -> Result<Vec<(u64, u64)>, StoreError> {
            let n = self.len()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push((self.u64()?, self.u64()?));
            }
            Ok(v)
        }
        fn creds(&mut self) -> Result<Vec<CredRecord>, StoreError> {
            let n = self.len()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(CredRecord {
                    method: self.str()?,
                    value: self.str()?,
                    done: self.tag()?,
                });
            }
            Ok(v)
        }
        fn finish<T>(self, value: T) -> Result<T, StoreError> {
            if self.buf.is_empty() {
                Ok(value)
            } else {
                Err(corrupt("trailing bytes"))
            }
        }
    }

    fn state_to_u8(s: UserState) -> u8 {
        match s {
            UserState::Ok => 0,
            UserState::Suspended => 1,
            UserState::Deleted => 2,
        }
    }

    fn state_from_u8(v: u8) -> Result<UserState, StoreError> {
        match v {
            0 => Ok(UserState::Ok),
            1 => Ok(UserState::Suspended),
            2 => Ok(UserState::Deleted),
            _ => Err(corrupt("bad user state")),
        }
    }

    fn level_to_u8(l: AuthLevel) -> u8 {
        match l {
            AuthLevel::None => 0,
            AuthLevel::Anon => 1,
            AuthLevel::Auth => 2,
            AuthLevel::Root => 3,
        }
    }

    fn level_from_u8(v: u8) -> Result<AuthLevel, StoreError> {
        match v {
            0 => Ok(AuthLevel::None),
            1 => Ok(AuthLevel::Anon),
            2 => Ok(AuthLevel::Auth),
            3 => Ok(AuthLevel::Root),
            _ => Err(corrupt("bad auth level")),
        }
    }

    /// Key: the user id.
    pub(super) fn encode_user(u: &UserRecord) -> Vec<u8> {
        let mut e = Enc::new();
        e.u64(u.created.0);
        e.u64(u.updated.0);
        e.u8(state_to_u8(u.state));
        e.access(&u.access);
        e.opt_str(&u.public);
        e.opt_str(&u.trusted);
        e.strs(&u.tags);
        match &u.last_seen {
            Some((ts, ua)) => {
                e.u8(1);
                e.u64(ts.0);
                e.str(ua);
            }
            None => e.u8(0),
        }
        e.creds(&u.creds);
        e.0
    }

    pub(super) fn decode_user(id: UserId, b: &[u8]) -> Result<UserRecord, StoreError> {
        let mut d = Dec::new(b)?;
        let rec = UserRecord {
            id,
            created: d.millis()?,
            updated: d.millis()?,
            state: state_from_u8(d.u8()?)?,
            access: d.access()?,
            public: d.opt_str()?,
            trusted: d.opt_str()?,
            tags: d.strs()?,
            last_seen: if d.tag()? {
                Some((d.millis()?, d.str()?))
            } else {
                None
            },
            creds: if d.has(2) { d.creds()? } else { Vec::new() },
        };
        d.finish(rec)
    }

    /// Key: the unique login.
    pub(super) fn encode_auth(a: &AuthRecord) -> Vec<u8> {
        let mut e = Enc::new();
        e.u64(a.user.0);
        e.str(&a.scheme);
        e.u8(level_to_u8(a.level));
        e.bytes(&a.secret);
        e.opt_u64(a.expires.map(|t| t.0));
        e.0
    }

    pub(super) fn decode_auth(unique: &str, b: &[u8]) -> Result<AuthRecord, StoreError> {
        let mut d = Dec::new(b)?;
        let rec = AuthRecord {
            unique: unique.to_owned(),
            user: UserId(d.u64()?),
            scheme: d.str()?,
            level: level_from_u8(d.u8()?)?,
            secret: d.bytes()?.to_vec(),
            expires: d.opt_u64()?.map(UnixMillis),
        };
        d.finish(rec)
    }

    /// Key: the topic name.
    pub(super) fn encode_topic(t: &TopicRecord) -> Vec<u8> {
        let mut e = Enc::new();
        e.u64(t.created.0);
        e.u64(t.updated.0);
        e.opt_u64(t.owner.map(|o| o.0));
        e.access(&t.access);
        e.opt_str(&t.public);
        e.opt_str(&t.trusted);
        e.strs(&t.tags);
        e.bool(t.is_chan);
        e.u64(t.del_id);
        e.opt_str(&t.aux);
        e.0
    }

    pub(super) fn decode_topic(name: &str, b: &[u8]) -> Result<TopicRecord, StoreError> {
        let mut d = Dec::new(b)?;
        let rec = TopicRecord {
            name: name.to_owned(),
            created: d.millis()?,
            updated: d.millis()?,
            owner: d.opt_u64()?.map(UserId),
            access: d.access()?,
            public: d.opt_str()?,
            trusted: d.opt_str()?,
            tags: d.strs()?,
            is_chan: d.tag()?,
            del_id: d.u64()?,
            aux: if d.has(2) { d.opt_str()? } else { None },
        };
        d.finish(rec)
    }

    /// Key: (topic, user id).
    pub(super) fn encode_sub(s: &SubRecord) -> Vec<u8> {
        let mut e = Enc::new();
        e.u64(s.created.0);
        e.u64(s.updated.0);
        e.opt_u64(s.deleted.map(|t| t.0));
        e.u8(s.want.0);
        e.u8(s.given.0);
        e.u64(s.read);
        e.u64(s.recv);
        e.u64(s.del_id);
        e.opt_str(&s.private);
        e.0
    }

    pub(super) fn decode_sub(topic: &str, user: UserId, b: &[u8]) -> Result<SubRecord, StoreError> {
        let mut d = Dec::new(b)?;
        let rec = SubRecord {
            topic: topic.to_owned(),
            user,
            created: d.millis()?,
            updated: d.millis()?,
            deleted: d.opt_u64()?.map(UnixMillis),
            want: AccessMode(d.u8()?),
            given: AccessMode(d.u8()?),
            read: d.u64()?,
            recv: d.u64()?,
            del_id: d.u64()?,
            private: d.opt_str()?,
        };
        d.finish(rec)
    }

    /// Key: (topic, seq).
    pub(super) fn encode_message(m: &MessageRecord) -> Vec<u8> {
        let mut e = Enc::new();
        e.u64(m.ts.0);
        e.u64(m.from.0);
        e.opt_str(&m.head);
        e.str(&m.content);
        e.bool(m.deleted);
        e.0
    }

    pub(super) fn decode_message(
        topic: &str,
        seq: u64,
        b: &[u8],
    ) -> Result<MessageRecord, StoreError> {
        let mut d = Dec::new(b)?;
        let rec = MessageRecord {
            topic: topic.to_owned(),
            seq,
            ts: d.millis()?,
            from: UserId(d.u64()?),
            head: d.opt_str()?,
            content: d.str()?,
            deleted: d.has(2) && d.tag()?,
        };
        d.finish(rec)
    }

    /// Key: (topic, delete id). New in version 2.
    pub(super) fn encode_del(r: &DelRecord) -> Vec<u8> {
        let mut e = Enc::new();
        e.opt_u64(r.user.map(|u| u.0));
        e.u64(r.ts.0);
        e.ranges(&r.ranges);
        e.0
    }

    pub(super) fn decode_del(topic: &str, del_id: u64, b: &[u8]) -> Result<DelRecord, StoreError> {
        let mut d = Dec::new(b)?;
        if !d.has(2) {
            return Err(corrupt("delete record older than its format"));
        }
        let rec = DelRecord {
            topic: topic.to_owned(),
            del_id,
            user: d.opt_u64()?.map(UserId),
            ts: d.millis()?,
            ranges: d.ranges()?,
        };
        d.finish(rec)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn message() -> MessageRecord {
            MessageRecord {
                topic: "grpX".into(),
                seq: 1,
                ts: UnixMillis(1_700_000_000_000),
                from: UserId(9),
                head: Some("{\"mime\":\"text/x-drafty\"}".into()),
                content: "\"hello\"".into(),
                deleted: false,
            }
        }

        /// One encoding of every record type, with every optional field present.
        fn every_encoding() -> Vec<Vec<u8>> {
            vec![
                encode_user(&UserRecord {
                    id: UserId(1),
                    created: UnixMillis(1),
                    updated: UnixMillis(2),
                    state: UserState::Ok,
                    access: DefaultAccess {
                        auth: AccessMode(0x2f),
                        anon: AccessMode(0),
                    },
                    public: Some("{}".into()),
                    trusted: Some("{}".into()),
                    tags: vec!["a".into(), "b".into()],
                    last_seen: Some((UnixMillis(3), "ua".into())),
                    creds: vec![CredRecord {
                        method: "email".into(),
                        value: "a@b.c".into(),
                        done: true,
                    }],
                }),
                encode_auth(&AuthRecord {
                    unique: "basic:a".into(),
                    user: UserId(1),
                    scheme: "basic".into(),
                    level: AuthLevel::Auth,
                    secret: vec![1, 2, 3],
                    expires: Some(UnixMillis(4)),
                }),
                encode_topic(&TopicRecord {
                    name: "grpX".into(),
                    created: UnixMillis(1),
                    updated: UnixMillis(2),
                    owner: Some(UserId(1)),
                    access: DefaultAccess {
                        auth: AccessMode(0x2f),
                        anon: AccessMode(1),
                    },
                    public: Some("{}".into()),
                    trusted: Some("{}".into()),
                    tags: vec!["t".into()],
                    is_chan: true,
                    del_id: 5,
                    aux: Some("{\"pins\":[1]}".into()),
                }),
                encode_sub(&SubRecord {
                    topic: "grpX".into(),
                    user: UserId(1),
                    created: UnixMillis(1),
                    updated: UnixMillis(2),
                    deleted: Some(UnixMillis(3)),
                    want: AccessMode(0x1f),
                    given: AccessMode(0x0f),
                    read: 4,
                    recv: 5,
                    del_id: 6,
                    private: Some("{}".into()),
                }),
                encode_message(&MessageRecord {
                    deleted: true,
                    ..message()
                }),
                encode_del(&DelRecord {
                    topic: "grpX".into(),
                    del_id: 7,
                    user: Some(UserId(1)),
                    ts: UnixMillis(8),
                    ranges: vec![(1, 2), (5, 300)],
                }),
            ]
        }

        /// Decodes `b` as the `kind`-th record type of [`every_encoding`].
        fn decode_kind(kind: usize, b: &[u8]) -> Result<(), StoreError> {
            match kind {
                0 => decode_user(UserId(1), b).map(drop),
                1 => decode_auth("basic:a", b).map(drop),
                2 => decode_topic("grpX", b).map(drop),
                3 => decode_sub("grpX", UserId(1), b).map(drop),
                4 => decode_message("grpX", 1, b).map(drop),
                _ => decode_del("grpX", 7, b).map(drop),
            }
        }

        #[test]
        fn varints_round_trip_at_the_edges() {
            for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
                let mut e = Enc::new();
                e.u64(v);
                let mut d = Dec::new(&e.0).unwrap();
                assert_eq!(d.u64().unwrap(), v);
                d.finish(()).unwrap();
            }
        }

        #[test]
        fn bad_bytes_are_errors_not_panics() {
            let good = encode_message(&message());
            assert_eq!(good[0], 2);
            assert!(decode_message("grpX", 1, &good).is_ok());
            // Every truncation, a wrong version, trailing junk and an oversized varint.
            for n in 0..good.len() {
                let r = decode_message("grpX", 1, &good[..n]);
                assert!(matches!(r, Err(StoreError::Backend(_))), "prefix {n}");
            }
            for v in [0, 3, 99] {
                let mut wrong_version = good.clone();
                wrong_version[0] = v;
                assert!(decode_message("grpX", 1, &wrong_version).is_err(), "{v}");
            }
            let mut trailing = good.clone();
            trailing.push(0);
            assert!(decode_message("grpX", 1, &trailing).is_err());
            let mut bad_flag = good.clone();
            *bad_flag.last_mut().unwrap() = 2;
            assert!(decode_message("grpX", 1, &bad_flag).is_err());
            let overflow = [
                VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ];
            assert!(Dec::new(&overflow).unwrap().u64().is_err());
            let huge_len = [VERSION, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
            assert!(decode_message("grpX", 1, &huge_len).is_err());
            assert!(decode_user(UserId(1), &[VERSION, 0, 0, 7]).is_err());
            // A huge count of ranges or credentials is refused before any allocation.
            let huge_ranges = [VERSION, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
            assert!(decode_del("grpX", 1, &huge_ranges).is_err());
        }

        #[test]
        fn every_record_survives_truncation_and_byte_damage() {
            for (kind, good) in every_encoding().iter().enumerate() {
                decode_kind(kind, good).unwrap();
                for n in 0..good.len() {
                    assert!(decode_kind(kind, &good[..n]).is_err(), "{kind}: prefix {n}");
                }
                // Any damaged byte decodes to something or to an error, never a panic.
                for i in 0..good.len() {
                    for v in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff, good[i] ^ 0x55] {
                        let mut bad = good.clone();
                        bad[i] = v;
                        let _ = decode_kind(kind, &bad);
                    }
                }
            }
        }

        #[test]
        fn version_one_records_decode_with_defaults() {
            let user_v1: &[u8] = &[
                1, // version
                0xac, 0x02, // created 300
                0xad, 0x02, // updated 301
                1,    // suspended
                0x2f, 0x00, // access
                1, 2, b'{', b'}', // public
                0,    // no trusted
                1, 1, b'a', // tags ["a"]
                1, 5, 2, b'u', b'a', // last seen
            ];
            assert_eq!(
                decode_user(UserId(4), user_v1).unwrap(),
                UserRecord {
                    id: UserId(4),
                    created: UnixMillis(300),
                    updated: UnixMillis(301),
                    state: UserState::Suspended,
                    access: DefaultAccess {
                        auth: AccessMode(0x2f),
                        anon: AccessMode(0),
                    },
                    public: Some("{}".into()),
                    trusted: None,
                    tags: vec!["a".into()],
                    last_seen: Some((UnixMillis(5), "ua".into())),
                    creds: vec![],
                }
            );
            let topic_v1: &[u8] = &[1, 1, 2, 1, 7, 0x2f, 0x01, 0, 0, 0, 1, 3];
            assert_eq!(
                decode_topic("grpX", topic_v1).unwrap(),
                TopicRecord {
                    name: "grpX".into(),
                    created: UnixMillis(1),
                    updated: UnixMillis(2),
                    owner: Some(UserId(7)),
                    access: DefaultAccess {
                        auth: AccessMode(0x2f),
                        anon: AccessMode(1),
                    },
                    public: None,
                    trusted: None,
                    tags: vec![],
                    is_chan: true,
                    del_id: 3,
                    aux: None,
                }
            );
            let message_v1: &[u8] = &[1, 0xe8, 0x07, 9, 0, 2, b'"', b'"'];
            assert_eq!(
                decode_message("grpX", 6, message_v1).unwrap(),
                MessageRecord {
                    topic: "grpX".into(),
                    seq: 6,
                    ts: UnixMillis(1_000),
                    from: UserId(9),
                    head: None,
                    content: "\"\"".into(),
                    deleted: false,
                }
            );
            // Unchanged layouts decode from either version.
            let sub_v1: &[u8] = &[1, 10, 11, 0, 0x1f, 0x0f, 5, 6, 0, 0];
            let sub = decode_sub("grpX", UserId(2), sub_v1).unwrap();
            assert_eq!((sub.read, sub.recv, sub.want), (5, 6, AccessMode(0x1f)));
            let auth_v1: &[u8] = &[1, 2, 5, b'b', b'a', b's', b'i', b'c', 2, 0, 0];
            let auth = decode_auth("basic:x", auth_v1).unwrap();
            assert_eq!((auth.user, auth.level), (UserId(2), AuthLevel::Auth));

            // A version-1 record never carries the new fields, and is not read as version 2.
            let mut message_v1_plus = message_v1.to_vec();
            message_v1_plus.push(1);
            assert!(decode_message("grpX", 6, &message_v1_plus).is_err());
            let mut as_v2 = message_v1.to_vec();
            as_v2[0] = 2;
            assert!(decode_message("grpX", 6, &as_v2).is_err());
            // Delete records only exist from version 2 on.
            let del_v1: &[u8] = &[1, 0, 8, 0];
            assert!(decode_del("grpX", 1, del_v1).is_err());
            let mut del_v2 = del_v1.to_vec();
            del_v2[0] = 2;
            assert_eq!(decode_del("grpX", 1, &del_v2).unwrap().ts, UnixMillis(8));
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AccessMode, AuthLevel, DefaultAccess};
    use crate::ids::UnixMillis;
    use crate::store::{CredRecord, UserState};
    use redb::ReadableTableMetadata;

    fn user(id: u64) -> UserRecord {
        UserRecord {
            id: UserId(id),
            created: UnixMillis(1_700_000_000_000),
            updated: UnixMillis(1_700_000_000_500),
            state: UserState::Suspended,
            access: DefaultAccess {
                auth: AccessMode::USER_AUTH_DEFAULT,
                anon: AccessMode::NONE,
            },
            public: Some(r#"{"fn":"Alice \"A\" Ü","photo":null}"#.into()),
            trusted: None,
            tags: vec!["email:alice@example.com".into(), "alice".into()],
            last_seen: Some((
                UnixMillis(1_700_000_001_000),
                "TinodeWeb/0.22 (Firefox)".into(),
            )),
            creds: vec![
                CredRecord {
                    method: "email".into(),
                    value: "alice@example.com".into(),
                    done: true,
                },
                CredRecord {
                    method: "tel".into(),
                    value: "+15551234567".into(),
                    done: false,
                },
            ],
        }
    }

    fn auth(unique: &str, uid: u64) -> AuthRecord {
        AuthRecord {
            unique: unique.into(),
            user: UserId(uid),
            scheme: "basic".into(),
            level: AuthLevel::Auth,
            secret: vec![0, 1, 2, 255, b'$'],
            expires: Some(UnixMillis(1_800_000_000_000)),
        }
    }

    fn topic(name: &str) -> TopicRecord {
        TopicRecord {
            name: name.into(),
            created: UnixMillis(1),
            updated: UnixMillis(2),
            owner: Some(UserId(7)),
            access: DefaultAccess {
                auth: AccessMode::PUBLIC,
                anon: AccessMode(AccessMode::READ),
            },
            public: Some(r#"{"fn":"Group"}"#.into()),
            trusted: Some(r#"{"verified":true}"#.into()),
            tags: vec![],
            is_chan: true,
            del_id: 3,
            aux: Some(r#"{"pins":[3,1]}"#.into()),
        }
    }

    fn sub(topic: &str, uid: u64) -> SubRecord {
        SubRecord {
            topic: topic.into(),
            user: UserId(uid),
            created: UnixMillis(10),
            updated: UnixMillis(11),
            deleted: None,
            want: AccessMode::OWNER_FULL,
            given: AccessMode::PUBLIC,
            read: 5,
            recv: 6,
            del_id: 0,
            private: Some(r#"{"comment":"mine"}"#.into()),
        }
    }

    fn msg(topic: &str, seq: u64) -> MessageRecord {
        MessageRecord {
            topic: topic.into(),
            seq,
            ts: UnixMillis(1_000u64.wrapping_add(seq)),
            from: UserId(7),
            head: seq
                .is_multiple_of(2)
                .then(|| r#"{"mime":"text/x-drafty"}"#.to_owned()),
            content: format!(r#"{{"txt":"message {seq}"}}"#),
            deleted: false,
        }
    }

    fn q(since: Option<u64>, before: Option<u64>, limit: usize) -> MessageQuery {
        MessageQuery {
            since,
            before,
            limit,
            exclude: vec![],
        }
    }

    fn seqs(v: &[MessageRecord]) -> Vec<u64> {
        v.iter().map(|m| m.seq).collect()
    }

    fn apply_ok(store: &RedbStore, batch: WriteBatch) {
        let r = store.apply(&[batch]);
        assert_eq!(r, vec![Ok(())]);
    }

    #[test]
    fn every_record_type_round_trips() {
        let s = RedbStore::in_memory();
        let mut plain_user = user(2);
        plain_user.public = None;
        plain_user.last_seen = None;
        plain_user.tags.clear();
        plain_user.state = UserState::Ok;
        plain_user.creds.clear();
        let mut plain_auth = auth("token:x", 2);
        plain_auth.expires = None;
        plain_auth.secret.clear();
        plain_auth.level = AuthLevel::Root;
        let mut plain_topic = topic("p2pAAA");
        plain_topic.owner = None;
        plain_topic.public = None;
        plain_topic.trusted = None;
        plain_topic.is_chan = false;
        plain_topic.aux = None;
        let mut deleted_sub = sub("grpA", 2);
        deleted_sub.deleted = Some(UnixMillis(99));
        deleted_sub.private = None;
        let stone = MessageRecord {
            deleted: true,
            head: None,
            content: String::new(),
            ..msg("grpB", 9)
        };
        let soft = DelRecord {
            topic: "grpA".into(),
            del_id: 1,
            user: Some(UserId(u64::MAX)),
            ts: UnixMillis(1_700_000_000_000),
            ranges: vec![(1, 2), (4, u64::MAX)],
        };
        // A hard delete of nothing stored is recorded all the same.
        let hard = DelRecord {
            topic: "grpA".into(),
            del_id: 2,
            user: None,
            ts: UnixMillis(5),
            ranges: vec![(100, 200)],
        };
        apply_ok(
            &s,
            vec![
                WriteOp::CreateUser(user(1)),
                WriteOp::PutUser(plain_user.clone()),
                WriteOp::CreateAuth(auth("basic:alice", 1)),
                WriteOp::PutAuth(plain_auth.clone()),
                WriteOp::CreateTopic(topic("grpA")),
                WriteOp::PutTopic(plain_topic.clone()),
                WriteOp::PutSub(sub("grpA", 1)),
                WriteOp::PutSub(deleted_sub.clone()),
                WriteOp::AppendMessage(msg("grpA", 1)),
                WriteOp::AppendMessage(msg("grpA", 2)),
                WriteOp::AppendMessage(stone.clone()),
                WriteOp::DeleteMessages(soft.clone()),
                WriteOp::DeleteMessages(hard.clone()),
            ],
        );
        assert_eq!(s.del_log("grpA", 0, None, 10).unwrap(), vec![soft, hard]);
        // A stored tombstone reads back as one: hidden from queries, still the newest seq.
        assert!(s.messages("grpB", q(None, None, 10)).unwrap().is_empty());
        assert_eq!(
            s.last_message("grpB").unwrap(),
            Some(LastMessage {
                seq: 9,
                ts: stone.ts
            })
        );
        assert_eq!(s.user(UserId(1)).unwrap(), Some(user(1)));
        assert_eq!(s.user(UserId(2)).unwrap(), Some(plain_user));
        assert_eq!(s.user(UserId(3)).unwrap(), None);
        assert_eq!(s.auth("basic:alice").unwrap(), Some(auth("basic:alice", 1)));
        assert_eq!(s.auth("token:x").unwrap(), Some(plain_auth.clone()));
        assert_eq!(s.auth("basic:bob").unwrap(), None);
        assert_eq!(s.auths_of_user(UserId(2)).unwrap(), vec![plain_auth]);
        assert_eq!(s.topic("grpA").unwrap(), Some(topic("grpA")));
        assert_eq!(s.topic("p2pAAA").unwrap(), Some(plain_topic));
        assert_eq!(s.topic("grpB").unwrap(), None);
        assert_eq!(s.sub("grpA", UserId(1)).unwrap(), Some(sub("grpA", 1)));
        assert_eq!(s.sub("grpA", UserId(2)).unwrap(), Some(deleted_sub.clone()));
        assert_eq!(s.sub("grpA", UserId(3)).unwrap(), None);
        assert_eq!(
            s.subs_of_topic("grpA").unwrap(),
            vec![sub("grpA", 1), deleted_sub]
        );
        let all = s.messages("grpA", q(None, None, 10)).unwrap();
        assert_eq!(all, vec![msg("grpA", 2), msg("grpA", 1)]);
        assert_eq!(
            s.last_message("grpA").unwrap(),
            Some(LastMessage {
                seq: 2,
                ts: UnixMillis(1_002)
            })
        );
    }

    #[test]
    fn message_ranges_are_newest_first_and_bounded() {
        let s = RedbStore::in_memory();
        // Neighbouring topics, one a prefix of the other, must not leak into the range.
        apply_ok(
            &s,
            (1..=20)
                .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
                .collect(),
        );
        apply_ok(
            &s,
            (1..=5)
                .map(|i| WriteOp::AppendMessage(msg("grpAB", i)))
                .collect(),
        );
        apply_ok(
            &s,
            (1..=5)
                .map(|i| WriteOp::AppendMessage(msg("grp", i)))
                .collect(),
        );
        apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", u64::MAX))]);

        let all = s.messages("grpA", q(None, None, 100)).unwrap();
        let mut want: Vec<u64> = (1..=20).rev().collect();
        want.insert(0, u64::MAX);
        assert_eq!(seqs(&all), want);
        assert!(all.iter().all(|m| m.topic == "grpA"));

        assert_eq!(
            seqs(&s.messages("grpA", q(None, Some(21), 3)).unwrap()),
            vec![20, 19, 18]
        );
        assert_eq!(
            seqs(&s.messages("grpA", q(Some(18), Some(21), 10)).unwrap()),
            vec![20, 19, 18]
        );
        assert_eq!(
            seqs(&s.messages("grpA", q(Some(5), Some(8), 10)).unwrap()),
            vec![7, 6, 5]
        );
        assert_eq!(
            seqs(&s.messages("grpA", q(None, Some(4), 10)).unwrap()),
            vec![3, 2, 1]
        );
        assert_eq!(
            seqs(&s.messages("grpA", q(Some(19), None, 2)).unwrap()),
            vec![u64::MAX, 20]
        );
        assert!(s
            .messages("grpA", q(Some(8), Some(8), 10))
            .unwrap()
            .is_empty());
        assert!(s
            .messages("grpA", q(Some(9), Some(3), 10))
            .unwrap()
            .is_empty());
        assert!(s.messages("grpA", q(None, None, 0)).unwrap().is_empty());
        assert!(s.messages("grpZ", q(None, None, 10)).unwrap().is_empty());
        assert!(s.messages("", q(None, None, 10)).unwrap().is_empty());
        assert_eq!(
            seqs(&s.messages("grp", q(None, None, 10)).unwrap()),
            vec![5, 4, 3, 2, 1]
        );

        assert_eq!(
            s.last_message("grpA").unwrap().map(|l| l.seq),
            Some(u64::MAX)
        );
        assert_eq!(s.last_message("grpAB").unwrap().map(|l| l.seq), Some(5));
        assert_eq!(s.last_message("gr").unwrap(), None);
        assert_eq!(s.last_message("grpZ").unwrap(), None);
    }

    #[test]
    fn a_conflicting_batch_is_skipped_and_the_others_apply() {
        let s = RedbStore::in_memory();
        apply_ok(
            &s,
            vec![
                WriteOp::CreateUser(user(1)),
                WriteOp::CreateAuth(auth("basic:alice", 1)),
                WriteOp::CreateTopic(topic("grpA")),
                WriteOp::AppendMessage(msg("grpA", 1)),
            ],
        );
        let results = s.apply(&[
            // 0: new user, fine.
            vec![
                WriteOp::CreateUser(user(2)),
                WriteOp::CreateAuth(auth("basic:bob", 2)),
            ],
            // 1: existing login; its user must not be created either.
            vec![
                WriteOp::CreateUser(user(3)),
                WriteOp::CreateAuth(auth("basic:alice", 3)),
            ],
            // 2: existing topic.
            vec![
                WriteOp::PutSub(sub("grpA", 4)),
                WriteOp::CreateTopic(topic("grpA")),
            ],
            // 3: existing message.
            vec![
                WriteOp::AppendMessage(msg("grpA", 2)),
                WriteOp::AppendMessage(msg("grpA", 1)),
            ],
            // 4: conflicts with batch 0 of this same call.
            vec![WriteOp::CreateAuth(auth("basic:bob", 5))],
            // 5: existing user id.
            vec![WriteOp::CreateUser(user(1))],
            // 6: conflicts within itself.
            vec![
                WriteOp::CreateTopic(topic("grpC")),
                WriteOp::CreateTopic(topic("grpC")),
            ],
            // 7: fine, and Put ops never conflict.
            vec![
                WriteOp::AppendMessage(msg("grpA", 2)),
                WriteOp::PutUser(user(1)),
                WriteOp::PutTopic(topic("grpA")),
            ],
            // 8: conflicts with batch 7.
            vec![WriteOp::AppendMessage(msg("grpA", 2))],
        ]);
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(
            ok,
            [true, false, false, false, false, false, false, true, false]
        );
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        }
        assert!(s.user(UserId(2)).unwrap().is_some());
        assert_eq!(s.auth("basic:bob").unwrap().unwrap().user, UserId(2));
        assert_eq!(s.user(UserId(3)).unwrap(), None);
        assert_eq!(s.auth("basic:alice").unwrap().unwrap().user, UserId(1));
        assert_eq!(s.sub("grpA", UserId(4)).unwrap(), None);
        assert_eq!(s.topic("grpC").unwrap(), None);
        assert_eq!(
            s.messages("grpA", q(None, None, 10)).unwrap(),
            vec![msg("grpA", 2), msg("grpA", 1)]
        );
        assert!(s.auths_of_user(UserId(5)).unwrap().is_empty());
        assert!(s.apply(&[]).is_empty());
    }

    #[test]
    fn markers_only_rise_and_recv_stays_at_least_read() {
        let s = RedbStore::in_memory();
        apply_ok(&s, vec![WriteOp::PutSub(sub("grpA", 1))]); // read 5, recv 6
        let markers = |read, recv| WriteOp::Markers {
            topic: "grpA".into(),
            user: UserId(1),
            read,
            recv,
        };
        let get = || {
            let m = s.sub("grpA", UserId(1)).unwrap().unwrap();
            (m.read, m.recv)
        };
        apply_ok(&s, vec![markers(3, 4)]);
        assert_eq!(get(), (5, 6));
        apply_ok(&s, vec![markers(0, 9)]);
        assert_eq!(get(), (5, 9));
        apply_ok(&s, vec![markers(12, 0)]);
        assert_eq!(get(), (12, 12));
        apply_ok(&s, vec![markers(13, 14), markers(11, 11)]);
        assert_eq!(get(), (13, 14));
        // The rest of the record is untouched.
        let rec = s.sub("grpA", UserId(1)).unwrap().unwrap();
        assert_eq!(
            rec,
            SubRecord {
                read: 13,
                recv: 14,
                ..sub("grpA", 1)
            }
        );
        // Missing subscription: no-op, no row created.
        apply_ok(
            &s,
            vec![WriteOp::Markers {
                topic: "grpB".into(),
                user: UserId(1),
                read: 1,
                recv: 1,
            }],
        );
        assert_eq!(s.sub("grpB", UserId(1)).unwrap(), None);
        assert_eq!(s.subs_of_user(UserId(1)).unwrap().len(), 1);
    }

    #[test]
    fn by_user_indexes_follow_puts_and_deletes() {
        let s = RedbStore::in_memory();
        apply_ok(
            &s,
            vec![
                WriteOp::PutSub(sub("grpA", 1)),
                WriteOp::PutSub(sub("grpB", 1)),
                WriteOp::PutSub(sub("grpA", 2)),
                WriteOp::PutSub(sub("p2pX", u64::MAX)),
                WriteOp::PutSub(sub("grpA", 0)),
            ],
        );
        let topics = |uid| -> Vec<String> {
            s.subs_of_user(UserId(uid))
                .unwrap()
                .into_iter()
                .map(|r| r.topic)
                .collect()
        };
        assert_eq!(topics(1), ["grpA", "grpB"]);
        assert_eq!(topics(2), ["grpA"]);
        assert_eq!(topics(u64::MAX), ["p2pX"]);
        assert_eq!(topics(0), ["grpA"]);
        assert!(topics(3).is_empty());
        let users: Vec<u64> = s
            .subs_of_topic("grpA")
            .unwrap()
            .iter()
            .map(|r| r.user.0)
            .collect();
        assert_eq!(users, [0, 1, 2]);

        // Replacing keeps one index entry; deleting removes both rows.
        apply_ok(
            &s,
            vec![WriteOp::PutSub(SubRecord {
                read: 50,
                recv: 50,
                ..sub("grpA", 1)
            })],
        );
        assert_eq!(topics(1), ["grpA", "grpB"]);
        assert_eq!(s.subs_of_user(UserId(1)).unwrap()[0].read, 50);
        apply_ok(
            &s,
            vec![
                WriteOp::DeleteSub {
                    topic: "grpA".into(),
                    user: UserId(1),
                },
                WriteOp::DeleteSub {
                    topic: "grpNone".into(),
                    user: UserId(1),
                },
            ],
        );
        assert_eq!(topics(1), ["grpB"]);
        assert_eq!(s.sub("grpA", UserId(1)).unwrap(), None);
        let users: Vec<u64> = s
            .subs_of_topic("grpA")
            .unwrap()
            .iter()
            .map(|r| r.user.0)
            .collect();
        assert_eq!(users, [0, 2]);

        // Auth index: several schemes, and a login moving to another user.
        apply_ok(
            &s,
            vec![
                WriteOp::CreateAuth(auth("basic:alice", 1)),
                WriteOp::PutAuth(AuthRecord {
                    scheme: "token".into(),
                    ..auth("token:alice", 1)
                }),
                WriteOp::CreateAuth(auth("basic:bob", 2)),
            ],
        );
        let uniques = |uid| -> Vec<String> {
            s.auths_of_user(UserId(uid))
                .unwrap()
                .into_iter()
                .map(|a| a.unique)
                .collect()
        };
        assert_eq!(uniques(1), ["basic:alice", "token:alice"]);
        assert_eq!(uniques(2), ["basic:bob"]);
        apply_ok(&s, vec![WriteOp::PutAuth(auth("basic:alice", 2))]);
        assert_eq!(uniques(1), ["token:alice"]);
        assert_eq!(uniques(2), ["basic:alice", "basic:bob"]);
    }

    #[test]
    fn corrupt_rows_are_errors_and_do_not_poison_writes() {
        let s = RedbStore::in_memory();
        let txn = s.db.begin_write().unwrap();
        {
            let junk: &[u8] = &[codec::version(), 0xff];
            txn.open_table(SUBS)
                .unwrap()
                .insert(("grpA", 1), junk)
                .unwrap();
            txn.open_table(SUBS_BY_USER)
                .unwrap()
                .insert((1, "grpA"), ())
                .unwrap();
            txn.open_table(AUTH)
                .unwrap()
                .insert("basic:alice", junk)
                .unwrap();
            txn.open_table(USERS).unwrap().insert(1, &[][..]).unwrap();
            txn.open_table(MESSAGES)
                .unwrap()
                .insert(("grpA", 1), junk)
                .unwrap();
        }
        txn.commit().unwrap();
        let is_backend = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Backend(_)));
        assert!(is_backend(s.sub("grpA", UserId(1)).map(|_| ())));
        assert!(is_backend(s.subs_of_user(UserId(1)).map(|_| ())));
        assert!(is_backend(s.subs_of_topic("grpA").map(|_| ())));
        assert!(is_backend(s.auth("basic:alice").map(|_| ())));
        assert!(is_backend(s.user(UserId(1)).map(|_| ())));
        assert!(is_backend(s.last_message("grpA").map(|_| ())));
        let all = MessageQuery {
            since: None,
            before: None,
            limit: 10,
            exclude: vec![],
        };
        assert!(is_backend(s.messages("grpA", all).map(|_| ())));

        let results = s.apply(&[
            vec![WriteOp::Markers {
                topic: "grpA".into(),
                user: UserId(1),
                read: 9,
                recv: 9,
            }],
            vec![WriteOp::PutAuth(auth("basic:alice", 2))],
            vec![WriteOp::CreateUser(user(2))],
        ]);
        assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
        assert_eq!(s.auth("basic:alice").unwrap(), Some(auth("basic:alice", 2)));
        assert_eq!(s.auths_of_user(UserId(2)).unwrap().len(), 1);
        assert!(s.user(UserId(2)).unwrap().is_some());
        apply_ok(&s, vec![WriteOp::PutSub(sub("grpA", 1))]);
        assert_eq!(s.sub("grpA", UserId(1)).unwrap(), Some(sub("grpA", 1)));
    }

    #[test]
    fn a_durable_file_store_keeps_its_data_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested").join("data");
        {
            let s = RedbStore::open(&data, true).unwrap();
            assert!(s.is_durable());
            apply_ok(
                &s,
                vec![
                    WriteOp::CreateUser(user(1)),
                    WriteOp::CreateAuth(auth("basic:alice", 1)),
                    WriteOp::CreateTopic(topic("grpA")),
                    WriteOp::PutSub(sub("grpA", 1)),
                    WriteOp::AppendMessage(msg("grpA", 1)),
                ],
            );
        }
        assert!(data.join(FILE_NAME).is_file());
        let s = RedbStore::open(&data, true).unwrap();
        assert_eq!(s.user(UserId(1)).unwrap(), Some(user(1)));
        assert_eq!(
            s.auths_of_user(UserId(1)).unwrap(),
            vec![auth("basic:alice", 1)]
        );
        assert_eq!(s.topic("grpA").unwrap(), Some(topic("grpA")));
        assert_eq!(s.subs_of_user(UserId(1)).unwrap(), vec![sub("grpA", 1)]);
        assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(1));
        // Creation preconditions still see the reopened data.
        let r = s.apply(&[vec![WriteOp::CreateUser(user(1))]]);
        assert!(matches!(r[0], Err(StoreError::Conflict(_))));
    }

    #[test]
    fn a_non_durable_store_persists_on_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RedbStore::open(dir.path(), false).unwrap();
            assert!(!s.is_durable());
            apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", 1))]);
            apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", 2))]);
        }
        let s = RedbStore::open(dir.path(), false).unwrap();
        assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(2));
    }

    #[test]
    fn opening_a_non_database_file_is_a_backend_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            b"definitely not a redb file, just junk",
        )
        .unwrap();
        assert!(matches!(
            RedbStore::open(dir.path(), true),
            Err(StoreError::Backend(_))
        ));
    }

    fn del(topic: &str, del_id: u64, user: Option<u64>, ranges: &[(u64, u64)]) -> DelRecord {
        DelRecord {
            topic: topic.into(),
            del_id,
            user: user.map(UserId),
            ts: UnixMillis(2_000 + del_id),
            ranges: ranges.to_vec(),
        }
    }

    fn tagged_user(id: u64, tags: &[&str]) -> UserRecord {
        UserRecord {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..user(id)
        }
    }

    fn tagged_topic(name: &str, tags: &[&str]) -> TopicRecord {
        TopicRecord {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..topic(name)
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|t| t.to_string()).collect()
    }

    /// `find_tags` with `&str` arguments.
    fn find(s: &RedbStore, tags: &[&str], limit: usize) -> Vec<(String, Vec<String>)> {
        s.find_tags(&strings(tags), limit).unwrap()
    }

    /// The stored row of a message, tombstone or not, read around the query filters.
    fn raw_message(s: &RedbStore, topic: &str, seq: u64) -> Option<MessageRecord> {
        let txn = s.db.begin_read().unwrap();
        let table = txn.open_table(MESSAGES).unwrap();
        let row = table.get((topic, seq)).unwrap();
        row.map(|g| codec::decode_message(topic, seq, g.value()).unwrap())
    }

    #[test]
    fn hard_deletes_leave_tombstones_that_queries_skip_but_last_message_sees() {
        let s = RedbStore::in_memory();
        apply_ok(
            &s,
            (1..=10)
                .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
                .chain((1..=3).map(|i| WriteOp::AppendMessage(msg("grpAB", i))))
                .collect(),
        );
        // Empty and reversed ranges, and ranges past the last message, touch nothing.
        apply_ok(
            &s,
            vec![WriteOp::DeleteMessages(del(
                "grpA",
                1,
                None,
                &[(2, 4), (5, 5), (8, 7), (9, 11), (20, 30)],
            ))],
        );
        let all = s.messages("grpA", q(None, None, 100)).unwrap();
        assert_eq!(seqs(&all), [8, 7, 6, 5, 4, 1]);
        assert_eq!(all[0], msg("grpA", 8));
        // Tombstones do not count toward the limit.
        assert_eq!(
            seqs(&s.messages("grpA", q(None, None, 3)).unwrap()),
            [8, 7, 6]
        );
        assert_eq!(
            seqs(&s.messages("grpA", q(Some(2), Some(5), 10)).unwrap()),
            [4]
        );
        assert_eq!(
            s.last_message("grpA").unwrap(),
            Some(LastMessage {
                seq: 10,
                ts: msg("grpA", 10).ts
            })
        );
        for seq in [2, 3, 9, 10] {
            assert_eq!(
                raw_message(&s, "grpA", seq),
                Some(MessageRecord {
                    deleted: true,
                    head: None,
                    content: String::new(),
                    ..msg("grpA", seq)
                }),
                "seq {seq}"
            );
        }
        assert_eq!(raw_message(&s, "grpA", 20), None);
        assert_eq!(
            seqs(&s.messages("grpAB", q(None, None, 10)).unwrap()),
            [3, 2, 1]
        );

        // A soft delete only records its ranges.
        apply_ok(
            &s,
            vec![WriteOp::DeleteMessages(del("grpA", 2, Some(1), &[(1, 9)]))],
        );
        assert_eq!(s.messages("grpA", q(None, None, 100)).unwrap(), all);

        // Deleting everything keeps every seq taken: the newest cannot be appended again.
        apply_ok(
            &s,
            vec![WriteOp::DeleteMessages(del(
                "grpA",
                3,
                None,
                &[(0, u64::MAX)],
            ))],
        );
        assert!(s.messages("grpA", q(None, None, 100)).unwrap().is_empty());
        assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(10));
        let r = s.apply(&[vec![WriteOp::AppendMessage(msg("grpA", 10))]]);
        assert!(matches!(r[0], Err(StoreError::Conflict(_))));
        apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", 11))]);
        assert_eq!(seqs(&s.messages("grpA", q(None, None, 100)).unwrap()), [11]);
        assert_eq!(
            seqs(&s.messages("grpAB", q(None, None, 10)).unwrap()),
            [3, 2, 1]
        );

        // A range larger than one rewrite chunk, with both ends inside it.
        let n = 3 * TOMBSTONE_CHUNK as u64 + 7;
        apply_ok(
            &s,
            (1..=n)
                .map(|i| WriteOp::AppendMessage(msg("grpC", i)))
                .collect(),
        );
        apply_ok(
            &s,
            vec![WriteOp::DeleteMessages(del("grpC", 1, None, &[(2, n)]))],
        );
        assert_eq!(
            seqs(&s.messages("grpC", q(None, None, 100)).unwrap()),
            [n, 1]
        );
        let stones = (1..=n)
            .filter(|&i| raw_message(&s, "grpC", i).is_some_and(|m| m.deleted))
            .count() as u64;
        assert_eq!(stones, n - 2);
    }

    #[test]
    fn excluded_ranges_are_skipped_and_do_not_count_toward_the_limit() {
        let s = RedbStore::in_memory();
        apply_ok(
            &s,
            (1..=30)
                .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
                .collect(),
        );
        apply_ok(
            &s,
            vec![WriteOp::DeleteMessages(del("grpA", 1, None, &[(25, 26)]))],
        );
        let query = |since, before, limit, exclude: &[(u64, u64)]| {
            let q = MessageQuery {
                since,
                before,
                limit,
                exclude: exclude.to_vec(),
            };
            seqs(&s.messages("grpA", q).unwrap())
        };
        let ex = [(20, 24), (10, 12)];
        assert_eq!(query(None, None, 5, &ex), [30, 29, 28, 27, 26]);
        assert_eq!(query(None, None, 8, &ex), [30, 29, 28, 27, 26, 24, 19, 18]);
        assert_eq!(query(Some(8), Some(14), 100, &ex), [13, 12, 9, 8]);
        // Unsorted, overlapping, empty and reversed ranges: in effect [15, 20).
        let messy = [(12, 10), (16, 20), (15, 18), (5, 5)];
        assert_eq!(
            query(Some(10), Some(22), 100, &messy),
            [21, 20, 14, 13, 12, 11, 10]
        );
        // Adjacent ranges merge; an exclusion reaching below `since` ends the walk.
        assert_eq!(query(None, Some(12), 100, &[(1, 5), (5, 10)]), [11, 10]);
        assert_eq!(query(Some(5), None, 100, &[(0, 29)]), [30, 29]);
        assert_eq!(query(None, None, 3, &[(28, u64::MAX)]), [27, 26, 24]);
        assert!(query(None, None, 100, &[(0, u64::MAX)]).is_empty());
        assert!(query(None, None, 100, &[(1, 31)]).is_empty());
        assert_eq!(query(None, None, 100, &[(2, 31)]), [1]);
        // Exclusions outside the queried window change nothing.
        assert_eq!(query(Some(3), Some(6), 100, &[(6, 9), (0, 3)]), [5, 4, 3]);
    }

    #[test]
    fn del_log_is_an_ascending_bounded_range_of_one_topic() {
        let s = RedbStore::in_memory();
        let rec = |i: u64| {
            let user = i.is_multiple_of(2).then_some(i);
            del("grpA", i, user, &[(i, i + 1), (10 * i, 10 * i + 5)])
        };
        apply_ok(
            &s,
            [4, 2, 6].map(|i| WriteOp::DeleteMessages(rec(i))).to_vec(),
        );
        apply_ok(
            &s,
            vec![
                WriteOp::DeleteMessages(rec(1)),
                WriteOp::DeleteMessages(rec(5)),
                WriteOp::DeleteMessages(rec(3)),
                WriteOp::DeleteMessages(del("grpAB", 1, None, &[(1, 2)])),
                WriteOp::DeleteMessages(del("grp", 9, Some(1), &[])),
            ],
        );
        let ids = |since, before, limit| -> Vec<u64> {
            s.del_log("grpA", since, before, limit)
                .unwrap()
                .iter()
                .map(|d| d.del_id)
                .collect()
        };
        assert_eq!(
            s.del_log("grpA", 0, None, 100).unwrap(),
            (1..=6).map(rec).collect::<Vec<_>>()
        );
        assert_eq!(ids(2, Some(5), 100), [2, 3, 4]);
        assert_eq!(ids(2, None, 2), [2, 3]);
        assert_eq!(ids(6, None, 10), [6]);
        assert_eq!(ids(0, Some(u64::MAX), 1), [1]);
        assert!(ids(5, Some(5), 10).is_empty());
        assert!(ids(6, Some(3), 10).is_empty());
        assert!(ids(7, None, 10).is_empty());
        assert!(ids(0, None, 0).is_empty());
        assert_eq!(
            s.del_log("grp", 0, None, 10).unwrap(),
            vec![del("grp", 9, Some(1), &[])]
        );
        assert_eq!(s.del_log("grpAB", 0, None, 10).unwrap().len(), 1);
        assert!(s.del_log("grpZ", 0, None, 10).unwrap().is_empty());
    }

    #[test]
    fn delete_auth_removes_the_record_and_its_index_entry() {
        let s = RedbStore::in_memory();
        apply_ok(
            &s,
            vec![
                WriteOp::CreateAuth(auth("basic:alice", 1)),
                WriteOp::CreateAuth(auth("token:alice", 1)),
                WriteOp::CreateAuth(auth("basic:bob", 2)),
            ],
        );
        let uniques = |uid| -> Vec<String> {
            s.auths_of_user(UserId(uid))
                .unwrap()
                .into_iter()
                .map(|a| a.unique)
                .collect()
        };
        apply_ok(
            &s,
            vec![
                WriteOp::DeleteAuth {
                    unique: "basic:alice".into(),
                },
                // Missing: no-op.
                WriteOp::DeleteAuth {
                    unique: "basic:nobody".into(),
                },
            ],
        );
        assert_eq!(s.auth("basic:alice").unwrap(), None);
        assert_eq!(uniques(1), ["token:alice"]);
        assert_eq!(uniques(2), ["basic:bob"]);

        // A batch may delete a login and create it again, for another user.
        apply_ok(
            &s,
            vec![
                WriteOp::DeleteAuth {
                    unique: "basic:bob".into(),
                },
                WriteOp::CreateAuth(auth("basic:bob", 3)),
            ],
        );
        assert!(uniques(2).is_empty());
        assert_eq!(uniques(3), ["basic:bob"]);
        // … and the reverse order leaves nothing.
        apply_ok(
            &s,
            vec![
                WriteOp::CreateAuth(auth("basic:carol", 4)),
                WriteOp::DeleteAuth {
                    unique: "basic:carol".into(),
                },
            ],
        );
        assert_eq!(s.auth("basic:carol").unwrap(), None);
        assert!(uniques(4).is_empty());
        // Deleting does not lift the precondition of an earlier creation in the batch.
        let r = s.apply(&[vec![
            WriteOp::CreateAuth(auth("basic:dave", 5)),
            WriteOp::CreateAuth(auth("basic:dave", 5)),
            WriteOp::DeleteAuth {
                unique: "basic:dave".into(),
            },
        ]]);
        assert!(matches!(r[0], Err(StoreError::Conflict(_))));

        // An unreadable record goes with its index entry, whoever it belonged to.
        let txn = s.db.begin_write().unwrap();
        {
            let junk: &[u8] = &[codec::version(), 0xff];
            txn.open_table(AUTH)
                .unwrap()
                .insert("basic:junk", junk)
                .unwrap();
            txn.open_table(AUTH_BY_USER)
                .unwrap()
                .insert((6, "basic:junk"), ())
                .unwrap();
        }
        txn.commit().unwrap();
        assert!(s.auths_of_user(UserId(6)).is_err());
        apply_ok(
            &s,
            vec![WriteOp::DeleteAuth {
                unique: "basic:junk".into(),
            }],
        );
        assert_eq!(s.auth("basic:junk").unwrap(), None);
        assert!(uniques(6).is_empty());
        let txn = s.db.begin_read().unwrap();
        let index = txn.open_table(AUTH_BY_USER).unwrap();
        assert_eq!(index.get((6, "basic:junk")).unwrap().map(|_| ()), None);
        assert_eq!(index.len().unwrap(), 2);
    }

    #[test]
    fn delete_topic_removes_every_row_of_the_topic_and_nothing_else() {
        let s = RedbStore::in_memory();
        let mut gone_sub = sub("grpA", 2);
        gone_sub.deleted = Some(UnixMillis(50));
        let mut setup: WriteBatch = (1..=5)
            .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
            .chain((1..=3).map(|i| WriteOp::AppendMessage(msg("grpAB", i))))
            .collect();
        setup.extend([
            WriteOp::CreateUser(tagged_user(1, &["travel"])),
            WriteOp::CreateTopic(tagged_topic("grpA", &["travel", "news"])),
            WriteOp::CreateTopic(tagged_topic("grpAB", &["news"])),
            WriteOp::PutSub(sub("grpA", 1)),
            WriteOp::PutSub(gone_sub),
            WriteOp::PutSub(sub("grpAB", 1)),
            WriteOp::DeleteMessages(del("grpA", 1, Some(1), &[(1, 2)])),
            WriteOp::DeleteMessages(del("grpA", 2, None, &[(2, 3)])),
            WriteOp::DeleteMessages(del("grpAB", 1, None, &[(1, 2)])),
            // Rows under a name that has no topic record.
            WriteOp::AppendMessage(msg("grpOrphan", 1)),
            WriteOp::PutSub(sub("grpOrphan", 3)),
        ]);
        apply_ok(&s, setup);
        let usr1 = UserId(1).usr();
        assert_eq!(find(&s, &["travel"], 10).len(), 2);

        apply_ok(
            &s,
            vec![WriteOp::DeleteTopic {
                name: "grpA".into(),
            }],
        );
        assert_eq!(s.topic("grpA").unwrap(), None);
        assert!(s.subs_of_topic("grpA").unwrap().is_empty());
        assert_eq!(s.sub("grpA", UserId(1)).unwrap(), None);
        assert_eq!(s.subs_of_user(UserId(1)).unwrap(), vec![sub("grpAB", 1)]);
        assert!(s.subs_of_user(UserId(2)).unwrap().is_empty());
        assert!(s.messages("grpA", q(None, None, 10)).unwrap().is_empty());
        assert_eq!(s.last_message("grpA").unwrap(), None);
        assert!(s.del_log("grpA", 0, None, 10).unwrap().is_empty());
        assert_eq!(
            find(&s, &["travel", "news"], 10),
            vec![
                ("grpAB".to_owned(), strings(&["news"])),
                (usr1.clone(), strings(&["travel"])),
            ]
        );
        {
            let txn = s.db.begin_read().unwrap();
            let by_user = txn.open_table(SUBS_BY_USER).unwrap();
            assert!(by_user.get((2, "grpA")).unwrap().is_none());
            assert!(by_user.get((1, "grpA")).unwrap().is_none());
        }
        // The neighbour whose name extends it is untouched.
        assert_eq!(
            s.topic("grpAB").unwrap(),
            Some(tagged_topic("grpAB", &["news"]))
        );
        assert_eq!(s.subs_of_topic("grpAB").unwrap(), vec![sub("grpAB", 1)]);
        assert_eq!(
            seqs(&s.messages("grpAB", q(None, None, 10)).unwrap()),
            [3, 2]
        );
        assert_eq!(s.del_log("grpAB", 0, None, 10).unwrap().len(), 1);

        // Again: a no-op. Without a topic record, the rows under the name still go.
        apply_ok(
            &s,
            vec![
                WriteOp::DeleteTopic {
                    name: "grpA".into(),
                },
                WriteOp::DeleteTopic {
                    name: "grpOrphan".into(),
                },
            ],
        );
        assert_eq!(s.last_message("grpOrphan").unwrap(), None);
        assert!(s.subs_of_user(UserId(3)).unwrap().is_empty());

        // A batch may delete a topic and create it afresh, reusing its seqs.
        let fresh = tagged_topic("grpAB", &["fresh"]);
        apply_ok(
            &s,
            vec![
                WriteOp::DeleteTopic {
                    name: "grpAB".into(),
                },
                WriteOp::CreateTopic(fresh.clone()),
                WriteOp::AppendMessage(msg("grpAB", 1)),
            ],
        );
        assert_eq!(s.topic("grpAB").unwrap(), Some(fresh));
        assert_eq!(seqs(&s.messages("grpAB", q(None, None, 10)).unwrap()), [1]);
        assert!(s.subs_of_topic("grpAB").unwrap().is_empty());
        assert_eq!(
            find(&s, &["news", "fresh"], 10),
            vec![("grpAB".to_owned(), strings(&["fresh"]))]
        );
        // Outside such a batch the usual preconditions hold.
        let r = s.apply(&[
            vec![WriteOp::CreateTopic(topic("grpAB"))],
            vec![
                WriteOp::DeleteTopic {
                    name: "grpAB".into(),
                },
                WriteOp::AppendMessage(msg("grpAB", 1)),
                WriteOp::AppendMessage(msg("grpAB", 1)),
            ],
        ]);
        assert!(r.iter().all(|r| matches!(r, Err(StoreError::Conflict(_)))));
        assert!(s.topic("grpAB").unwrap().is_some());
    }

    #[test]
    fn the_tag_index_follows_tag_changes_of_users_and_topics() {
        let s = RedbStore::in_memory();
        let usr = |id: u64| UserId(id).usr();
        apply_ok(&s, vec![WriteOp::CreateUser(tagged_user(1, &["a", "b"]))]);
        assert_eq!(find(&s, &["a"], 10), vec![(usr(1), strings(&["a"]))]);
        apply_ok(&s, vec![WriteOp::PutUser(tagged_user(1, &["b", "c"]))]);
        assert!(find(&s, &["a"], 10).is_empty());
        assert_eq!(find(&s, &["b"], 10), vec![(usr(1), strings(&["b"]))]);
        assert_eq!(find(&s, &["c"], 10), vec![(usr(1), strings(&["c"]))]);
        // The state does not matter to the index.
        let mut gone = tagged_user(1, &["b", "c"]);
        gone.state = UserState::Deleted;
        apply_ok(&s, vec![WriteOp::PutUser(gone)]);
        assert_eq!(find(&s, &["c"], 10).len(), 1);
        apply_ok(&s, vec![WriteOp::PutUser(tagged_user(1, &[]))]);
        assert!(find(&s, &["a", "b", "c"], 10).is_empty());
        // A tag listed twice is one entry, removed once.
        apply_ok(&s, vec![WriteOp::PutUser(tagged_user(1, &["d", "d"]))]);
        assert_eq!(find(&s, &["d"], 10), vec![(usr(1), strings(&["d"]))]);
        apply_ok(&s, vec![WriteOp::PutUser(tagged_user(1, &["e"]))]);
        assert!(find(&s, &["d"], 10).is_empty());

        // Several puts in one batch: the last one wins.
        apply_ok(
            &s,
            vec![
                WriteOp::PutUser(tagged_user(2, &["p"])),
                WriteOp::PutUser(tagged_user(2, &["q"])),
            ],
        );
        assert!(find(&s, &["p"], 10).is_empty());
        assert_eq!(find(&s, &["q"], 10), vec![(usr(2), strings(&["q"]))]);

        // Topics.
        apply_ok(&s, vec![WriteOp::CreateTopic(tagged_topic("grpT", &["x"]))]);
        assert_eq!(find(&s, &["x"], 10), vec![("grpT".into(), strings(&["x"]))]);
        apply_ok(&s, vec![WriteOp::PutTopic(tagged_topic("grpT", &["y"]))]);
        assert!(find(&s, &["x"], 10).is_empty());
        assert_eq!(find(&s, &["y"], 10), vec![("grpT".into(), strings(&["y"]))]);

        // A record that cannot be read: its stale entries go when it is replaced.
        let txn = s.db.begin_write().unwrap();
        {
            let junk: &[u8] = &[codec::version(), 0xff];
            txn.open_table(USERS).unwrap().insert(3, junk).unwrap();
            txn.open_table(TOPICS)
                .unwrap()
                .insert("grpJ", junk)
                .unwrap();
            let mut tags = txn.open_table(TAGS).unwrap();
            tags.insert(("old", usr(3).as_str()), ()).unwrap();
            tags.insert(("old", "grpJ"), ()).unwrap();
            tags.insert(("old", usr(1).as_str()), ()).unwrap();
        }
        txn.commit().unwrap();
        apply_ok(
            &s,
            vec![
                WriteOp::PutUser(tagged_user(3, &["new"])),
                WriteOp::DeleteTopic {
                    name: "grpJ".into(),
                },
            ],
        );
        assert_eq!(find(&s, &["old"], 10), vec![(usr(1), strings(&["old"]))]);
        assert_eq!(find(&s, &["new"], 10), vec![(usr(3), strings(&["new"]))]);
    }

    #[test]
    fn find_tags_matches_several_tags_most_matches_first_within_a_limit() {
        let s = RedbStore::in_memory();
        let usr = |id: u64| UserId(id).usr();
        apply_ok(
            &s,
            vec![
                WriteOp::CreateUser(tagged_user(1, &["alpha", "beta"])),
                WriteOp::CreateUser(tagged_user(2, &["beta"])),
                WriteOp::CreateUser(tagged_user(3, &["gamma", "alpha", "beta"])),
                WriteOp::CreateUser(tagged_user(4, &["alphabet", "al"])),
                WriteOp::CreateTopic(tagged_topic("grpX", &["beta", "gamma"])),
                WriteOp::CreateTopic(tagged_topic("grpY", &["delta"])),
            ],
        );
        let all = find(&s, &["gamma", "beta", "alpha"], 10);
        assert_eq!(
            all,
            vec![
                (usr(3), strings(&["gamma", "beta", "alpha"])),
                ("grpX".into(), strings(&["gamma", "beta"])),
                (usr(1), strings(&["beta", "alpha"])),
                (usr(2), strings(&["beta"])),
            ]
        );
        // The matched tags follow the order asked for.
        assert_eq!(
            find(&s, &["alpha", "gamma"], 10),
            vec![
                (usr(3), strings(&["alpha", "gamma"])),
                ("grpX".into(), strings(&["gamma"])),
                (usr(1), strings(&["alpha"])),
            ]
        );
        assert_eq!(find(&s, &["gamma", "beta", "alpha"], 2), all[..2].to_vec());
        assert_eq!(find(&s, &["gamma", "beta", "alpha"], 4), all);
        assert!(find(&s, &["gamma", "beta", "alpha"], 0).is_empty());
        // Duplicates asked for count once; tags match whole, not by prefix.
        assert_eq!(
            find(&s, &["delta", "delta"], 10),
            vec![("grpY".into(), strings(&["delta"]))]
        );
        assert_eq!(find(&s, &["al"], 10), vec![(usr(4), strings(&["al"]))]);
        assert!(find(&s, &["alph", "delt", ""], 10).is_empty());
        assert!(find(&s, &[], 10).is_empty());
    }

    #[test]
    fn an_older_database_gets_its_tag_index_built_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        {
            // Tables as version 1 of this store wrote them: no tag index, version-1 records.
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let user_v1: &[u8] = &[1, 1, 2, 0, 0x2f, 0, 0, 0, 2, 1, b'a', 1, b'b', 0];
                let mut users = txn.open_table(USERS).unwrap();
                users.insert(4, user_v1).unwrap();
                users.insert(5, &[1u8, 0xff][..]).unwrap();
                let topic_v1: &[u8] = &[1, 1, 2, 0, 0x2f, 0x01, 0, 0, 1, 1, b'a', 0, 0];
                txn.open_table(TOPICS)
                    .unwrap()
                    .insert("grpX", topic_v1)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let s = RedbStore::open(dir.path(), true).unwrap();
        let usr4 = UserId(4).usr();
        assert_eq!(
            find(&s, &["a", "b"], 10),
            vec![
                (usr4.clone(), strings(&["a", "b"])),
                ("grpX".into(), strings(&["a"])),
            ]
        );
        let u = s.user(UserId(4)).unwrap().unwrap();
        assert_eq!((u.tags, u.creds), (strings(&["a", "b"]), vec![]));
        assert_eq!(s.topic("grpX").unwrap().unwrap().aux, None);
        // Later writes keep it up to date, and reopening does not rebuild it.
        apply_ok(&s, vec![WriteOp::PutUser(tagged_user(4, &["b"]))]);
        drop(s);
        let s = RedbStore::open(dir.path(), true).unwrap();
        assert_eq!(
            find(&s, &["a", "b"], 10),
            vec![("grpX".into(), strings(&["a"])), (usr4, strings(&["b"])),]
        );
    }
}
