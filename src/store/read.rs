//! Reads as requests: the closed [`ReadQuery`] vocabulary the state machines ask the store,
//! the [`ReadAnswer`]s that come back, and [`run`], which answers a query from the primitive
//! [`Store`] methods.
//!
//! A read is a value, not a call: the runtime decides where it runs. The embedded store answers
//! within the same step; a network database (PostgreSQL) answers later, as an event, without an
//! executor ever waiting on the network. Composite queries (a history page with the caller's
//! soft deletions excluded, a contact list) exist so that one protocol request costs one read
//! request, whatever the store does inside. This module knows nothing of the wire protocol.

use super::{
    AuthRecord, DelRecord, LastMessage, MessageQuery, MessageRecord, Store, StoreError, SubRecord,
    TopicRecord, UserRecord,
};
use crate::access::AccessMode;
use crate::ids::UserId;

/// One read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadQuery {
    /// A user record.
    User(UserId),
    /// Several user records (missing ones are left out of the answer).
    Users(Vec<UserId>),
    /// An auth record by its unique key (`basic:alice`).
    Auth(String),
    /// Every auth record of a user.
    AuthsOfUser(UserId),
    /// A topic record.
    Topic(String),
    /// One subscription.
    Sub { topic: String, user: UserId },
    /// Every subscription of a topic, deleted ones included.
    SubsOfTopic(String),
    /// Every subscription of a user, deleted ones included.
    SubsOfUser(UserId),
    /// The newest message of a topic (tombstones included).
    LastMessage(String),
    /// A page of history, newest first: `query` bounds it; a non-empty `ranges` (`[low, hi)`)
    /// keeps only seqs inside them; `soft_of` excludes the ranges that user soft-deleted (read
    /// from the topic's delete log by the store, so the caller needs no second read).
    History {
        topic: String,
        query: MessageQuery,
        ranges: Vec<(u64, u64)>,
        soft_of: Option<UserId>,
    },
    /// Delete transactions `since <= del_id < before`, ascending, at most `limit`.
    DelLog {
        topic: String,
        since: u64,
        before: Option<u64>,
        limit: usize,
    },
    /// Owners of any of `tags` with the tags each carries, at most `limit`.
    FindTags { tags: Vec<String>, limit: usize },
    /// The user holding the claim on a credential (`method:value`).
    CredOwner(String),
    /// A user's contact list in one read: every subscription of the user to a stored topic,
    /// with the topic's record, its newest message and its member count.
    Contacts(UserId),
}

/// One row of a contact list ([`ReadQuery::Contacts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ContactRow {
    pub sub: SubRecord,
    pub topic: TopicRecord,
    pub last: Option<LastMessage>,
    /// Active subscribers that are not channel readers.
    pub members: usize,
}

/// The answer to one [`ReadQuery`], variant for variant.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadAnswer {
    User(Option<UserRecord>),
    Users(Vec<UserRecord>),
    Auth(Option<AuthRecord>),
    Auths(Vec<AuthRecord>),
    Topic(Option<TopicRecord>),
    Sub(Option<SubRecord>),
    Subs(Vec<SubRecord>),
    LastMessage(Option<LastMessage>),
    Messages(Vec<MessageRecord>),
    DelLog(Vec<DelRecord>),
    Tags(Vec<(String, Vec<String>)>),
    CredOwner(Option<UserId>),
    Contacts(Vec<ContactRow>),
}

/// Answers `q` from the primitive reads of `store`. A store with a better plan (one SQL join)
/// overrides [`Store::read`] instead.
pub fn run(store: &dyn Store, q: &ReadQuery) -> Result<ReadAnswer, StoreError> {
    Ok(match q {
        ReadQuery::User(uid) => ReadAnswer::User(store.user(*uid)?),
        ReadQuery::Users(uids) => {
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                if let Some(u) = store.user(*uid)? {
                    out.push(u);
                }
            }
            ReadAnswer::Users(out)
        }
        ReadQuery::Auth(unique) => ReadAnswer::Auth(store.auth(unique)?),
        ReadQuery::AuthsOfUser(uid) => ReadAnswer::Auths(store.auths_of_user(*uid)?),
        ReadQuery::Topic(name) => ReadAnswer::Topic(store.topic(name)?),
        ReadQuery::Sub { topic, user } => ReadAnswer::Sub(store.sub(topic, *user)?),
        ReadQuery::SubsOfTopic(name) => ReadAnswer::Subs(store.subs_of_topic(name)?),
        ReadQuery::SubsOfUser(uid) => ReadAnswer::Subs(store.subs_of_user(*uid)?),
        ReadQuery::LastMessage(name) => ReadAnswer::LastMessage(store.last_message(name)?),
        ReadQuery::History {
            topic,
            query,
            ranges,
            soft_of,
        } => ReadAnswer::Messages(history(store, topic, query, ranges, *soft_of)?),
        ReadQuery::DelLog {
            topic,
            since,
            before,
            limit,
        } => ReadAnswer::DelLog(store.del_log(topic, *since, *before, *limit)?),
        ReadQuery::FindTags { tags, limit } => ReadAnswer::Tags(store.find_tags(tags, *limit)?),
        ReadQuery::CredOwner(unique) => ReadAnswer::CredOwner(store.cred_owner(unique)?),
        ReadQuery::Contacts(uid) => ReadAnswer::Contacts(contacts(store, *uid)?),
    })
}

fn history(
    store: &dyn Store,
    topic: &str,
    query: &MessageQuery,
    ranges: &[(u64, u64)],
    soft_of: Option<UserId>,
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut q = query.clone();
    if let Some(uid) = soft_of {
        for d in store.del_log(topic, 0, None, usize::MAX)? {
            if d.user == Some(uid) {
                q.exclude.extend(d.ranges);
            }
        }
    }
    if ranges.is_empty() {
        return store.messages(topic, q);
    }
    let mut out = Vec::new();
    for &(low, hi) in ranges {
        let since = q.since.map_or(low, |s| s.max(low));
        let before = q.before.map_or(hi, |b| b.min(hi));
        if since >= before {
            continue;
        }
        let part = MessageQuery {
            since: Some(since),
            before: Some(before),
            limit: q.limit,
            exclude: q.exclude.clone(),
        };
        out.extend(store.messages(topic, part)?);
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.seq));
    out.dedup_by_key(|m| m.seq);
    out.truncate(q.limit);
    Ok(out)
}

fn contacts(store: &dyn Store, uid: UserId) -> Result<Vec<ContactRow>, StoreError> {
    let mut out = Vec::new();
    for sub in store.subs_of_user(uid)? {
        let Some(topic) = store.topic(&sub.topic)? else {
            continue;
        };
        let subs = store.subs_of_topic(&sub.topic)?;
        let members = subs
            .iter()
            .filter(|s| s.deleted.is_none())
            .filter(|s| !(topic.is_chan && s.given == AccessMode::CHAN_READER))
            .count();
        let last = store.last_message(&sub.topic)?;
        out.push(ContactRow {
            sub,
            topic,
            last,
            members,
        });
    }
    Ok(out)
}
