//! [`RedbStore`]: the [`Store`] implementation on an embedded redb file (or redb's in-memory
//! backend for tests), with its table layout and the compact binary record codec.
//!
//! It owns the on-disk format and the transactional semantics of [`Store::apply`] (per-batch
//! preconditions inside one write transaction). It deliberately does not queue, group or
//! schedule writes — that is the [`writer`](super::writer) thread's job — and it never
//! interprets the JSON text fields it stores.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;

use redb::backends::InMemoryBackend;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};

use super::{
    AuthRecord, LastMessage, MessageQuery, MessageRecord, Store, StoreError, SubRecord,
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
/// (topic, seq) → encoded [`MessageRecord`].
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");

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

    /// Creates every table, so that read transactions never meet a missing one.
    fn init(db: Database, durable: bool) -> Result<RedbStore, StoreError> {
        let txn = db.begin_write().map_err(backend)?;
        {
            txn.open_table(USERS).map_err(backend)?;
            txn.open_table(AUTH).map_err(backend)?;
            txn.open_table(AUTH_BY_USER).map_err(backend)?;
            txn.open_table(TOPICS).map_err(backend)?;
            txn.open_table(SUBS).map_err(backend)?;
            txn.open_table(SUBS_BY_USER).map_err(backend)?;
            txn.open_table(MESSAGES).map_err(backend)?;
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
}

/// A key that an earlier op of the same batch creates, for intra-batch conflict checks.
#[derive(PartialEq, Eq, Hash)]
enum Created<'b> {
    User(u64),
    Auth(&'b str),
    Topic(&'b str),
    Message(&'b str, u64),
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
        })
    }

    /// Checks the preconditions of a batch against the transaction as it is now, including the
    /// keys created by earlier ops of the same batch. `Some(reason)` = the batch conflicts.
    fn conflict(&self, batch: &WriteBatch) -> Result<Option<String>, StoreError> {
        // Only multi-op batches can conflict with themselves; single ops skip the set.
        let track = batch.len() > 1;
        let mut created: HashSet<Created<'_>> = HashSet::new();
        for op in batch {
            let (key, must_be_new) = match op {
                WriteOp::CreateUser(u) => (Created::User(u.id.0), true),
                WriteOp::PutUser(u) => (Created::User(u.id.0), false),
                WriteOp::CreateAuth(a) => (Created::Auth(a.unique.as_str()), true),
                WriteOp::PutAuth(a) => (Created::Auth(a.unique.as_str()), false),
                WriteOp::CreateTopic(t) => (Created::Topic(t.name.as_str()), true),
                WriteOp::PutTopic(t) => (Created::Topic(t.name.as_str()), false),
                WriteOp::AppendMessage(m) => (Created::Message(m.topic.as_str(), m.seq), true),
                WriteOp::PutSub(_) | WriteOp::DeleteSub { .. } | WriteOp::Markers { .. } => {
                    continue
                }
            };
            if must_be_new && (created.contains(&key) || self.exists(&key)?) {
                return Ok(Some(match key {
                    Created::User(id) => format!("user {} exists", UserId(id)),
                    Created::Auth(unique) => format!("login {unique} exists"),
                    Created::Topic(name) => format!("topic {name} exists"),
                    Created::Message(topic, seq) => format!("message {topic}#{seq} exists"),
                }));
            }
            if track {
                created.insert(key);
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
                let bytes = codec::encode_user(u);
                self.users
                    .insert(u.id.0, bytes.as_slice())
                    .map_err(backend)?;
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
            WriteOp::CreateTopic(t) | WriteOp::PutTopic(t) => {
                let bytes = codec::encode_topic(t);
                self.topics
                    .insert(t.name.as_str(), bytes.as_slice())
                    .map_err(backend)?;
            }
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
        let upper = match q.before {
            Some(b) => Bound::Excluded((topic, b)),
            None => Bound::Included((topic, u64::MAX)),
        };
        let txn = self.read()?;
        let table = txn.open_table(MESSAGES).map_err(backend)?;
        let range = table
            .range((Bound::Included((topic, since)), upper))
            .map_err(backend)?;
        let mut out = Vec::with_capacity(q.limit.min(256));
        for entry in range.rev().take(q.limit) {
            let (key, value) = entry.map_err(backend)?;
            let (_, seq) = key.value();
            out.push(codec::decode_message(topic, seq, value.value())?);
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
mod codec {
    use super::super::{
        AuthRecord, JsonText, MessageRecord, StoreError, SubRecord, TopicRecord, UserRecord,
        UserState,
    };
    use crate::access::{AccessMode, AuthLevel, DefaultAccess};
    use crate::ids::{UnixMillis, UserId};

    /// Bumped whenever a layout below changes; decoding rejects unknown versions.
    const VERSION: u8 = 1;

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
    }

    struct Dec<'a> {
        buf: &'a [u8],
    }

    impl<'a> Dec<'a> {
        fn new(buf: &'a [u8]) -> Result<Dec<'a>, StoreError> {
            let mut d = Dec { buf };
            match d.u8()? {
                VERSION => Ok(d),
                v => Err(corrupt(&format!("unknown format version {v}"))),
            }
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
        };
        d.finish(rec)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

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
            let good = encode_message(&MessageRecord {
                topic: "grpX".into(),
                seq: 1,
                ts: UnixMillis(1_700_000_000_000),
                from: UserId(9),
                head: Some("{\"mime\":\"text/x-drafty\"}".into()),
                content: "\"hello\"".into(),
            });
            assert!(decode_message("grpX", 1, &good).is_ok());
            // Every truncation, a wrong version, trailing junk and an oversized varint.
            for n in 0..good.len() {
                let r = decode_message("grpX", 1, &good[..n]);
                assert!(matches!(r, Err(StoreError::Backend(_))), "prefix {n}");
            }
            let mut wrong_version = good.clone();
            wrong_version[0] = 99;
            assert!(decode_message("grpX", 1, &wrong_version).is_err());
            let mut trailing = good.clone();
            trailing.push(0);
            assert!(decode_message("grpX", 1, &trailing).is_err());
            let overflow = [
                VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ];
            assert!(Dec::new(&overflow).unwrap().u64().is_err());
            let huge_len = [VERSION, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
            assert!(decode_message("grpX", 1, &huge_len).is_err());
            assert!(decode_user(UserId(1), &[VERSION, 0, 0, 7]).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AccessMode, AuthLevel, DefaultAccess};
    use crate::ids::UnixMillis;
    use crate::store::UserState;

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
        }
    }

    fn q(since: Option<u64>, before: Option<u64>, limit: usize) -> MessageQuery {
        MessageQuery {
            since,
            before,
            limit,
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
        let mut plain_auth = auth("token:x", 2);
        plain_auth.expires = None;
        plain_auth.secret.clear();
        plain_auth.level = AuthLevel::Root;
        let mut plain_topic = topic("p2pAAA");
        plain_topic.owner = None;
        plain_topic.public = None;
        plain_topic.trusted = None;
        plain_topic.is_chan = false;
        let mut deleted_sub = sub("grpA", 2);
        deleted_sub.deleted = Some(UnixMillis(99));
        deleted_sub.private = None;
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
            ],
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
}
