//! The table layout of [`RedbStore`](super::RedbStore): every redb table definition (its name,
//! key and value types), the one place that opens them all, and [`WriteTables`], the tables of
//! one write transaction.
//!
//! It owns the key layouts; the value bytes are the [`codec`](super::codec)'s. It does not read
//! or write rows.

use redb::{Table, TableDefinition, WriteTransaction};

use super::backend;
use crate::store::StoreError;

/// user id → encoded [`UserRecord`](crate::store::UserRecord).
pub(super) const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// unique login (`scheme:login`) → encoded [`AuthRecord`](crate::store::AuthRecord).
pub(super) const AUTH: TableDefinition<&str, &[u8]> = TableDefinition::new("auth");
/// (user id, unique login) → (): the auth records of a user.
pub(super) const AUTH_BY_USER: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("auth_by_user");
/// topic name → encoded [`TopicRecord`](crate::store::TopicRecord).
pub(super) const TOPICS: TableDefinition<&str, &[u8]> = TableDefinition::new("topics");
/// (topic, user id) → encoded [`SubRecord`](crate::store::SubRecord).
pub(super) const SUBS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("subs");
/// (user id, topic) → (): the subscriptions of a user.
pub(super) const SUBS_BY_USER: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("subs_by_user");
/// (topic, seq) → encoded [`MessageRecord`](crate::store::MessageRecord) (tombstones included).
pub(super) const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// (topic, delete id) → encoded [`DelRecord`](crate::store::DelRecord): the delete history of a
/// topic.
pub(super) const DELS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dels");
/// (tag, owner) → (): the tag index. The owner is `usr…` for a user, the topic name for a
/// topic. Kept in step with the records' `tags` by every write that stores or removes them.
pub(super) const TAGS: TableDefinition<(&str, &str), ()> = TableDefinition::new("tags");
/// credential (`method:value`) → id of the user holding its claim. Kept by
/// [`WriteOp::ClaimCred`](crate::store::WriteOp::ClaimCred) and `ReleaseCred` only.
pub(super) const CREDS: TableDefinition<&str, u64> = TableDefinition::new("creds");

/// The tables of one write transaction.
pub(super) struct WriteTables<'txn> {
    pub(super) users: Table<'txn, u64, &'static [u8]>,
    pub(super) auth: Table<'txn, &'static str, &'static [u8]>,
    pub(super) auth_by_user: Table<'txn, (u64, &'static str), ()>,
    pub(super) topics: Table<'txn, &'static str, &'static [u8]>,
    pub(super) subs: Table<'txn, (&'static str, u64), &'static [u8]>,
    pub(super) subs_by_user: Table<'txn, (u64, &'static str), ()>,
    pub(super) messages: Table<'txn, (&'static str, u64), &'static [u8]>,
    pub(super) dels: Table<'txn, (&'static str, u64), &'static [u8]>,
    pub(super) tags: Table<'txn, (&'static str, &'static str), ()>,
    pub(super) creds: Table<'txn, &'static str, u64>,
}

impl<'txn> WriteTables<'txn> {
    /// Opens every table in `txn`, creating the missing ones.
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
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
            creds: txn.open_table(CREDS).map_err(backend)?,
        })
    }
}
