//! What the ops of one write batch, seen so far, did to the keys its creations require to be
//! new, and to the credential claims: shared by every store's precondition check, so that a
//! batch may delete and then recreate a key, or release and then claim a credential, with the
//! same meaning on each backend.
//!
//! It answers only from the batch itself ([`BatchKeys::exists`] is `None` when the batch has
//! not touched a key); what the transaction already holds is each backend's business.

use std::collections::{HashMap, HashSet};

use crate::ids::UserId;

/// A key that a creation requires to be new.
#[derive(PartialEq, Eq, Hash, Clone, Copy, Debug)]
pub(crate) enum Created<'b> {
    User(u64),
    Auth(&'b str),
    Topic(&'b str),
    Message(&'b str, u64),
}

/// The keys the batch's ops so far created and removed, and the claims as they left them.
#[derive(Default)]
pub(crate) struct BatchKeys<'b> {
    created: HashSet<Created<'b>>,
    removed: HashSet<Created<'b>>,
    /// Topics removed whole: their messages are gone too.
    removed_topics: HashSet<&'b str>,
    /// Credential claims as the batch's ops so far left them: the holder, `None` once released.
    pub(crate) claims: HashMap<&'b str, Option<UserId>>,
}

impl<'b> BatchKeys<'b> {
    /// `Some(answer)` when the batch so far decides whether `key` exists, `None` when the
    /// transaction's own state does.
    pub(crate) fn exists(&self, key: &Created<'b>) -> Option<bool> {
        if self.created.contains(key) {
            return Some(true);
        }
        let gone = self.removed.contains(key)
            || matches!(key, Created::Message(topic, _) if self.removed_topics.contains(topic));
        gone.then_some(false)
    }

    pub(crate) fn create(&mut self, key: Created<'b>) {
        self.removed.remove(&key);
        self.created.insert(key);
    }

    pub(crate) fn remove(&mut self, key: Created<'b>) {
        self.created.remove(&key);
        self.removed.insert(key);
    }

    pub(crate) fn remove_topic(&mut self, name: &'b str) {
        self.created
            .retain(|k| !matches!(k, Created::Message(topic, _) if *topic == name));
        self.removed_topics.insert(name);
        self.remove(Created::Topic(name));
    }
}
