//! Which of this shard's topics have writes acknowledged but not yet applied by the store
//! thread (journaled appends and read markers, `StoreWriter::submit_behind`).
//!
//! A read must see every write submitted before it. Before this table a shard queued *every*
//! read behind the store thread while *any* write was behind, so one slow commit (a stalled
//! fsync) held up every history read of every shard. A topic's writes come only from its
//! home shard, and the store thread applies one shard's writes in submission order, so a read
//! keyed by topic needs the queue only while *this* shard has an unapplied write on *that*
//! topic: each write behind gets the next number of the shard, the topic remembers the last
//! one, and the store thread raises the shard's applied mark as it applies them. Reads keyed
//! by user that writes behind can touch (contact lists, subscriptions of a user, searches)
//! still queue whenever anything is behind; reads those writes never touch (users, auth
//! records, credentials, tags) never queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::store::read::WritesBehind;
use crate::store::writer::Completion;
use crate::store::{ReadQuery, WriteBatch, WriteOp};

/// The shard's writes behind, by topic.
#[derive(Default)]
pub struct Behind {
    /// Numbers handed out so far (the next write behind gets `issued + 1`).
    issued: u64,
    /// The highest number the store thread has applied (or given up on).
    applied: Arc<AtomicU64>,
    /// The last number submitted for each topic that may still be unapplied.
    topics: HashMap<String, u64>,
}

impl Behind {
    /// Notes `batch`, about to be submitted behind; wraps its completion so that applying it
    /// raises the applied mark.
    pub fn submit(&mut self, batch: &WriteBatch, done: Completion) -> Completion {
        self.issued += 1;
        let n = self.issued;
        for op in batch {
            let topic = match op {
                WriteOp::AppendMessage(m) => &m.topic,
                WriteOp::Markers { topic, .. } => topic,
                // Anything else a batch behind might hold: treat it as touching everything.
                _ => "",
            };
            match self.topics.get_mut(topic) {
                Some(last) => *last = n,
                None => {
                    self.topics.insert(topic.to_owned(), n);
                }
            }
        }
        let applied = self.applied.clone();
        Box::new(move |res| {
            applied.fetch_max(n, Ordering::Release);
            done(res)
        })
    }

    /// Whether `q` must be queued behind the store thread's pending writes; `any_behind` is
    /// whether any shard has writes behind (`StoreWriter::behind`).
    pub fn must_queue(&self, q: &ReadQuery, any_behind: bool) -> bool {
        if !any_behind {
            return false;
        }
        match q.writes_behind() {
            WritesBehind::Never => false,
            WritesBehind::Any => true,
            WritesBehind::Topic(t) => {
                let applied = self.applied.load(Ordering::Acquire);
                let after = |name: &str| self.topics.get(name).is_some_and(|&n| n > applied);
                after(t) || after("")
            }
        }
    }

    /// Forgets topics whose writes have all been applied (housekeeping).
    pub fn prune(&mut self) {
        let applied = self.applied.load(Ordering::Acquire);
        self.topics.retain(|_, n| *n > applied);
    }

    /// Topics remembered (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.topics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{UnixMillis, UserId};
    use crate::store::{MessageQuery, MessageRecord};

    fn append(topic: &str) -> WriteBatch {
        vec![WriteOp::AppendMessage(MessageRecord {
            topic: topic.into(),
            seq: 1,
            ts: UnixMillis(1),
            from: UserId(1),
            head: None,
            content: "null".into(),
            deleted: false,
        })]
    }

    fn history(topic: &str) -> ReadQuery {
        ReadQuery::History {
            topic: topic.into(),
            query: MessageQuery::default(),
            ranges: Vec::new(),
            soft_of: None,
        }
    }

    #[test]
    fn only_reads_of_a_topic_with_unapplied_writes_queue() {
        let mut b = Behind::default();
        let done = b.submit(&append("grpA"), Box::new(|_| {}));
        assert!(b.must_queue(&history("grpA"), true));
        assert!(
            !b.must_queue(&history("grpB"), true),
            "another topic reads at once"
        );
        assert!(!b.must_queue(&ReadQuery::User(UserId(7)), true));
        assert!(b.must_queue(&ReadQuery::Contacts(UserId(7)), true));
        assert!(
            !b.must_queue(&history("grpA"), false),
            "nothing behind anywhere"
        );
        done(Ok(()));
        assert!(!b.must_queue(&history("grpA"), true), "applied");
        b.prune();
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn a_later_write_keeps_its_topic_queued_until_it_applies() {
        let mut b = Behind::default();
        let first = b.submit(&append("grpA"), Box::new(|_| {}));
        let second = b.submit(&append("grpA"), Box::new(|_| {}));
        first(Ok(()));
        assert!(b.must_queue(&history("grpA"), true));
        b.prune();
        assert_eq!(b.len(), 1);
        second(Ok(()));
        assert!(!b.must_queue(&history("grpA"), true));
    }
}
