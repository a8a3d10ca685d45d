//! `Box<dyn Store>` is itself a [`Store`], so that the server can choose the backend at start
//! (embedded or PostgreSQL) and still hand one concrete type to the generic store gate.

use super::{
    AuthRecord, DelRecord, LastMessage, MessageQuery, MessageRecord, ReadAnswer, ReadQuery, Store,
    StoreError, SubRecord, TopicRecord, UserRecord, WriteBatch,
};
use crate::ids::UserId;

impl Store for Box<dyn Store> {
    fn user(&self, uid: UserId) -> Result<Option<UserRecord>, StoreError> {
        (**self).user(uid)
    }
    fn auth(&self, unique: &str) -> Result<Option<AuthRecord>, StoreError> {
        (**self).auth(unique)
    }
    fn auths_of_user(&self, uid: UserId) -> Result<Vec<AuthRecord>, StoreError> {
        (**self).auths_of_user(uid)
    }
    fn topic(&self, name: &str) -> Result<Option<TopicRecord>, StoreError> {
        (**self).topic(name)
    }
    fn sub(&self, topic: &str, uid: UserId) -> Result<Option<SubRecord>, StoreError> {
        (**self).sub(topic, uid)
    }
    fn subs_of_topic(&self, topic: &str) -> Result<Vec<SubRecord>, StoreError> {
        (**self).subs_of_topic(topic)
    }
    fn subs_of_user(&self, uid: UserId) -> Result<Vec<SubRecord>, StoreError> {
        (**self).subs_of_user(uid)
    }
    fn messages(&self, topic: &str, q: MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        (**self).messages(topic, q)
    }
    fn last_message(&self, topic: &str) -> Result<Option<LastMessage>, StoreError> {
        (**self).last_message(topic)
    }
    fn del_log(
        &self,
        topic: &str,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DelRecord>, StoreError> {
        (**self).del_log(topic, since, before, limit)
    }
    fn find_tags(
        &self,
        tags: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        (**self).find_tags(tags, limit)
    }
    fn cred_owner(&self, unique: &str) -> Result<Option<UserId>, StoreError> {
        (**self).cred_owner(unique)
    }
    fn apply(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        (**self).apply(batches)
    }
    fn apply_volatile(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        (**self).apply_volatile(batches)
    }
    fn sync(&self) -> Result<(), StoreError> {
        (**self).sync()
    }
    fn read(&self, q: &ReadQuery) -> Result<ReadAnswer, StoreError> {
        (**self).read(q)
    }
}
