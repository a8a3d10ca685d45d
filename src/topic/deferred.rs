//! A join's read of messages held back until the topic's writes in flight are done.
//!
//! A store may answer reads on other threads (PostgreSQL's readers), not ordered after its
//! writes. A joining session is attached only once its page of history is read, so a message
//! that committed after the page was read but before the page came back would reach neither
//! the page nor the joiner's live stream (`tests/it/join_race.rs`). [`Topic::read`] therefore
//! holds a join's read of messages back while any write of the topic is in flight, and
//! [`Topic::release_deferred_read`] sends it once the last one completed.

use std::num::NonZeroU64;

use super::{Pending, Topic, TopicCx, TopicOut};
use crate::routing::TopicRequest;
use crate::store::ReadQuery;

impl Pending {
    /// Whether this waits for a write (rather than for reads).
    fn is_write(&self) -> bool {
        matches!(
            self,
            Pending::Join(_) | Pending::Publish(_) | Pending::Reply(_)
        )
    }

    /// Whether this is a join (of a session not attached yet) waiting for its reads.
    fn is_join(&self) -> bool {
        matches!(
            self,
            Pending::Request(TopicRequest::Join { .. }, _) | Pending::CompleteJoin(..)
        )
    }
}

/// Whether `q` reads messages or their deletions: what a write in flight may still add to.
fn reads_messages(q: &ReadQuery) -> bool {
    matches!(
        q,
        ReadQuery::History { .. } | ReadQuery::DelLog { .. } | ReadQuery::LastMessage(_)
    )
}

impl Topic {
    /// Asks for `queries`, remembering what waits for them; later requests queue meanwhile.
    ///
    /// A join's read of messages waits until the topic's writes in flight are done. A store
    /// may answer reads on other threads (PostgreSQL's readers), not ordered after writes: a
    /// page read before a message committed would lack it, while the message, once committed,
    /// would go out to the sessions attached then, not to the one whose join waits for the
    /// page. Held back, the read runs after every message assigned so far is stored (or
    /// failed), and no message can be sent out before the page: the requests that would
    /// publish one wait behind the read. The wait is as long as the writes' commit. A session
    /// already attached gets every message live, so its `{get data}` does not wait (it hides
    /// what is not acknowledged yet).
    pub(crate) fn read(&mut self, queries: Vec<ReadQuery>, pending: Pending, cx: &mut TopicCx<'_>) {
        let token = self.next_token;
        self.next_token += 1;
        self.reading = NonZeroU64::new(token);
        if pending.is_join() && queries.iter().any(reads_messages) && self.writes_in_flight() {
            let held = Pending::Deferred(Box::new((pending, queries)));
            self.pending.insert(token, held);
            return;
        }
        self.pending.insert(token, pending);
        cx.out.push(TopicOut::Read { token, queries });
    }

    /// Whether a write of this topic is in flight.
    fn writes_in_flight(&self) -> bool {
        self.pending.values().any(Pending::is_write)
    }

    /// Sends the read held back by [`Topic::read`] once no write is in flight.
    pub(super) fn release_deferred_read(&mut self, cx: &mut TopicCx<'_>) {
        let Some(token) = self.reading.map(NonZeroU64::get) else {
            return;
        };
        if !matches!(self.pending.get(&token), Some(Pending::Deferred(_)))
            || self.writes_in_flight()
        {
            return;
        }
        if let Some(Pending::Deferred(held)) = self.pending.remove(&token) {
            let (pending, queries) = *held;
            self.pending.insert(token, pending);
            cx.out.push(TopicOut::Read { token, queries });
        }
    }
}
