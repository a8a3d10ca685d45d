//! Grouped appends: a run of consecutive batches that only append messages and raise markers
//! (the common group: every `{pub}` of a busy server), applied with a few multi-row statements
//! instead of one per op.
//!
//! For a run it sends: one `SELECT` finding which of the run's (topic, seq) keys are stored,
//! then (after deciding in memory, in batch order, which batches conflict — with the stored
//! rows, an earlier batch of the run, or themselves) one `INSERT … SELECT FROM unnest(…)` of
//! every accepted message and one `UPDATE … FROM unnest(…)` of every accepted marker, each
//! split every [`PgOptions::max_rows_per_statement`](super::PgOptions) rows. A conflicting
//! batch is skipped whole: none of its messages or markers is written.

use std::collections::{HashMap, HashSet};

use super::keys::{from_db, to_db};
use super::pool::Conn;
use super::rows;
use crate::ids::UserId;
use crate::store::{MessageRecord, StoreError, WriteBatch, WriteOp};

/// Inserts many messages; a key already stored is left alone (and counted as not inserted).
const INSERT_MESSAGES: &str = concat!(
    "INSERT INTO messages (topic, seq, ts, from_user, head, content, deleted) ",
    "SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[], ",
    "$6::text[], $7::bool[]) ON CONFLICT DO NOTHING"
);

/// Raises the markers of many subscriptions (one row each): read and recv never go down, and
/// recv stays at least read. Missing subscriptions are left missing; unchanged ones unwritten.
const RAISE_MARKERS: &str = concat!(
    "UPDATE subs s SET read_seq = coretalk_u64_max(s.read_seq, m.rd), ",
    "recv_seq = coretalk_u64_max(coretalk_u64_max(s.recv_seq, m.rv), ",
    "coretalk_u64_max(s.read_seq, m.rd)) ",
    "FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[]) AS m(topic, user_id, rd, rv) ",
    "WHERE s.topic = m.topic AND s.user_id = m.user_id ",
    "AND (coretalk_u64_max(s.read_seq, m.rd) <> s.read_seq OR coretalk_u64_max(",
    "coretalk_u64_max(s.recv_seq, m.rv), coretalk_u64_max(s.read_seq, m.rd)) <> s.recv_seq)"
);

/// Markers to raise: (topic, user) → the highest (read, recv) asked, one entry per
/// subscription.
pub(super) type Raises<'a> = HashMap<(&'a str, UserId), (u64, u64)>;

/// Which of `keys` are stored, asked `max_rows` keys per statement.
pub(super) fn existing_messages(
    conn: &mut Conn,
    keys: &[(&str, u64)],
    max_rows: usize,
) -> Result<HashSet<(String, u64)>, StoreError> {
    let mut found = HashSet::new();
    for chunk in keys.chunks(max_rows.max(1)) {
        let topics: Vec<&str> = chunk.iter().map(|k| k.0).collect();
        let seqs: Vec<i64> = chunk.iter().map(|k| to_db(k.1)).collect();
        let rows = conn.query(
            concat!(
                "SELECT m.topic, m.seq FROM messages m ",
                "JOIN unnest($1::text[], $2::int8[]) AS k(topic, seq) ",
                "ON m.topic = k.topic AND m.seq = k.seq"
            ),
            &[&topics, &seqs],
        )?;
        for row in &rows {
            found.insert((rows::get(row, 0)?, from_db(rows::get(row, 1)?)));
        }
    }
    Ok(found)
}

/// Inserts `messages` (all new: their batches passed), `max_rows` per statement. Fewer rows
/// inserted than given means another writer stored some of these keys since they were
/// checked: the group fails rather than acknowledge a message it did not store.
pub(super) fn insert_messages(
    conn: &mut Conn,
    messages: &[&MessageRecord],
    max_rows: usize,
) -> Result<(), StoreError> {
    for chunk in messages.chunks(max_rows.max(1)) {
        let topic: Vec<&str> = chunk.iter().map(|m| m.topic.as_str()).collect();
        let seq: Vec<i64> = chunk.iter().map(|m| to_db(m.seq)).collect();
        let ts: Vec<i64> = chunk.iter().map(|m| to_db(m.ts.0)).collect();
        let from: Vec<i64> = chunk.iter().map(|m| to_db(m.from.0)).collect();
        let head: Vec<Option<&str>> = chunk.iter().map(|m| m.head.as_deref()).collect();
        let content: Vec<&str> = chunk.iter().map(|m| m.content.as_str()).collect();
        let deleted: Vec<bool> = chunk.iter().map(|m| m.deleted).collect();
        let n = conn.execute(
            INSERT_MESSAGES,
            &[&topic, &seq, &ts, &from, &head, &content, &deleted],
        )?;
        if n != chunk.len() as u64 {
            return Err(StoreError::Backend(format!(
                "{} of {} messages were stored meanwhile by another writer; the group is not \
                 committed",
                chunk.len() as u64 - n,
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// Raises the markers in `raise` ((topic, user) → (read, recv), one entry per subscription),
/// `max_rows` per statement.
pub(super) fn raise_markers(
    conn: &mut Conn,
    raise: &Raises<'_>,
    max_rows: usize,
) -> Result<(), StoreError> {
    let all: Vec<_> = raise.iter().collect();
    for chunk in all.chunks(max_rows.max(1)) {
        let topic: Vec<&str> = chunk.iter().map(|(k, _)| k.0).collect();
        let user: Vec<i64> = chunk.iter().map(|(k, _)| to_db(k.1 .0)).collect();
        let read: Vec<i64> = chunk.iter().map(|(_, v)| to_db(v.0)).collect();
        let recv: Vec<i64> = chunk.iter().map(|(_, v)| to_db(v.1)).collect();
        conn.execute(RAISE_MARKERS, &[&topic, &user, &read, &recv])?;
    }
    Ok(())
}

/// Applies a run of append/markers batches (those whose outcome is still open), deciding each
/// batch's outcome.
pub(super) fn apply_run(
    conn: &mut Conn,
    batches: &[WriteBatch],
    outcomes: &mut [Option<Result<(), StoreError>>],
    max_rows: usize,
) -> Result<(), StoreError> {
    let mut keys: Vec<(&str, u64)> = Vec::new();
    let mut seen = HashSet::new();
    for (i, batch) in batches.iter().enumerate() {
        if outcomes[i].is_some() {
            continue;
        }
        for op in batch {
            if let WriteOp::AppendMessage(m) = op {
                if seen.insert((m.topic.as_str(), m.seq)) {
                    keys.push((m.topic.as_str(), m.seq));
                }
            }
        }
    }
    let found = if keys.is_empty() {
        HashSet::new()
    } else {
        existing_messages(conn, &keys, max_rows)?
    };
    // The stored keys, borrowed from the batches like the others.
    let stored: HashSet<(&str, u64)> = found
        .iter()
        .filter_map(|(topic, seq)| seen.get(&(topic.as_str(), *seq)).copied())
        .collect();

    // In batch order: a batch conflicts with the stored rows, the batches accepted before it,
    // or itself; only accepted batches take their keys.
    let mut taken: HashSet<(&str, u64)> = HashSet::new();
    let mut messages: Vec<&MessageRecord> = Vec::new();
    let mut raise: Raises<'_> = HashMap::new();
    for (i, batch) in batches.iter().enumerate() {
        if outcomes[i].is_some() {
            continue;
        }
        let mut mine: HashSet<(&str, u64)> = HashSet::new();
        let clash = batch.iter().find_map(|op| match op {
            WriteOp::AppendMessage(m) => {
                let key = (m.topic.as_str(), m.seq);
                let exists = taken.contains(&key) || !mine.insert(key) || stored.contains(&key);
                exists.then(|| format!("message {}#{} exists", m.topic, m.seq))
            }
            _ => None,
        });
        if let Some(reason) = clash {
            outcomes[i] = Some(Err(StoreError::Conflict(reason)));
            continue;
        }
        taken.extend(mine);
        for op in batch {
            match op {
                WriteOp::AppendMessage(m) => messages.push(m),
                WriteOp::Markers {
                    topic,
                    user,
                    read,
                    recv,
                } => {
                    let e = raise.entry((topic.as_str(), *user)).or_insert((0, 0));
                    *e = (e.0.max(*read), e.1.max(*recv));
                }
                _ => {}
            }
        }
        outcomes[i] = Some(Ok(()));
    }
    insert_messages(conn, &messages, max_rows)?;
    raise_markers(conn, &raise, max_rows)
}
