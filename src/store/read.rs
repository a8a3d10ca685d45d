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
    /// A tag search in one read: the owners of any of `tags` (at most `limit`), each with the
    /// tags it carries and its record (a user's, or a topic's with its member count).
    Search { tags: Vec<String>, limit: usize },
}

/// Which writes acknowledged before being applied (journaled appends and read markers,
/// always written by the topic's home shard) a read can see.
#[derive(Debug, PartialEq, Eq)]
pub enum WritesBehind<'a> {
    /// None: users, auth records, credentials and tags are never written behind.
    Never,
    /// Those on this topic.
    Topic(&'a str),
    /// Those on any topic (reads across a user's topics).
    Any,
}

impl ReadQuery {
    /// See [`WritesBehind`].
    pub fn writes_behind(&self) -> WritesBehind<'_> {
        use ReadQuery::*;
        match self {
            User(_) | Users(_) | Auth(_) | AuthsOfUser(_) | CredOwner(_) | FindTags { .. } => {
                WritesBehind::Never
            }
            Topic(t) | SubsOfTopic(t) | LastMessage(t) => WritesBehind::Topic(t),
            Sub { topic, .. } | History { topic, .. } | DelLog { topic, .. } => {
                WritesBehind::Topic(topic)
            }
            SubsOfUser(_) | Contacts(_) | Search { .. } => WritesBehind::Any,
        }
    }
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

/// One owner found by [`ReadQuery::Search`]: `usr…` with its user record, or a topic name
/// with its topic record and active, non-reader member count. Owners whose record is gone are
/// left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub owner: String,
    pub tags: Vec<String>,
    pub user: Option<UserRecord>,
    pub topic: Option<TopicRecord>,
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
    Found(Vec<Found>),
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
        ReadQuery::Search { tags, limit } => ReadAnswer::Found(search(store, tags, *limit)?),
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

/// Active subscribers of a topic that are not channel readers.
fn member_count(topic: &TopicRecord, subs: &[SubRecord]) -> usize {
    subs.iter()
        .filter(|s| s.deleted.is_none())
        .filter(|s| !(topic.is_chan && s.given == AccessMode::CHAN_READER))
        .count()
}

fn search(store: &dyn Store, tags: &[String], limit: usize) -> Result<Vec<Found>, StoreError> {
    let mut out = Vec::new();
    for (owner, tags) in store.find_tags(tags, limit)? {
        let mut found = Found {
            owner,
            tags,
            user: None,
            topic: None,
            members: 0,
        };
        match found
            .owner
            .strip_prefix("usr")
            .and_then(UserId::decode_body)
        {
            Some(uid) => found.user = store.user(uid)?,
            None => {
                found.topic = store.topic(&found.owner)?;
                if let Some(t) = &found.topic {
                    found.members = member_count(t, &store.subs_of_topic(&found.owner)?);
                }
            }
        }
        if found.user.is_some() || found.topic.is_some() {
            out.push(found);
        }
    }
    Ok(out)
}

fn contacts(store: &dyn Store, uid: UserId) -> Result<Vec<ContactRow>, StoreError> {
    let mut out = Vec::new();
    for sub in store.subs_of_user(uid)? {
        let Some(topic) = store.topic(&sub.topic)? else {
            continue;
        };
        let members = member_count(&topic, &store.subs_of_topic(&sub.topic)?);
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

/// The answers a state machine was given for one step: each query with its result. Accessors
/// mirror the [`Store`] reads, so protocol code reads prefetched data the way it would read a
/// store; a query that was not asked for is an error ([`StoreError::Backend`] naming it), never
/// a silent empty result.
#[derive(Clone, Debug, Default)]
pub struct Answers(Vec<(ReadQuery, Result<ReadAnswer, StoreError>)>);

/// The error for data a step did not ask for (a bug in the step's list of reads).
fn not_fetched(q: &ReadQuery) -> StoreError {
    StoreError::Backend(format!("read not fetched: {q:?}"))
}

impl Answers {
    /// Adds answers (a later answer to the same query replaces nothing: the first one wins).
    pub fn extend(
        &mut self,
        more: impl IntoIterator<Item = (ReadQuery, Result<ReadAnswer, StoreError>)>,
    ) {
        self.0.extend(more);
    }

    /// True when `q` was answered (successfully or not).
    pub fn has(&self, q: &ReadQuery) -> bool {
        self.0.iter().any(|(k, _)| k == q)
    }

    /// True when nothing was fetched.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn get(&self, q: &ReadQuery) -> Result<&ReadAnswer, StoreError> {
        match self.0.iter().find(|(k, _)| k == q) {
            Some((_, Ok(a))) => Ok(a),
            Some((_, Err(e))) => Err(e.clone()),
            None => Err(not_fetched(q)),
        }
    }

    /// A user, from a [`ReadQuery::User`] or any [`ReadQuery::Users`] that listed it.
    pub fn user(&self, uid: UserId) -> Result<Option<UserRecord>, StoreError> {
        if let Ok(ReadAnswer::User(u)) = self.get(&ReadQuery::User(uid)) {
            return Ok(u.clone());
        }
        for (q, a) in &self.0 {
            if let ReadQuery::Users(ids) = q {
                if ids.contains(&uid) {
                    return match a {
                        Ok(ReadAnswer::Users(us)) => Ok(us.iter().find(|u| u.id == uid).cloned()),
                        Ok(_) => Err(not_fetched(q)),
                        Err(e) => Err(e.clone()),
                    };
                }
            }
        }
        self.get(&ReadQuery::User(uid)).map(|_| None)
    }

    /// A topic record.
    pub fn topic(&self, name: &str) -> Result<Option<TopicRecord>, StoreError> {
        let q = ReadQuery::Topic(name.to_owned());
        match self.get(&q)? {
            ReadAnswer::Topic(t) => Ok(t.clone()),
            _ => Err(not_fetched(&q)),
        }
    }

    /// One subscription.
    pub fn sub(&self, topic: &str, user: UserId) -> Result<Option<SubRecord>, StoreError> {
        let q = ReadQuery::Sub {
            topic: topic.to_owned(),
            user,
        };
        match self.get(&q)? {
            ReadAnswer::Sub(s) => Ok(s.clone()),
            _ => Err(not_fetched(&q)),
        }
    }

    /// Every subscription of a topic.
    pub fn subs_of_topic(&self, topic: &str) -> Result<Vec<SubRecord>, StoreError> {
        let q = ReadQuery::SubsOfTopic(topic.to_owned());
        match self.get(&q)? {
            ReadAnswer::Subs(s) => Ok(s.clone()),
            _ => Err(not_fetched(&q)),
        }
    }

    /// Every subscription of a user.
    pub fn subs_of_user(&self, uid: UserId) -> Result<Vec<SubRecord>, StoreError> {
        let q = ReadQuery::SubsOfUser(uid);
        match self.get(&q)? {
            ReadAnswer::Subs(s) => Ok(s.clone()),
            _ => Err(not_fetched(&q)),
        }
    }

    /// The newest message of a topic.
    pub fn last_message(&self, topic: &str) -> Result<Option<LastMessage>, StoreError> {
        let q = ReadQuery::LastMessage(topic.to_owned());
        match self.get(&q)? {
            ReadAnswer::LastMessage(l) => Ok(*l),
            _ => Err(not_fetched(&q)),
        }
    }

    /// The answer to exactly `q`.
    pub fn answer(&self, q: &ReadQuery) -> Result<&ReadAnswer, StoreError> {
        self.get(q)
    }

    /// Every fetched query matching `pred` with its result, in the order asked (protocol
    /// code that fetched a page or a search picks its answer by kind, not by rebuilding the
    /// query).
    pub fn matching<'a>(
        &'a self,
        pred: impl Fn(&ReadQuery) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a ReadQuery, Result<&'a ReadAnswer, StoreError>)> + 'a {
        self.0
            .iter()
            .filter(move |(q, _)| pred(q))
            .map(|(q, r)| (q, r.as_ref().map_err(Clone::clone)))
    }
}
