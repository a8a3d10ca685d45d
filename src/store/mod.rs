//! The persistence boundary: record types, the [`Store`] trait, and the write-batch vocabulary.
//!
//! Reads are synchronous and cheap on warm data, so shards may call them inline. Writes are
//! never performed on an executor: a shard submits a [`WriteBatch`] to the [`writer`] thread,
//! which groups many batches into one durable transaction (one fsync) and reports completion
//! through a callback. This module knows nothing about the wire protocol or the runtime.

mod batch_keys;
mod boxed;
#[cfg(test)]
pub(crate) mod conformance;
pub mod journal;
pub mod pg;
pub mod read;
pub mod readers;
pub mod redb;
#[cfg(test)]
pub(crate) mod testing;
pub mod writer;

use crate::access::{AccessMode, AuthLevel, DefaultAccess};
use crate::ids::{UnixMillis, UserId};

pub use self::pg::{PgOptions, PgStore};
pub use self::redb::RedbStore;
pub use read::{Answers, ContactRow, Found, ReadAnswer, ReadQuery};
pub use writer::{StoreWriter, WriterConfig};

/// JSON text kept verbatim (public/private descriptions, message heads and contents).
/// The store never parses it; the protocol layer embeds it as raw JSON.
pub type JsonText = String;

/// Account state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UserState {
    #[default]
    Ok,
    Suspended,
    Deleted,
}

/// A user account.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub id: UserId,
    pub created: UnixMillis,
    pub updated: UnixMillis,
    pub state: UserState,
    /// Default access given to others (used as `given` for P2P peers).
    pub access: DefaultAccess,
    pub public: Option<JsonText>,
    pub trusted: Option<JsonText>,
    pub tags: Vec<String>,
    /// Last time the user went offline and the user agent of that session.
    pub last_seen: Option<(UnixMillis, String)>,
    /// Credentials (`email`, `tel`, …) the user added, validated or not.
    pub creds: Vec<CredRecord>,
}

/// The fields of a user a [`WriteOp::PatchUser`] changes; `None` keeps the stored value.
/// Topics hold copies of user records, and writing a whole stale copy back could undo a
/// suspension or a deletion made elsewhere meanwhile; a patch cannot.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct UserPatch {
    pub id: UserId,
    pub updated: Option<UnixMillis>,
    pub access: Option<DefaultAccess>,
    pub public: Option<Option<JsonText>>,
    pub trusted: Option<Option<JsonText>>,
    pub tags: Option<Vec<String>>,
    pub creds: Option<Vec<CredRecord>>,
    pub last_seen: Option<(UnixMillis, String)>,
}

impl UserPatch {
    /// A patch of every field a user may change on `me` (description, tags, credentials),
    /// taken from `u`.
    pub fn profile(u: &UserRecord) -> UserPatch {
        UserPatch {
            id: u.id,
            updated: Some(u.updated),
            access: Some(u.access),
            public: Some(u.public.clone()),
            trusted: Some(u.trusted.clone()),
            tags: Some(u.tags.clone()),
            creds: Some(u.creds.clone()),
            last_seen: None,
        }
    }

    /// Applies the patch to a stored record.
    pub fn apply(&self, u: &mut UserRecord) {
        if let Some(v) = self.updated {
            u.updated = v;
        }
        if let Some(v) = self.access {
            u.access = v;
        }
        if let Some(v) = &self.public {
            u.public = v.clone();
        }
        if let Some(v) = &self.trusted {
            u.trusted = v.clone();
        }
        if let Some(v) = &self.tags {
            u.tags = v.clone();
        }
        if let Some(v) = &self.creds {
            u.creds = v.clone();
        }
        if let Some(v) = &self.last_seen {
            u.last_seen = Some(v.clone());
        }
    }
}

/// One credential of a user: `method:value`, and whether it was confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredRecord {
    pub method: String,
    pub value: String,
    pub done: bool,
}

/// An authentication record: one per (scheme, unique login).
#[derive(Clone, Debug, PartialEq)]
pub struct AuthRecord {
    /// Globally unique key, e.g. `basic:alice`.
    pub unique: String,
    pub user: UserId,
    pub scheme: String,
    pub level: AuthLevel,
    /// Scheme-specific secret, e.g. a bcrypt hash for `basic`.
    pub secret: Vec<u8>,
    pub expires: Option<UnixMillis>,
}

/// A persistent topic (group, p2p, channel, sys). `me` and `fnd` are never stored as topics.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicRecord {
    /// Internal name (`grp…`, `p2p…`, `sys`).
    pub name: String,
    pub created: UnixMillis,
    pub updated: UnixMillis,
    pub owner: Option<UserId>,
    pub access: DefaultAccess,
    pub public: Option<JsonText>,
    pub trusted: Option<JsonText>,
    pub tags: Vec<String>,
    /// True for channels (`nch…` creations).
    pub is_chan: bool,
    /// Delete-transaction counter (`clear`).
    pub del_id: u64,
    /// Application data attached to the topic (`{set aux}`), a JSON object.
    pub aux: Option<JsonText>,
}

/// A user's subscription to a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct SubRecord {
    pub topic: String,
    pub user: UserId,
    pub created: UnixMillis,
    pub updated: UnixMillis,
    /// Set when the subscription was deleted (kept to remember `given`, e.g. bans).
    pub deleted: Option<UnixMillis>,
    pub want: AccessMode,
    pub given: AccessMode,
    pub read: u64,
    pub recv: u64,
    /// The user's own delete id (soft deletes).
    pub del_id: u64,
    pub private: Option<JsonText>,
}

/// A stored `{data}` message.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageRecord {
    pub topic: String,
    pub seq: u64,
    pub ts: UnixMillis,
    pub from: UserId,
    pub head: Option<JsonText>,
    pub content: JsonText,
    /// Hard-deleted for everyone: a tombstone that keeps the seq taken (content is empty).
    pub deleted: bool,
}

/// A range query over message seq ids: `since` inclusive, `before` exclusive, newest first.
/// Tombstones (hard-deleted messages) and seqs inside any of the `exclude` ranges
/// (`[low, hi)`, the caller's soft deletions) are skipped and do not count toward `limit`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MessageQuery {
    pub since: Option<u64>,
    pub before: Option<u64>,
    pub limit: usize,
    pub exclude: Vec<(u64, u64)>,
}

/// One delete transaction on a topic's messages (`{del msg}`), kept as history for
/// `{get del}` and for hiding soft-deleted messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelRecord {
    pub topic: String,
    /// The topic's delete id taken by this transaction: every `{del msg}`, hard or soft, takes
    /// the topic's next one, so it is unique per topic (the store's key is `(topic, del_id)`).
    pub del_id: u64,
    /// `None`: deleted for everyone (hard). `Some(user)`: hidden for that user only (soft).
    pub user: Option<UserId>,
    pub ts: UnixMillis,
    /// `[low, hi)` ranges, merged and sorted.
    pub ranges: Vec<(u64, u64)>,
}

/// The newest message of a topic: its seq and timestamp (`touched`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastMessage {
    pub seq: u64,
    pub ts: UnixMillis,
}

/// One mutation. Several form a [`WriteBatch`] that is applied atomically.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// Insert a user; fails with [`StoreError::Conflict`] if the id exists.
    CreateUser(UserRecord),
    /// Insert or replace a user.
    PutUser(UserRecord),
    /// Change some fields of an existing user, leaving the rest (its state above all) as
    /// stored. Missing or deleted user: no-op.
    PatchUser(UserPatch),
    /// Insert an auth record; fails with [`StoreError::Conflict`] if `unique` exists.
    CreateAuth(AuthRecord),
    /// Insert or replace an auth record.
    PutAuth(AuthRecord),
    /// Insert a topic; fails with [`StoreError::Conflict`] if the name exists.
    CreateTopic(TopicRecord),
    /// Insert or replace a topic.
    PutTopic(TopicRecord),
    /// Insert or replace a subscription (also indexes it by user).
    PutSub(SubRecord),
    /// Remove a subscription row entirely.
    DeleteSub { topic: String, user: UserId },
    /// Raise the read/recv markers of a subscription (never lowers them; recv ≥ read).
    /// Missing subscription: no-op.
    Markers {
        topic: String,
        user: UserId,
        read: u64,
        recv: u64,
    },
    /// Append a message. Fails with [`StoreError::Conflict`] if (topic, seq) exists.
    AppendMessage(MessageRecord),
    /// Remove an auth record (and its by-user index entry). Missing: no-op.
    DeleteAuth { unique: String },
    /// Record a delete transaction. For a hard delete (`user: None`) every stored message in
    /// the ranges becomes a tombstone (`deleted`, empty content and head); a soft delete only
    /// records the ranges. The caller updates the topic's or subscription's `del_id` itself.
    DeleteMessages(DelRecord),
    /// Remove a topic entirely: its record, subscriptions (both indexes), messages, delete
    /// history and tag index entries. Missing: no-op.
    DeleteTopic { name: String },
    /// Claim a confirmed credential for `user`, so that no other account can confirm it.
    /// `unique` is `method:value` (`email:alice@example.com`), compared whole and byte for byte
    /// (callers normalize it); the store does not parse it.
    ///
    /// A precondition: the batch fails with [`StoreError::Conflict`] if another user holds
    /// `unique`; if `user` holds it already, this is a no-op. It is checked with the batch's
    /// other preconditions against the claims as the earlier batches of the same
    /// [`Store::apply`] call (one write transaction) and the earlier ops of the same batch left
    /// them: of two batches of one call claiming a value for different users, the second
    /// conflicts. Within a batch, claims and releases take effect in op order, so
    /// `ReleaseCred` then `ClaimCred` moves a credential from one user to another, and
    /// `ClaimCred` then `ReleaseCred` by the same user leaves it free.
    ///
    /// Claims are kept only by `ClaimCred` and [`WriteOp::ReleaseCred`]: storing a user's
    /// `creds`, or marking the user deleted, does not change them. Whoever deletes an account
    /// releases each of its credentials explicitly in the same batch; a claim nobody releases
    /// stays forever.
    ClaimCred { unique: String, user: UserId },
    /// Release `user`'s claim on `unique` (see [`WriteOp::ClaimCred`]). A claim held by another
    /// user, or no claim, is left as it is: a no-op, never a conflict.
    ReleaseCred { unique: String, user: UserId },
}

/// Ops applied atomically, all or none. Preconditions (creations that must be new, credential
/// claims) are checked before any op of the batch is applied.
pub type WriteBatch = Vec<WriteOp>;

/// Errors at the persistence boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness precondition failed (duplicate login, existing user id or topic name, a
    /// credential claimed by another user).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backing database failed (I/O, corruption); the message is for the log.
    #[error("storage failure: {0}")]
    Backend(String),
    /// The writer thread has stopped (server shutting down).
    #[error("store writer stopped")]
    Stopped,
}

/// Synchronous access to persistent state. Implementations are shared by every shard and the
/// writer thread, hence `Send + Sync`.
pub trait Store: Send + Sync + 'static {
    fn user(&self, uid: UserId) -> Result<Option<UserRecord>, StoreError>;
    fn auth(&self, unique: &str) -> Result<Option<AuthRecord>, StoreError>;
    /// Auth records of a user (all schemes).
    fn auths_of_user(&self, uid: UserId) -> Result<Vec<AuthRecord>, StoreError>;
    fn topic(&self, name: &str) -> Result<Option<TopicRecord>, StoreError>;
    fn sub(&self, topic: &str, uid: UserId) -> Result<Option<SubRecord>, StoreError>;
    /// Every subscription of a topic, including deleted ones.
    fn subs_of_topic(&self, topic: &str) -> Result<Vec<SubRecord>, StoreError>;
    /// Every subscription of a user, including deleted ones.
    fn subs_of_user(&self, uid: UserId) -> Result<Vec<SubRecord>, StoreError>;
    /// Messages matching the query, newest first.
    fn messages(&self, topic: &str, q: MessageQuery) -> Result<Vec<MessageRecord>, StoreError>;
    /// The newest message of a topic (tombstones included, so seqs are never reused).
    fn last_message(&self, topic: &str) -> Result<Option<LastMessage>, StoreError>;
    /// Delete transactions of a topic with `since <= del_id < before`, ascending by del_id,
    /// at most `limit`; both hard and every user's soft ones (callers filter by user).
    fn del_log(
        &self,
        topic: &str,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DelRecord>, StoreError>;
    /// Tag search: for every user (`usr…`) or topic (`grp…`) carrying at least one of `tags`,
    /// its name and the subset of `tags` it carries, at most `limit` owners. The index is kept
    /// by the store from `UserRecord::tags` and `TopicRecord::tags` on every write.
    fn find_tags(
        &self,
        tags: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError>;
    /// The user holding the claim on a credential (`method:value`, see
    /// [`WriteOp::ClaimCred`]), if any.
    fn cred_owner(&self, unique: &str) -> Result<Option<UserId>, StoreError>;
    /// Applies many batches in ONE durable transaction. Returns one result per batch: a batch
    /// whose precondition fails is skipped (`Err`), the others commit. A backend failure fails
    /// every batch.
    fn apply(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>>;
    /// Applies like [`Store::apply`], but the commit may stay volatile (lost by a crash) until
    /// the next durable commit or [`Store::sync`]: for writes that are already safe in a
    /// shard's journal. Stores without cheaper commits apply durably.
    fn apply_volatile(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        self.apply(batches)
    }
    /// Makes every commit so far durable (a no-op where every commit already is).
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Answers one [`ReadQuery`]; stores without a better plan delegate to [`read::run`].
    fn read(&self, q: &ReadQuery) -> Result<ReadAnswer, StoreError>;
}
