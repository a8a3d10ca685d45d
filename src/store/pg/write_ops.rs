//! The ops of a general batch on [`PgStore`](super::PgStore): the statements each
//! [`WriteOp`] runs, in op order, once its batch passed `precondition.rs`.
//!
//! It owns how each op changes the rows and keeps the tag index in step with the users' and
//! topics' `tags` (the by-user lookups are plain indexes, kept by PostgreSQL). Consecutive
//! appends of a batch go out as one multi-row insert (`write_fast.rs`); everything else is a
//! statement or two per op. It does not decide whether a batch may apply.
//!
//! Creations and claims are written so that they cannot overwrite what another writer (another
//! server of a cluster on the same database) stored after the precondition was read: a
//! creation inserts only, a claim takes a free credential or its own, and a row found taken
//! fails the group (nothing is acknowledged; retried, the batch meets its conflict).

use std::collections::HashMap;

use super::keys::{self, to_db};
use super::pool::Conn;
use super::rows::{self, topic_cols, user_cols};
use super::write_fast::{insert_messages, raise_markers};
use crate::store::{
    AuthRecord, DelRecord, MessageRecord, StoreError, SubRecord, TopicRecord, UserRecord,
    UserState, WriteBatch, WriteOp,
};

/// Applies every op of `batch`, in order.
pub(super) fn apply_batch(
    conn: &mut Conn,
    batch: &WriteBatch,
    max_rows: usize,
) -> Result<(), StoreError> {
    let mut appends: Vec<&MessageRecord> = Vec::new();
    for op in batch {
        if let WriteOp::AppendMessage(m) = op {
            appends.push(m);
            continue;
        }
        if !appends.is_empty() {
            insert_messages(conn, &appends, max_rows)?;
            appends.clear();
        }
        apply_op(conn, op)?;
    }
    insert_messages(conn, &appends, max_rows)
}

/// Whether a record write must make a new row or may replace one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Put,
}

/// The error for a row another writer stored between the precondition and the write.
fn raced(what: String) -> StoreError {
    StoreError::Backend(format!(
        "{what} was written meanwhile by another writer; the group is not committed"
    ))
}

/// Checks that a write touched its one row.
fn one_row(n: u64, what: impl FnOnce() -> String) -> Result<(), StoreError> {
    if n == 1 {
        Ok(())
    } else {
        Err(raced(what()))
    }
}

fn apply_op(conn: &mut Conn, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::CreateUser(u) => put_user(conn, u, Mode::Create)?,
        WriteOp::PutUser(u) => put_user(conn, u, Mode::Put)?,
        WriteOp::PatchUser(p) => {
            let row = conn.query_opt(
                concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE id = $1 FOR UPDATE"
                ),
                &[&to_db(p.id.0)],
            )?;
            let old = match row.as_ref().map(rows::user).transpose() {
                Ok(old) => old,
                Err(e) => {
                    log::error!("not patching unreadable user record {}: {e}", p.id);
                    None
                }
            };
            if let Some(mut u) = old.filter(|u| u.state != UserState::Deleted) {
                p.apply(&mut u);
                put_user(conn, &u, Mode::Put)?;
            }
        }
        WriteOp::CreateAuth(a) => put_auth(conn, a, Mode::Create)?,
        WriteOp::PutAuth(a) => put_auth(conn, a, Mode::Put)?,
        WriteOp::DeleteAuth { unique } => {
            conn.execute("DELETE FROM auth WHERE login = $1", &[unique])?;
        }
        WriteOp::CreateTopic(t) => put_topic(conn, t, Mode::Create)?,
        WriteOp::PutTopic(t) => put_topic(conn, t, Mode::Put)?,
        WriteOp::DeleteTopic { name } => {
            conn.execute(
                concat!(
                    "WITH s AS (DELETE FROM subs WHERE topic = $1), ",
                    "m AS (DELETE FROM messages WHERE topic = $1), ",
                    "d AS (DELETE FROM dellog WHERE topic = $1), ",
                    "t AS (DELETE FROM tags WHERE owner = $1) ",
                    "DELETE FROM topics WHERE name = $1"
                ),
                &[name],
            )?;
        }
        WriteOp::PutSub(s) => put_sub(conn, s)?,
        WriteOp::DeleteSub { topic, user } => {
            conn.execute(
                "DELETE FROM subs WHERE topic = $1 AND user_id = $2",
                &[topic, &to_db(user.0)],
            )?;
        }
        WriteOp::Markers {
            topic,
            user,
            read,
            recv,
        } => {
            let one = HashMap::from([((topic.as_str(), *user), (*read, *recv))]);
            raise_markers(conn, &one, 1)?;
        }
        WriteOp::AppendMessage(m) => insert_messages(conn, &[m], 1)?,
        WriteOp::DeleteMessages(d) => delete_messages(conn, d)?,
        WriteOp::ClaimCred { unique, user } => {
            // Free, or already this user's: one row either way.
            let n = conn.execute(
                concat!(
                    "INSERT INTO cred_claims (cred, user_id) VALUES ($1, $2) ",
                    "ON CONFLICT (cred) DO UPDATE SET user_id = EXCLUDED.user_id ",
                    "WHERE cred_claims.user_id = EXCLUDED.user_id"
                ),
                &[unique, &to_db(user.0)],
            )?;
            one_row(n, || format!("the claim on credential {unique}"))?;
        }
        WriteOp::ReleaseCred { unique, user } => {
            conn.execute(
                "DELETE FROM cred_claims WHERE cred = $1 AND user_id = $2",
                &[unique, &to_db(user.0)],
            )?;
        }
    }
    Ok(())
}

/// Moves `owner`'s tag index entries to exactly `tags` (duplicates count once).
fn retag(conn: &mut Conn, owner: &str, tags: &[String]) -> Result<(), StoreError> {
    conn.execute(
        concat!(
            "WITH gone AS (DELETE FROM tags WHERE owner = $1 AND tag <> ALL($2::text[])) ",
            "INSERT INTO tags (tag, owner) SELECT DISTINCT t, $1::text FROM unnest($2::text[]) AS t ",
            "ON CONFLICT DO NOTHING"
        ),
        &[&owner, &tags],
    )?;
    Ok(())
}

/// `INSERT` of a whole user row; the `ON CONFLICT` clause follows.
macro_rules! insert_user {
    () => {
        concat!(
            "INSERT INTO users (",
            user_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
        )
    };
}

fn put_user(conn: &mut Conn, u: &UserRecord, mode: Mode) -> Result<(), StoreError> {
    let (seen, ua) = match &u.last_seen {
        Some((ts, ua)) => (Some(to_db(ts.0)), Some(ua.as_str())),
        None => (None, None),
    };
    let methods: Vec<&str> = u.creds.iter().map(|c| c.method.as_str()).collect();
    let values: Vec<&str> = u.creds.iter().map(|c| c.value.as_str()).collect();
    let done: Vec<bool> = u.creds.iter().map(|c| c.done).collect();
    let sql = match mode {
        Mode::Create => concat!(insert_user!(), "ON CONFLICT (id) DO NOTHING"),
        Mode::Put => concat!(
            insert_user!(),
            "ON CONFLICT (id) DO UPDATE SET created = EXCLUDED.created, ",
            "updated = EXCLUDED.updated, state = EXCLUDED.state, ",
            "access_auth = EXCLUDED.access_auth, access_anon = EXCLUDED.access_anon, ",
            "public = EXCLUDED.public, trusted = EXCLUDED.trusted, tags = EXCLUDED.tags, ",
            "last_seen = EXCLUDED.last_seen, last_seen_ua = EXCLUDED.last_seen_ua, ",
            "cred_methods = EXCLUDED.cred_methods, cred_values = EXCLUDED.cred_values, ",
            "cred_done = EXCLUDED.cred_done"
        ),
    };
    let n = conn.execute(
        sql,
        &[
            &to_db(u.id.0),
            &to_db(u.created.0),
            &to_db(u.updated.0),
            &rows::state_name(u.state),
            &rows::mode(u.access.auth),
            &rows::mode(u.access.anon),
            &u.public,
            &u.trusted,
            &u.tags,
            &seen,
            &ua,
            &methods,
            &values,
            &done,
        ],
    )?;
    one_row(n, || format!("user {}", u.id))?;
    retag(conn, &u.id.usr(), &u.tags)
}

/// `INSERT` of a whole login row; the `ON CONFLICT` clause follows.
macro_rules! insert_auth {
    () => {
        concat!(
            "INSERT INTO auth (login, user_id, scheme, level, secret, expires) ",
            "VALUES ($1, $2, $3, $4, $5, $6) "
        )
    };
}

fn put_auth(conn: &mut Conn, a: &AuthRecord, mode: Mode) -> Result<(), StoreError> {
    let sql = match mode {
        Mode::Create => concat!(insert_auth!(), "ON CONFLICT (login) DO NOTHING"),
        Mode::Put => concat!(
            insert_auth!(),
            "ON CONFLICT (login) DO UPDATE SET user_id = EXCLUDED.user_id, ",
            "scheme = EXCLUDED.scheme, level = EXCLUDED.level, secret = EXCLUDED.secret, ",
            "expires = EXCLUDED.expires"
        ),
    };
    let n = conn.execute(
        sql,
        &[
            &a.unique,
            &to_db(a.user.0),
            &a.scheme,
            &rows::level_name(a.level),
            &a.secret,
            &a.expires.map(|t| to_db(t.0)),
        ],
    )?;
    one_row(n, || format!("login {}", a.unique))
}

/// `INSERT` of a whole topic row; the `ON CONFLICT` clause follows.
macro_rules! insert_topic {
    () => {
        concat!(
            "INSERT INTO topics (",
            topic_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
        )
    };
}

fn put_topic(conn: &mut Conn, t: &TopicRecord, mode: Mode) -> Result<(), StoreError> {
    let sql = match mode {
        Mode::Create => concat!(insert_topic!(), "ON CONFLICT (name) DO NOTHING"),
        Mode::Put => concat!(
            insert_topic!(),
            "ON CONFLICT (name) DO UPDATE SET created = EXCLUDED.created, ",
            "updated = EXCLUDED.updated, owner = EXCLUDED.owner, ",
            "access_auth = EXCLUDED.access_auth, access_anon = EXCLUDED.access_anon, ",
            "public = EXCLUDED.public, trusted = EXCLUDED.trusted, tags = EXCLUDED.tags, ",
            "is_chan = EXCLUDED.is_chan, del_id = EXCLUDED.del_id, aux = EXCLUDED.aux"
        ),
    };
    let n = conn.execute(
        sql,
        &[
            &t.name,
            &to_db(t.created.0),
            &to_db(t.updated.0),
            &t.owner.map(|o| to_db(o.0)),
            &rows::mode(t.access.auth),
            &rows::mode(t.access.anon),
            &t.public,
            &t.trusted,
            &t.tags,
            &t.is_chan,
            &to_db(t.del_id),
            &t.aux,
        ],
    )?;
    one_row(n, || format!("topic {}", t.name))?;
    retag(conn, &t.name, &t.tags)
}

fn put_sub(conn: &mut Conn, s: &SubRecord) -> Result<(), StoreError> {
    conn.execute(
        concat!(
            "INSERT INTO subs (topic, user_id, created, updated, deleted, want, given, ",
            "read_seq, recv_seq, del_id, private) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ",
            "ON CONFLICT (topic, user_id) DO UPDATE SET created = EXCLUDED.created, ",
            "updated = EXCLUDED.updated, deleted = EXCLUDED.deleted, want = EXCLUDED.want, ",
            "given = EXCLUDED.given, read_seq = EXCLUDED.read_seq, ",
            "recv_seq = EXCLUDED.recv_seq, del_id = EXCLUDED.del_id, private = EXCLUDED.private"
        ),
        &[
            &s.topic,
            &to_db(s.user.0),
            &to_db(s.created.0),
            &to_db(s.updated.0),
            &s.deleted.map(|t| to_db(t.0)),
            &rows::mode(s.want),
            &rows::mode(s.given),
            &to_db(s.read),
            &to_db(s.recv),
            &to_db(s.del_id),
            &s.private,
        ],
    )?;
    Ok(())
}

/// Records a delete transaction; a hard one turns every stored message in its ranges into a
/// tombstone (flagged, content emptied, head dropped), with one set-based update per range
/// (two for a range across 2^63). Tombstones already there are left as they are.
fn delete_messages(conn: &mut Conn, d: &DelRecord) -> Result<(), StoreError> {
    let lows: Vec<i64> = d.ranges.iter().map(|r| to_db(r.0)).collect();
    let his: Vec<i64> = d.ranges.iter().map(|r| to_db(r.1)).collect();
    conn.execute(
        concat!(
            "INSERT INTO dellog (topic, del_id, user_id, ts, range_lo, range_hi) ",
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (topic, del_id) DO UPDATE SET ",
            "user_id = EXCLUDED.user_id, ts = EXCLUDED.ts, range_lo = EXCLUDED.range_lo, ",
            "range_hi = EXCLUDED.range_hi"
        ),
        &[
            &d.topic,
            &to_db(d.del_id),
            &d.user.map(|u| to_db(u.0)),
            &to_db(d.ts.0),
            &lows,
            &his,
        ],
    )?;
    if d.user.is_some() {
        return Ok(());
    }
    // One statement per span: with scalar bounds the plan walks the primary key over the span
    // only (a span joined from an array would scan the whole topic).
    for (low, hi) in keys::merged(&d.ranges) {
        for (lo, hi) in keys::spans(low, u128::from(hi)) {
            conn.execute(
                concat!(
                    "UPDATE messages SET deleted = true, content = '', head = NULL ",
                    "WHERE topic = $1 AND seq BETWEEN $2 AND $3 AND NOT deleted"
                ),
                &[&d.topic, &lo, &hi],
            )?;
        }
    }
    Ok(())
}
