//! The [`Store`] impl of [`PgStore`]: every primitive read as one statement on a pooled
//! connection, and the hand-off of `apply` to the write path and of `read` to `query.rs`.
//!
//! It owns how each read is asked in SQL: u64 order kept over bit-cast columns (spans from
//! `keys.rs`), tombstones and excluded ranges skipped by the index walk rather than after it,
//! and tags ranked in the statement. It never writes.

use std::collections::HashSet;

use super::keys::{self, from_db, to_db};
use super::pool::Conn;
use super::rows::{self, auth_cols, del_cols, message_cols, sub_cols, topic_cols, user_cols};
use super::PgStore;
use crate::ids::UserId;
use crate::store::{
    AuthRecord, DelRecord, LastMessage, MessageQuery, MessageRecord, ReadAnswer, ReadQuery, Store,
    StoreError, SubRecord, TopicRecord, UserRecord, WriteBatch,
};

/// A page of one topic's history over spans given newest first: each span walked down the
/// primary key, skipping tombstones, then the spans in order, up to the limit.
pub(super) const MESSAGES_IN_SPANS: &str = concat!(
    "SELECT m.seq, m.ts, m.from_user, m.head, m.content, m.deleted ",
    "FROM unnest($2::int8[], $3::int8[]) WITH ORDINALITY AS s(lo, hi, ord) ",
    "CROSS JOIN LATERAL (SELECT ",
    message_cols!(),
    " FROM messages WHERE topic = $1 AND seq BETWEEN s.lo AND s.hi AND NOT deleted ",
    "ORDER BY seq DESC LIMIT $4) AS m ",
    "ORDER BY s.ord, m.seq DESC LIMIT $4"
);

impl PgStore {
    /// Runs `f` on a pooled connection. A failure on a connection that died while idle in the
    /// pool (PostgreSQL restarted) says nothing about the read: it is retried once on a new
    /// connection.
    pub(super) fn with_conn<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = self.pool.get()?;
        match f(&mut lease) {
            Err(e) if lease.died_idle() => {
                log::warn!("PostgreSQL connection found closed ({e}); reconnecting");
                drop(lease);
                let mut fresh = self.pool.get()?;
                f(&mut fresh)
            }
            result => result,
        }
    }
}

/// Messages of `topic` in the ascending u64 `ranges`, newest first, tombstones skipped, at most
/// `limit`.
pub(super) fn messages_in(
    conn: &mut Conn,
    topic: &str,
    ranges: &[(u64, u128)],
    limit: usize,
) -> Result<Vec<MessageRecord>, StoreError> {
    let (lo, hi) = keys::spans_desc(ranges);
    if lo.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let rows = conn.query(MESSAGES_IN_SPANS, &[&topic, &lo, &hi, &keys::limit(limit)])?;
    rows.iter().map(|r| rows::message(topic, r)).collect()
}

/// The delete records of `topic` in `[since, before)`, ascending, at most `limit`.
pub(super) fn del_log_of(
    conn: &mut Conn,
    topic: &str,
    since: u64,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<DelRecord>, StoreError> {
    let (lo, hi) = keys::spans_asc(&[(since, before.map_or(keys::END, u128::from))]);
    if lo.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let rows = conn.query(
        concat!(
            "SELECT d.* FROM (SELECT ",
            del_cols!(),
            " FROM dellog WHERE topic = $1) AS d ",
            "JOIN unnest($2::int8[], $3::int8[]) WITH ORDINALITY AS s(lo, hi, ord) ",
            "ON d.del_id BETWEEN s.lo AND s.hi ORDER BY s.ord, d.del_id LIMIT $4"
        ),
        &[&topic, &lo, &hi, &keys::limit(limit)],
    )?;
    rows.iter().map(rows::del).collect()
}

/// The newest message of `topic` in u64 order, tombstones included.
pub(super) fn last_message_of(
    conn: &mut Conn,
    topic: &str,
) -> Result<Option<LastMessage>, StoreError> {
    let row = conn.query_opt(
        concat!(
            "SELECT seq, ts FROM (",
            "(SELECT seq, ts, 0 AS part FROM messages WHERE topic = $1 AND seq < 0 ",
            "ORDER BY seq DESC LIMIT 1) UNION ALL ",
            "(SELECT seq, ts, 1 AS part FROM messages WHERE topic = $1 AND seq >= 0 ",
            "ORDER BY seq DESC LIMIT 1)) AS newest ORDER BY part LIMIT 1"
        ),
        &[&topic],
    )?;
    row.map(|r| {
        Ok(LastMessage {
            seq: from_db(rows::get(&r, 0)?),
            ts: crate::ids::UnixMillis(from_db(rows::get(&r, 1)?)),
        })
    })
    .transpose()
}

impl Store for PgStore {
    fn user(&self, uid: UserId) -> Result<Option<UserRecord>, StoreError> {
        self.with_conn(|c| {
            let row = c.query_opt(
                concat!("SELECT ", user_cols!(), " FROM users WHERE id = $1"),
                &[&to_db(uid.0)],
            )?;
            row.as_ref().map(rows::user).transpose()
        })
    }

    fn auth(&self, unique: &str) -> Result<Option<AuthRecord>, StoreError> {
        self.with_conn(|c| {
            let row = c.query_opt(
                concat!("SELECT ", auth_cols!(), " FROM auth WHERE login = $1"),
                &[&unique],
            )?;
            row.as_ref().map(rows::auth).transpose()
        })
    }

    fn auths_of_user(&self, uid: UserId) -> Result<Vec<AuthRecord>, StoreError> {
        self.with_conn(|c| {
            let rows = c.query(
                concat!(
                    "SELECT ",
                    auth_cols!(),
                    " FROM auth WHERE user_id = $1 ORDER BY login"
                ),
                &[&to_db(uid.0)],
            )?;
            rows.iter().map(rows::auth).collect()
        })
    }

    fn topic(&self, name: &str) -> Result<Option<TopicRecord>, StoreError> {
        self.with_conn(|c| {
            let row = c.query_opt(
                concat!("SELECT ", topic_cols!(), " FROM topics WHERE name = $1"),
                &[&name],
            )?;
            row.as_ref().map(rows::topic).transpose()
        })
    }

    fn sub(&self, topic: &str, uid: UserId) -> Result<Option<SubRecord>, StoreError> {
        self.with_conn(|c| {
            let row = c.query_opt(
                concat!(
                    "SELECT ",
                    sub_cols!(),
                    " FROM subs WHERE topic = $1 AND user_id = $2"
                ),
                &[&topic, &to_db(uid.0)],
            )?;
            row.as_ref().map(rows::sub).transpose()
        })
    }

    fn subs_of_topic(&self, topic: &str) -> Result<Vec<SubRecord>, StoreError> {
        self.with_conn(|c| {
            let rows = c.query(
                concat!(
                    "SELECT ",
                    sub_cols!(),
                    " FROM subs WHERE topic = $1 ORDER BY user_id < 0, user_id"
                ),
                &[&topic],
            )?;
            rows.iter().map(rows::sub).collect()
        })
    }

    fn subs_of_user(&self, uid: UserId) -> Result<Vec<SubRecord>, StoreError> {
        self.with_conn(|c| {
            let rows = c.query(
                concat!(
                    "SELECT ",
                    sub_cols!(),
                    " FROM subs WHERE user_id = $1 ORDER BY topic"
                ),
                &[&to_db(uid.0)],
            )?;
            rows.iter().map(rows::sub).collect()
        })
    }

    fn messages(&self, topic: &str, q: MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        let before = q.before.map_or(keys::END, u128::from);
        let ranges = keys::window_without(q.since.unwrap_or(0), before, &q.exclude);
        if ranges.is_empty() || q.limit == 0 {
            return Ok(Vec::new());
        }
        self.with_conn(|c| messages_in(c, topic, &ranges, q.limit))
    }

    fn last_message(&self, topic: &str) -> Result<Option<LastMessage>, StoreError> {
        self.with_conn(|c| last_message_of(c, topic))
    }

    fn del_log(
        &self,
        topic: &str,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DelRecord>, StoreError> {
        self.with_conn(|c| del_log_of(c, topic, since, before, limit))
    }

    fn find_tags(
        &self,
        tags: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.with_conn(|c| find_tags_in(c, tags, limit))
    }

    fn cred_owner(&self, unique: &str) -> Result<Option<UserId>, StoreError> {
        self.with_conn(|c| {
            let row = c.query_opt(
                "SELECT user_id FROM cred_claims WHERE cred = $1",
                &[&unique],
            )?;
            row.map(|r| rows::get::<i64>(&r, 0).map(|v| UserId(from_db(v))))
                .transpose()
        })
    }

    fn read(&self, q: &ReadQuery) -> Result<ReadAnswer, StoreError> {
        self.answer(q)
    }

    fn apply(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        self.apply_group(batches)
    }
}

/// Owners carrying any of `tags` with the ones each carries (in the order asked), most
/// matches first, then by owner name (byte order), at most `limit`.
pub(super) fn find_tags_in(
    conn: &mut Conn,
    tags: &[String],
    limit: usize,
) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let mut seen = HashSet::new();
    let asked: Vec<&str> = tags
        .iter()
        .map(String::as_str)
        .filter(|t| seen.insert(*t))
        .collect();
    if asked.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let rows = conn.query(
        concat!(
            "SELECT t.owner, array_agg(t.tag ORDER BY a.ord) FROM ",
            "unnest($1::text[]) WITH ORDINALITY AS a(tag, ord) ",
            "JOIN tags t ON t.tag = a.tag GROUP BY t.owner ",
            "ORDER BY count(*) DESC, t.owner LIMIT $2"
        ),
        &[&asked, &keys::limit(limit)],
    )?;
    rows.iter()
        .map(|r| Ok((rows::get(r, 0)?, rows::get(r, 1)?)))
        .collect()
}
