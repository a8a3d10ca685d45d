//! Test doubles of the store (built for tests only): [`HookedStore`], a redb store whose
//! `apply` first runs a hook (announce, wait for a go-ahead, record the group), so tests can
//! hold a writer or a closing gate in the middle of a commit. Reads go straight through.

use super::{
    AuthRecord, DelRecord, LastMessage, MessageQuery, MessageRecord, ReadAnswer, ReadQuery,
    RedbStore, Store, StoreError, SubRecord, TopicRecord, UserRecord, WriteBatch,
};
use crate::ids::UserId;

/// A [`RedbStore`] whose `apply` calls `hook` with the batches before committing them.
pub(crate) struct HookedStore<H> {
    pub(crate) inner: RedbStore,
    pub(crate) hook: H,
}

impl<H: Fn(&[WriteBatch]) + Send + Sync + 'static> Store for HookedStore<H> {
    fn user(&self, uid: UserId) -> Result<Option<UserRecord>, StoreError> {
        self.inner.user(uid)
    }
    fn auth(&self, unique: &str) -> Result<Option<AuthRecord>, StoreError> {
        self.inner.auth(unique)
    }
    fn auths_of_user(&self, uid: UserId) -> Result<Vec<AuthRecord>, StoreError> {
        self.inner.auths_of_user(uid)
    }
    fn topic(&self, name: &str) -> Result<Option<TopicRecord>, StoreError> {
        self.inner.topic(name)
    }
    fn sub(&self, topic: &str, uid: UserId) -> Result<Option<SubRecord>, StoreError> {
        self.inner.sub(topic, uid)
    }
    fn subs_of_topic(&self, topic: &str) -> Result<Vec<SubRecord>, StoreError> {
        self.inner.subs_of_topic(topic)
    }
    fn subs_of_user(&self, uid: UserId) -> Result<Vec<SubRecord>, StoreError> {
        self.inner.subs_of_user(uid)
    }
    fn messages(&self, topic: &str, q: MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        self.inner.messages(topic, q)
    }
    fn last_message(&self, topic: &str) -> Result<Option<LastMessage>, StoreError> {
        self.inner.last_message(topic)
    }
    fn del_log(
        &self,
        topic: &str,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DelRecord>, StoreError> {
        self.inner.del_log(topic, since, before, limit)
    }
    fn find_tags(
        &self,
        tags: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.inner.find_tags(tags, limit)
    }
    fn cred_owner(&self, unique: &str) -> Result<Option<UserId>, StoreError> {
        self.inner.cred_owner(unique)
    }
    fn read(&self, q: &ReadQuery) -> Result<ReadAnswer, StoreError> {
        self.inner.read(q)
    }
    fn apply(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        (self.hook)(batches);
        self.inner.apply(batches)
    }
    fn apply_volatile(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        (self.hook)(batches);
        self.inner.apply_volatile(batches)
    }
    fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync()
    }
}
