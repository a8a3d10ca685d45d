//! Composite reads of [`PgStore`](super::PgStore): each [`ReadQuery`] answered on one pooled
//! connection, in one statement where SQL says it naturally (a contact list, several users, a
//! history page) and in two or three otherwise (a history page with the reader's soft
//! deletions, a tag search with its records). The answers equal those of
//! [`read::run`](crate::store::read::run) over the primitive reads; the conformance suite asks
//! both.

use super::keys::{self, to_db};
use super::pool::Conn;
use super::read::{del_log_of, find_tags_in, messages_in};
use super::rows::{self, sub_cols, topic_cols, user_cols};
use super::PgStore;
use crate::access::AccessMode;
use crate::ids::UserId;
use crate::store::read::{ContactRow, Found, ReadAnswer, ReadQuery};
use crate::store::{LastMessage, MessageQuery, MessageRecord, StoreError, TopicRecord, UserRecord};

/// Active members of the topic of the row (`x.name`, `x.is_chan`), channel readers left out:
/// the member count of [`ContactRow`] and [`Found`]. `$2` is [`AccessMode::CHAN_READER`].
macro_rules! members_of_x {
    () => {
        "(SELECT count(*) FROM subs m WHERE m.topic = x.name AND m.deleted IS NULL \
         AND NOT (x.is_chan AND m.given = $2))"
    };
}

impl PgStore {
    /// Answers one composite or single read.
    pub(super) fn answer(&self, q: &ReadQuery) -> Result<ReadAnswer, StoreError> {
        use crate::store::Store;
        Ok(match q {
            ReadQuery::Users(uids) => ReadAnswer::Users(self.with_conn(|c| users_in(c, uids))?),
            ReadQuery::History {
                topic,
                query,
                ranges,
                soft_of,
            } => ReadAnswer::Messages(
                self.with_conn(|c| history(c, topic, query, ranges, *soft_of))?,
            ),
            ReadQuery::Contacts(uid) => {
                ReadAnswer::Contacts(self.with_conn(|c| contacts(c, *uid))?)
            }
            ReadQuery::Search { tags, limit } => {
                ReadAnswer::Found(self.with_conn(|c| search(c, tags, *limit))?)
            }
            ReadQuery::User(uid) => ReadAnswer::User(self.user(*uid)?),
            ReadQuery::Auth(unique) => ReadAnswer::Auth(self.auth(unique)?),
            ReadQuery::AuthsOfUser(uid) => ReadAnswer::Auths(self.auths_of_user(*uid)?),
            ReadQuery::Topic(name) => ReadAnswer::Topic(self.topic(name)?),
            ReadQuery::Sub { topic, user } => ReadAnswer::Sub(self.sub(topic, *user)?),
            ReadQuery::SubsOfTopic(name) => ReadAnswer::Subs(self.subs_of_topic(name)?),
            ReadQuery::SubsOfUser(uid) => ReadAnswer::Subs(self.subs_of_user(*uid)?),
            ReadQuery::LastMessage(name) => ReadAnswer::LastMessage(self.last_message(name)?),
            ReadQuery::DelLog {
                topic,
                since,
                before,
                limit,
            } => ReadAnswer::DelLog(
                self.with_conn(|c| del_log_of(c, topic, *since, *before, *limit))?,
            ),
            ReadQuery::FindTags { tags, limit } => ReadAnswer::Tags(self.find_tags(tags, *limit)?),
            ReadQuery::CredOwner(unique) => ReadAnswer::CredOwner(self.cred_owner(unique)?),
        })
    }
}

/// The stored users among `uids` (missing ones left out), in one statement.
fn users_in(conn: &mut Conn, uids: &[UserId]) -> Result<Vec<UserRecord>, StoreError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = uids.iter().map(|u| to_db(u.0)).collect();
    let rows = conn.query(
        concat!("SELECT ", user_cols!(), " FROM users WHERE id = ANY($1)"),
        &[&ids],
    )?;
    rows.iter().map(rows::user).collect()
}

/// A history page: the query's window, narrowed to `ranges` when there are any, less the
/// query's exclusions and `soft_of`'s soft deletions on this topic, newest first.
fn history(
    conn: &mut Conn,
    topic: &str,
    query: &MessageQuery,
    ranges: &[(u64, u64)],
    soft_of: Option<UserId>,
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut exclude = query.exclude.clone();
    if let Some(uid) = soft_of {
        let rows = conn.query(
            "SELECT range_lo, range_hi FROM dellog WHERE topic = $1 AND user_id = $2",
            &[&topic, &to_db(uid.0)],
        )?;
        for row in &rows {
            let lows: Vec<i64> = rows::get(row, 0)?;
            let his: Vec<i64> = rows::get(row, 1)?;
            exclude.extend(
                lows.into_iter()
                    .zip(his)
                    .map(|(l, h)| (keys::from_db(l), keys::from_db(h))),
            );
        }
    }
    let since = query.since.unwrap_or(0);
    let before = query.before.map_or(keys::END, u128::from);
    let allowed: Vec<(u64, u128)> = if ranges.is_empty() {
        keys::window_without(since, before, &exclude)
    } else {
        keys::merged(ranges)
            .into_iter()
            .flat_map(|(low, hi)| {
                keys::window_without(since.max(low), before.min(u128::from(hi)), &exclude)
            })
            .collect()
    };
    messages_in(conn, topic, &allowed, query.limit)
}

/// A user's contact list in one statement: each subscription to a topic with a record, with
/// the topic, its newest message and its member count, by topic name.
fn contacts(conn: &mut Conn, uid: UserId) -> Result<Vec<ContactRow>, StoreError> {
    let rows = conn.query(
        concat!(
            "SELECT s.*, x.*, ",
            members_of_x!(),
            ", last.seq, last.ts FROM (SELECT ",
            sub_cols!(),
            " FROM subs WHERE user_id = $1) AS s JOIN (SELECT ",
            topic_cols!(),
            " FROM topics) AS x ON x.name = s.topic ",
            "LEFT JOIN LATERAL (SELECT seq, ts FROM (",
            "(SELECT seq, ts, 0 AS part FROM messages WHERE topic = s.topic AND seq < 0 ",
            "ORDER BY seq DESC LIMIT 1) UNION ALL ",
            "(SELECT seq, ts, 1 AS part FROM messages WHERE topic = s.topic AND seq >= 0 ",
            "ORDER BY seq DESC LIMIT 1)) AS newest ORDER BY part LIMIT 1) AS last ON true ",
            "ORDER BY s.topic"
        ),
        &[&to_db(uid.0), &rows::mode(AccessMode::CHAN_READER)],
    )?;
    // Columns: 11 of the subscription, 12 of the topic, the count, the newest seq and ts.
    rows.iter()
        .map(|r| {
            let last = match (
                rows::get::<Option<i64>>(r, 24)?,
                rows::get::<Option<i64>>(r, 25)?,
            ) {
                (Some(seq), Some(ts)) => Some(LastMessage {
                    seq: keys::from_db(seq),
                    ts: crate::ids::UnixMillis(keys::from_db(ts)),
                }),
                _ => None,
            };
            Ok(ContactRow {
                sub: rows::sub_at(r, 0)?,
                topic: rows::topic_at(r, 11)?,
                last,
                members: count(rows::get(r, 23)?),
            })
        })
        .collect()
}

/// A `count(*)` as a usize (never negative).
fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// A tag search with the owners' records: the ranked owners, then their users and topics (with
/// member counts) in one statement each. Owners whose record is gone are left out.
fn search(conn: &mut Conn, tags: &[String], limit: usize) -> Result<Vec<Found>, StoreError> {
    let owners = find_tags_in(conn, tags, limit)?;
    let mut uids = Vec::new();
    let mut names = Vec::new();
    for (owner, _) in &owners {
        match owner.strip_prefix("usr").and_then(UserId::decode_body) {
            Some(uid) => uids.push(uid),
            None => names.push(owner.as_str()),
        }
    }
    let users = users_in(conn, &uids)?;
    let topics = if names.is_empty() {
        Vec::new()
    } else {
        let rows = conn.query(
            concat!(
                "SELECT x.*, ",
                members_of_x!(),
                " FROM (SELECT ",
                topic_cols!(),
                " FROM topics WHERE name = ANY($1)) AS x"
            ),
            &[&names, &rows::mode(AccessMode::CHAN_READER)],
        )?;
        rows.iter()
            .map(|r| Ok((rows::topic_at(r, 0)?, count(rows::get(r, 12)?))))
            .collect::<Result<Vec<(TopicRecord, usize)>, StoreError>>()?
    };
    let mut out = Vec::with_capacity(owners.len());
    for (owner, tags) in owners {
        let mut found = Found {
            user: None,
            topic: None,
            members: 0,
            tags,
            owner,
        };
        match found
            .owner
            .strip_prefix("usr")
            .and_then(UserId::decode_body)
        {
            Some(uid) => found.user = users.iter().find(|u| u.id == uid).cloned(),
            None => {
                if let Some((t, members)) = topics.iter().find(|(t, _)| t.name == found.owner) {
                    found.topic = Some(t.clone());
                    found.members = *members;
                }
            }
        }
        if found.user.is_some() || found.topic.is_some() {
            out.push(found);
        }
    }
    Ok(out)
}
