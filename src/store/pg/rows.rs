//! Rows ↔ records for [`PgStore`](super::PgStore): the column list each read selects and the
//! decoding of a row into its record, plus the text forms of enums (user state, auth level).
//!
//! Decoding never panics: a value the record cannot hold (an unknown state, an access mode
//! past 8 bits, arrays of unequal length) is a [`StoreError::Backend`] naming it. JSON text is
//! returned as stored, byte for byte. The column lists here and the statements in
//! `write_ops.rs` name the same columns; `schema.rs` defines them.

use postgres::types::FromSql;
use postgres::Row;

use super::keys::from_db;
use crate::access::{AccessMode, AuthLevel, DefaultAccess};
use crate::ids::{UnixMillis, UserId};
use crate::store::{
    AuthRecord, CredRecord, DelRecord, MessageRecord, StoreError, SubRecord, TopicRecord,
    UserRecord, UserState,
};

/// The columns [`user`] decodes, in order (a macro, so that statements are `concat!`ed at
/// compile time).
macro_rules! user_cols {
    () => {
        "id, created, updated, state, access_auth, access_anon, public, trusted, tags, \
         last_seen, last_seen_ua, cred_methods, cred_values, cred_done"
    };
}
/// The columns [`auth`] decodes, in order.
macro_rules! auth_cols {
    () => {
        "login, user_id, scheme, level, secret, expires"
    };
}
/// The columns [`topic`] decodes, in order.
macro_rules! topic_cols {
    () => {
        "name, created, updated, owner, access_auth, access_anon, public, trusted, tags, \
         is_chan, del_id, aux"
    };
}
/// The columns [`sub`] decodes, in order.
macro_rules! sub_cols {
    () => {
        "topic, user_id, created, updated, deleted, want, given, read_seq, recv_seq, del_id, \
         private"
    };
}
/// The columns [`message`] decodes, in order (the topic is known to the caller).
macro_rules! message_cols {
    () => {
        "seq, ts, from_user, head, content, deleted"
    };
}
/// The columns [`del`] decodes, in order.
macro_rules! del_cols {
    () => {
        "topic, del_id, user_id, ts, range_lo, range_hi"
    };
}
pub(super) use {auth_cols, del_cols, message_cols, sub_cols, topic_cols, user_cols};

fn corrupt(what: String) -> StoreError {
    StoreError::Backend(format!("unreadable stored row: {what}"))
}

/// Column `idx` of `row` as `T`.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, StoreError> {
    row.try_get(idx).map_err(|e| {
        let name = row.columns().get(idx).map_or("?", |c| c.name());
        corrupt(format!("column {name}: {e}"))
    })
}

fn u64_at(row: &Row, idx: usize) -> Result<u64, StoreError> {
    get::<i64>(row, idx).map(from_db)
}

fn opt_u64_at(row: &Row, idx: usize) -> Result<Option<u64>, StoreError> {
    Ok(get::<Option<i64>>(row, idx)?.map(from_db))
}

fn millis_at(row: &Row, idx: usize) -> Result<UnixMillis, StoreError> {
    u64_at(row, idx).map(UnixMillis)
}

fn mode_at(row: &Row, idx: usize) -> Result<AccessMode, StoreError> {
    let v: i16 = get(row, idx)?;
    u8::try_from(v)
        .map(AccessMode)
        .map_err(|_| corrupt(format!("access mode {v} out of range")))
}

/// An access mode as stored (`smallint`).
pub(super) fn mode(m: AccessMode) -> i16 {
    i16::from(m.0)
}

pub(super) fn state_name(s: UserState) -> &'static str {
    match s {
        UserState::Ok => "ok",
        UserState::Suspended => "suspended",
        UserState::Deleted => "deleted",
    }
}

fn state_from(name: &str) -> Result<UserState, StoreError> {
    match name {
        "ok" => Ok(UserState::Ok),
        "suspended" => Ok(UserState::Suspended),
        "deleted" => Ok(UserState::Deleted),
        other => Err(corrupt(format!("user state {other:?}"))),
    }
}

pub(super) fn level_name(l: AuthLevel) -> &'static str {
    match l {
        AuthLevel::None => "none",
        AuthLevel::Anon => "anon",
        AuthLevel::Auth => "auth",
        AuthLevel::Root => "root",
    }
}

fn level_from(name: &str) -> Result<AuthLevel, StoreError> {
    match name {
        "none" => Ok(AuthLevel::None),
        "anon" => Ok(AuthLevel::Anon),
        "auth" => Ok(AuthLevel::Auth),
        "root" => Ok(AuthLevel::Root),
        other => Err(corrupt(format!("auth level {other:?}"))),
    }
}

/// A user from the columns [`user_cols!`] starting at `at`.
pub(super) fn user_at(row: &Row, at: usize) -> Result<UserRecord, StoreError> {
    let id = UserId(u64_at(row, at)?);
    let methods: Vec<String> = get(row, at + 11)?;
    let values: Vec<String> = get(row, at + 12)?;
    let done: Vec<bool> = get(row, at + 13)?;
    if methods.len() != values.len() || methods.len() != done.len() {
        return Err(corrupt(format!(
            "user {id}: credential arrays of unequal length"
        )));
    }
    let creds = methods
        .into_iter()
        .zip(values)
        .zip(done)
        .map(|((method, value), done)| CredRecord {
            method,
            value,
            done,
        })
        .collect();
    let last_seen = match (
        opt_u64_at(row, at + 9)?,
        get::<Option<String>>(row, at + 10)?,
    ) {
        (Some(ts), Some(ua)) => Some((UnixMillis(ts), ua)),
        _ => None,
    };
    Ok(UserRecord {
        id,
        created: millis_at(row, at + 1)?,
        updated: millis_at(row, at + 2)?,
        state: state_from(get(row, at + 3)?)?,
        access: DefaultAccess {
            auth: mode_at(row, at + 4)?,
            anon: mode_at(row, at + 5)?,
        },
        public: get(row, at + 6)?,
        trusted: get(row, at + 7)?,
        tags: get(row, at + 8)?,
        last_seen,
        creds,
    })
}

/// A user from a row of [`user_cols!`].
pub(super) fn user(row: &Row) -> Result<UserRecord, StoreError> {
    user_at(row, 0)
}

/// A login from a row of [`auth_cols!`].
pub(super) fn auth(row: &Row) -> Result<AuthRecord, StoreError> {
    Ok(AuthRecord {
        unique: get(row, 0)?,
        user: UserId(u64_at(row, 1)?),
        scheme: get(row, 2)?,
        level: level_from(get(row, 3)?)?,
        secret: get(row, 4)?,
        expires: opt_u64_at(row, 5)?.map(UnixMillis),
    })
}

/// A topic from the columns [`topic_cols!`] starting at `at`.
pub(super) fn topic_at(row: &Row, at: usize) -> Result<TopicRecord, StoreError> {
    Ok(TopicRecord {
        name: get(row, at)?,
        created: millis_at(row, at + 1)?,
        updated: millis_at(row, at + 2)?,
        owner: opt_u64_at(row, at + 3)?.map(UserId),
        access: DefaultAccess {
            auth: mode_at(row, at + 4)?,
            anon: mode_at(row, at + 5)?,
        },
        public: get(row, at + 6)?,
        trusted: get(row, at + 7)?,
        tags: get(row, at + 8)?,
        is_chan: get(row, at + 9)?,
        del_id: u64_at(row, at + 10)?,
        aux: get(row, at + 11)?,
    })
}

/// A topic from a row of [`topic_cols!`].
pub(super) fn topic(row: &Row) -> Result<TopicRecord, StoreError> {
    topic_at(row, 0)
}

/// A subscription from the columns [`sub_cols!`] starting at `at`.
pub(super) fn sub_at(row: &Row, at: usize) -> Result<SubRecord, StoreError> {
    Ok(SubRecord {
        topic: get(row, at)?,
        user: UserId(u64_at(row, at + 1)?),
        created: millis_at(row, at + 2)?,
        updated: millis_at(row, at + 3)?,
        deleted: opt_u64_at(row, at + 4)?.map(UnixMillis),
        want: mode_at(row, at + 5)?,
        given: mode_at(row, at + 6)?,
        read: u64_at(row, at + 7)?,
        recv: u64_at(row, at + 8)?,
        del_id: u64_at(row, at + 9)?,
        private: get(row, at + 10)?,
    })
}

/// A subscription from a row of [`sub_cols!`].
pub(super) fn sub(row: &Row) -> Result<SubRecord, StoreError> {
    sub_at(row, 0)
}

/// A message of `topic` from a row of [`message_cols!`].
pub(super) fn message(topic: &str, row: &Row) -> Result<MessageRecord, StoreError> {
    Ok(MessageRecord {
        topic: topic.to_owned(),
        seq: u64_at(row, 0)?,
        ts: millis_at(row, 1)?,
        from: UserId(u64_at(row, 2)?),
        head: get(row, 3)?,
        content: get(row, 4)?,
        deleted: get(row, 5)?,
    })
}

/// A delete record from a row of [`del_cols!`].
pub(super) fn del(row: &Row) -> Result<DelRecord, StoreError> {
    let topic: String = get(row, 0)?;
    let del_id = u64_at(row, 1)?;
    let lows: Vec<i64> = get(row, 4)?;
    let his: Vec<i64> = get(row, 5)?;
    if lows.len() != his.len() {
        return Err(corrupt(format!(
            "delete {topic}#{del_id}: range arrays of unequal length"
        )));
    }
    Ok(DelRecord {
        del_id,
        user: opt_u64_at(row, 2)?.map(UserId),
        ts: millis_at(row, 3)?,
        ranges: lows
            .into_iter()
            .zip(his)
            .map(|(l, h)| (from_db(l), from_db(h)))
            .collect(),
        topic,
    })
}
