//! The preconditions of a general write batch on [`PgStore`](super::PgStore): which keys its
//! creations require to be new and which credentials it claims, checked against the
//! transaction as the earlier batches of the group left it and against the earlier ops of the
//! same batch, in op order, exactly as redb's `precondition.rs` does.
//!
//! It reads the stored side of every key the batch asks about in one statement per kind, then
//! decides in memory. It changes no row; `write.rs` applies the batch only if this finds no
//! conflict. Runs of append/markers batches are checked by `write_fast.rs` instead.

use std::collections::{HashMap, HashSet};

use super::keys::{from_db, to_db};
use super::pool::Conn;
use super::rows;
use super::write_fast::existing_messages;
use crate::ids::UserId;
use crate::store::batch_keys::{BatchKeys, Created};
use crate::store::{StoreError, WriteBatch, WriteOp};

/// What the transaction holds for the keys a batch asks about.
#[derive(Default)]
struct Stored {
    users: HashSet<u64>,
    logins: HashSet<String>,
    topics: HashSet<String>,
    messages: HashSet<(String, u64)>,
    claims: HashMap<String, UserId>,
}

impl Stored {
    /// Reads the stored side of every key `batch` creates or claims: one statement per kind
    /// present.
    fn fetch(conn: &mut Conn, batch: &WriteBatch) -> Result<Stored, StoreError> {
        let (mut users, mut logins, mut topics, mut messages, mut creds) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for op in batch {
            match op {
                WriteOp::CreateUser(u) => users.push(to_db(u.id.0)),
                WriteOp::CreateAuth(a) => logins.push(a.unique.as_str()),
                WriteOp::CreateTopic(t) => topics.push(t.name.as_str()),
                WriteOp::AppendMessage(m) => messages.push((m.topic.as_str(), m.seq)),
                WriteOp::ClaimCred { unique, .. } | WriteOp::ReleaseCred { unique, .. } => {
                    creds.push(unique.as_str())
                }
                _ => {}
            }
        }
        let mut stored = Stored::default();
        if !users.is_empty() {
            for row in conn.query("SELECT id FROM users WHERE id = ANY($1)", &[&users])? {
                stored.users.insert(from_db(rows::get(&row, 0)?));
            }
        }
        if !logins.is_empty() {
            for row in conn.query("SELECT login FROM auth WHERE login = ANY($1)", &[&logins])? {
                stored.logins.insert(rows::get(&row, 0)?);
            }
        }
        if !topics.is_empty() {
            for row in conn.query("SELECT name FROM topics WHERE name = ANY($1)", &[&topics])? {
                stored.topics.insert(rows::get(&row, 0)?);
            }
        }
        if !messages.is_empty() {
            stored.messages = existing_messages(conn, &messages, usize::MAX)?;
        }
        if !creds.is_empty() {
            for row in conn.query(
                "SELECT cred, user_id FROM cred_claims WHERE cred = ANY($1)",
                &[&creds],
            )? {
                let user = UserId(from_db(rows::get(&row, 1)?));
                stored.claims.insert(rows::get(&row, 0)?, user);
            }
        }
        Ok(stored)
    }

    fn exists(&self, key: &Created<'_>) -> bool {
        match *key {
            Created::User(id) => self.users.contains(&id),
            Created::Auth(unique) => self.logins.contains(unique),
            Created::Topic(name) => self.topics.contains(name),
            Created::Message(topic, seq) => self.messages.contains(&(topic.to_owned(), seq)),
        }
    }
}

/// The claims as the batch's ops left them, else as the transaction holds them.
impl<'b> BatchKeys<'b> {
    /// Who holds `unique` once the batch's ops seen so far are applied.
    fn holder(&self, stored: &Stored, unique: &str) -> Option<UserId> {
        match self.claims.get(unique) {
            Some(holder) => *holder,
            None => stored.claims.get(unique).copied(),
        }
    }
}

/// `Some(reason)` when `batch` conflicts with the transaction's rows or with itself.
pub(super) fn conflict(conn: &mut Conn, batch: &WriteBatch) -> Result<Option<String>, StoreError> {
    let stored = Stored::fetch(conn, batch)?;
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
                keys.remove(Created::Auth(unique.as_str()));
                continue;
            }
            WriteOp::DeleteTopic { name } => {
                keys.remove_topic(name.as_str());
                continue;
            }
            WriteOp::ClaimCred { unique, user } => {
                if keys.holder(&stored, unique).is_some_and(|h| h != *user) {
                    return Ok(Some(format!(
                        "credential {unique} is claimed by another user"
                    )));
                }
                keys.claims.insert(unique.as_str(), Some(*user));
                continue;
            }
            WriteOp::ReleaseCred { unique, user } => {
                if keys.holder(&stored, unique) == Some(*user) {
                    keys.claims.insert(unique.as_str(), None);
                }
                continue;
            }
            WriteOp::PutSub(_)
            | WriteOp::PatchUser(_)
            | WriteOp::DeleteSub { .. }
            | WriteOp::Markers { .. }
            | WriteOp::DeleteMessages(_) => continue,
        };
        if must_be_new && keys.exists(&key).unwrap_or_else(|| stored.exists(&key)) {
            return Ok(Some(match key {
                Created::User(id) => format!("user {} exists", UserId(id)),
                Created::Auth(unique) => format!("login {unique} exists"),
                Created::Topic(name) => format!("topic {name} exists"),
                Created::Message(topic, seq) => format!("message {topic}#{seq} exists"),
            }));
        }
        keys.create(key);
    }
    Ok(None)
}
