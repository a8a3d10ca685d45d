//! The bounded outbound queue of one session, shared between the shard (producer) and the
//! transport's writer (consumer) on the same core.
//!
//! Slow-consumer policy: a push that would exceed the frame or byte limit fails; the shard then
//! ends the session (its connection is closed, the client reconnects and catches up from
//! history by seq). Memory per session is therefore bounded, and one slow client never stalls
//! a topic or other sessions.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

/// Why an outbox was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client did not read fast enough; its queue overflowed.
    Overflow,
    /// The session ended for another reason (client gone, eviction).
    Ended,
    /// The server is shutting down.
    Shutdown,
}

/// A push beyond the queue's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

#[derive(Debug)]
struct Inner {
    frames: VecDeque<Bytes>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    waker: Option<Waker>,
    closed: Option<CloseReason>,
}

/// One session's outbound frames.
#[derive(Debug)]
pub struct Outbox {
    inner: RefCell<Inner>,
}

impl Outbox {
    /// An empty queue with the given limits.
    pub fn new(max_frames: usize, max_bytes: usize) -> Outbox {
        Outbox {
            inner: RefCell::new(Inner {
                frames: VecDeque::new(),
                bytes: 0,
                max_frames,
                max_bytes,
                waker: None,
                closed: None,
            }),
        }
    }

    /// Queues a frame; fails when a limit would be exceeded. Frames pushed after close are
    /// dropped silently (the session is ending).
    pub fn push(&self, frame: Bytes) -> Result<(), Overflow> {
        let mut i = self.inner.borrow_mut();
        if i.closed.is_some() {
            return Ok(());
        }
        if i.frames.len() >= i.max_frames || i.bytes + frame.len() > i.max_bytes {
            return Err(Overflow);
        }
        i.bytes += frame.len();
        i.frames.push_back(frame);
        if let Some(w) = i.waker.take() {
            w.wake();
        }
        Ok(())
    }

    /// Closes the queue; the writer sends what is queued (unless overflowed) and stops.
    pub fn close(&self, reason: CloseReason) {
        let mut i = self.inner.borrow_mut();
        if i.closed.is_none() {
            i.closed = Some(reason);
        }
        if reason == CloseReason::Overflow {
            i.frames.clear();
            i.bytes = 0;
        }
        if let Some(w) = i.waker.take() {
            w.wake();
        }
    }

    /// Moves every queued frame into `into` (the writer then writes them in one go). Ready
    /// with `Some(reason)` once closed and drained; `Pending` while empty and open.
    pub fn poll_drain(
        &self,
        cx: &mut Context<'_>,
        into: &mut Vec<Bytes>,
    ) -> Poll<Option<CloseReason>> {
        let mut i = self.inner.borrow_mut();
        if !i.frames.is_empty() {
            into.extend(i.frames.drain(..));
            i.bytes = 0;
            return Poll::Ready(None);
        }
        if let Some(r) = i.closed {
            return Poll::Ready(Some(r));
        }
        i.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.inner.borrow().frames.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn bounded_by_frames_and_bytes_and_drains_in_order() {
        let o = Outbox::new(2, 10);
        o.push(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(o.push(Bytes::from_static(b"0123456789")), Err(Overflow));
        o.push(Bytes::from_static(b"de")).unwrap();
        assert_eq!(o.push(Bytes::from_static(b"f")), Err(Overflow));
        let mut cx = Context::from_waker(Waker::noop());
        let mut got = Vec::new();
        assert_eq!(o.poll_drain(&mut cx, &mut got), Poll::Ready(None));
        assert_eq!(
            got,
            vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]
        );
        assert!(o.poll_drain(&mut cx, &mut got).is_pending());
        o.close(CloseReason::Ended);
        assert_eq!(
            o.poll_drain(&mut cx, &mut got),
            Poll::Ready(Some(CloseReason::Ended))
        );
    }
}
