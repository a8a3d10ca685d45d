//! The bounded outbound queue of one session, shared between the shard (producer) and the
//! transport's writer (consumer) on the same core.
//!
//! Two kinds of consumer: a connection's writer drains everything at once (`poll_drain`, one
//! waker: WebSocket), and long polls take one frame each (`pop`, any number of waiters, each
//! woken on a push; a waiter that goes away unregisters itself). A transport that writes
//! queued frames from elsewhere (the shard's WebSocket writer) installs a [`PushHook`]: a push
//! then calls it instead of waking the connection's task, which is woken only when the
//! transport asks ([`Outbox::wake_task`]) or the queue closes.
//!
//! Slow-consumer policy: a push that would exceed the frame or byte limit fails; the shard then
//! ends the session (its connection is closed, the client reconnects and catches up from
//! history by seq). Memory per session is therefore bounded, and one slow client never stalls
//! a topic or other sessions. Before a push fails, a hooked queue asks its hook to write what
//! it holds ([`PushHook::full`]): many frames queued at once (a store stall's messages
//! released together) then reach a client that reads, and only one that does not read, whose
//! connection takes nothing more, overflows.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
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
    /// Shed by the front door to free a descriptor near the open-file limit (the session had
    /// not authenticated).
    Shed,
}

/// A push beyond the queue's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Told of every frame pushed, in place of the connection task's wake-up (see the module's
/// charter). It must not push into the outbox it was called from.
pub trait PushHook {
    /// A frame was queued.
    fn pushed(self: Rc<Self>);

    /// The queue is at a limit: write what it holds to the connection now, as far as the
    /// connection takes it, so that the push can proceed. It must not push either.
    fn full(self: Rc<Self>) {}
}

#[derive(Debug)]
struct Inner {
    frames: VecDeque<Bytes>,
    bytes: usize,
    /// The limits, in 32 bits (the configuration keeps them below 4 Gi: W1, every session
    /// holds its outbox for its life).
    max_frames: u32,
    max_bytes: u32,
    waker: Option<Waker>,
    /// Tasks waiting in [`Outbox::pop`]: a box made when a long poll first waits (W1).
    poppers: Option<Box<Poppers>>,
    closed: Option<CloseReason>,
    /// Called on a push instead of `waker` while its owner lives.
    hook: Option<Weak<dyn PushHook>>,
}

/// The tasks waiting in [`Outbox::pop`], by key.
#[derive(Debug, Default)]
struct Poppers {
    waiting: Vec<(u64, Waker)>,
    next: u64,
}

impl Inner {
    /// True if a frame of `len` bytes would exceed a limit.
    fn over_with(&self, len: usize) -> bool {
        self.frames.len() >= self.max_frames as usize || self.bytes + len > self.max_bytes as usize
    }

    fn wake_all(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        for (_, w) in self.poppers.iter().flat_map(|p| &p.waiting) {
            w.wake_by_ref();
        }
    }
}

/// One session's outbound frames.
#[derive(Debug)]
pub struct Outbox {
    inner: RefCell<Inner>,
}

impl Outbox {
    /// An empty queue with the given limits (each at most `u32::MAX`; larger ones are cut to
    /// it).
    pub fn new(max_frames: usize, max_bytes: usize) -> Outbox {
        Outbox {
            inner: RefCell::new(Inner {
                frames: VecDeque::new(),
                bytes: 0,
                max_frames: u32::try_from(max_frames).unwrap_or(u32::MAX),
                max_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
                waker: None,
                poppers: None,
                closed: None,
                hook: None,
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
        if i.over_with(frame.len()) {
            // The hook's writer gets one chance to make room (see the charter).
            let Some(hook) = i.hook.as_ref().and_then(Weak::upgrade) else {
                return Err(Overflow);
            };
            drop(i);
            hook.full();
            i = self.inner.borrow_mut();
            if i.closed.is_some() {
                return Ok(());
            }
            if i.over_with(frame.len()) {
                return Err(Overflow);
            }
        }
        i.bytes += frame.len();
        i.frames.push_back(frame);
        if let Some(hook) = i.hook.as_ref().and_then(Weak::upgrade) {
            drop(i);
            hook.pushed();
            return Ok(());
        }
        i.wake_all();
        Ok(())
    }

    /// Installs `hook`: from now on a push calls it instead of waking the writer's task.
    pub fn set_hook(&self, hook: Weak<dyn PushHook>) {
        self.inner.borrow_mut().hook = Some(hook);
    }

    /// Wakes the task waiting in [`Outbox::poll_drain`], if any (a hook's owner hands it work).
    pub fn wake_task(&self) {
        let w = self.inner.borrow_mut().waker.take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Moves every queued frame into `into` unless the queue is closed (its task then writes
    /// what is left and the close frame). True if any frame was moved.
    pub fn take_open(&self, into: &mut Vec<Bytes>) -> bool {
        let mut i = self.inner.borrow_mut();
        if i.closed.is_some() || i.frames.is_empty() {
            return false;
        }
        into.extend(std::mem::take(&mut i.frames));
        i.bytes = 0;
        true
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
        i.wake_all();
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
            // Hand the whole queue over and keep none of its capacity: an idle session holds
            // no queue memory (W1); the next push allocates a small one again.
            into.extend(std::mem::take(&mut i.frames));
            i.bytes = 0;
            return Poll::Ready(None);
        }
        if let Some(r) = i.closed {
            return Poll::Ready(Some(r));
        }
        i.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next frame, taken alone (a long poll answers with exactly one): `Some(frame)` as
    /// soon as one is queued (also after close, until drained), `None` once closed and empty.
    /// Several `pop`s may wait at once; each push wakes them all and the first to run takes
    /// the frame.
    pub fn pop(&self) -> Pop<'_> {
        Pop {
            outbox: self,
            key: None,
        }
    }

    /// Takes the next frame now, if any.
    pub fn try_pop(&self) -> Option<Bytes> {
        let mut i = self.inner.borrow_mut();
        let f = i.frames.pop_front()?;
        i.bytes -= f.len();
        Some(f)
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().closed.is_some()
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

/// The future of [`Outbox::pop`].
#[derive(Debug)]
pub struct Pop<'a> {
    outbox: &'a Outbox,
    /// This waiter's key in `poppers`, once registered.
    key: Option<u64>,
}

impl Future for Pop<'_> {
    type Output = Option<Bytes>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let outbox = self.outbox;
        let mut i = outbox.inner.borrow_mut();
        if let Some(f) = i.frames.pop_front() {
            i.bytes -= f.len();
            drop(i);
            self.unregister();
            return Poll::Ready(Some(f));
        }
        if i.closed.is_some() {
            drop(i);
            self.unregister();
            return Poll::Ready(None);
        }
        let poppers = i.poppers.get_or_insert_with(Box::default);
        match self.key {
            Some(k) => {
                if let Some((_, w)) = poppers.waiting.iter_mut().find(|(key, _)| *key == k) {
                    w.clone_from(cx.waker());
                }
            }
            None => {
                let k = poppers.next;
                poppers.next += 1;
                poppers.waiting.push((k, cx.waker().clone()));
                drop(i);
                self.key = Some(k);
            }
        }
        Poll::Pending
    }
}

impl Pop<'_> {
    fn unregister(&mut self) {
        if let Some(k) = self.key.take() {
            if let Some(p) = &mut self.outbox.inner.borrow_mut().poppers {
                p.waiting.retain(|(key, _)| *key != k);
            }
        }
    }
}

impl Drop for Pop<'_> {
    fn drop(&mut self) {
        self.unregister();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::task::Waker;

    impl Outbox {
        /// Long polls waiting in `pop`.
        fn popping(&self) -> usize {
            self.inner
                .borrow()
                .poppers
                .as_ref()
                .map_or(0, |p| p.waiting.len())
        }
    }

    #[test]
    fn an_outbox_stays_in_a_small_allocation() {
        // Every session holds its outbox in an `Rc` for its life (W1): 16 bytes of counts and
        // the outbox fill mimalloc's 128-byte class; the next one up is 160.
        let size = std::mem::size_of::<Outbox>();
        assert!(size <= 112, "Outbox is {size} bytes");
    }

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

    /// A hook told of a full queue: it drains into `taken` while `drains`, else does nothing.
    struct Full {
        outbox: Weak<Outbox>,
        drains: Cell<bool>,
        calls: Cell<usize>,
        taken: RefCell<Vec<Bytes>>,
    }

    impl PushHook for Full {
        fn pushed(self: Rc<Self>) {}
        fn full(self: Rc<Self>) {
            self.calls.set(self.calls.get() + 1);
            if self.drains.get() {
                let o = self.outbox.upgrade().unwrap();
                o.take_open(&mut self.taken.borrow_mut());
            }
        }
    }

    #[test]
    fn a_full_queue_asks_its_hook_once_before_it_overflows() {
        let o = Rc::new(Outbox::new(2, 100));
        let hook = Rc::new(Full {
            outbox: Rc::downgrade(&o),
            drains: Cell::new(true),
            calls: Cell::new(0),
            taken: RefCell::new(Vec::new()),
        });
        let dyn_hook: Rc<dyn PushHook> = hook.clone();
        o.set_hook(Rc::downgrade(&dyn_hook));
        for n in 0..5u8 {
            o.push(Bytes::from(vec![b'a' + n])).unwrap();
        }
        // Full at the third and fifth push: drained twice, in order, one frame still queued.
        assert_eq!(hook.calls.get(), 2);
        assert_eq!(*hook.taken.borrow(), [&b"a"[..], b"b", b"c", b"d"]);
        assert_eq!(o.len(), 1);
        // A hook that makes no room: the push overflows after one call.
        hook.drains.set(false);
        o.push(Bytes::from_static(b"f")).unwrap();
        assert_eq!(o.push(Bytes::from_static(b"g")), Err(Overflow));
        assert_eq!(hook.calls.get(), 3);
    }

    #[test]
    fn pops_take_one_frame_each_and_waiters_unregister() {
        use std::future::Future;
        use std::pin::pin;
        let o = Outbox::new(8, 100);
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut a = pin!(o.pop());
            let mut b = pin!(o.pop());
            assert!(a.as_mut().poll(&mut cx).is_pending());
            assert!(b.as_mut().poll(&mut cx).is_pending());
            assert_eq!(o.popping(), 2);
            o.push(Bytes::from_static(b"x")).unwrap();
            o.push(Bytes::from_static(b"y")).unwrap();
            assert_eq!(
                a.as_mut().poll(&mut cx),
                Poll::Ready(Some(Bytes::from_static(b"x")))
            );
            assert_eq!(o.popping(), 1);
            assert_eq!(
                b.as_mut().poll(&mut cx),
                Poll::Ready(Some(Bytes::from_static(b"y")))
            );
            let mut c = pin!(o.pop());
            assert!(c.as_mut().poll(&mut cx).is_pending());
        }
        // Dropped waiters leave nothing behind.
        assert_eq!(o.popping(), 0);
        assert_eq!(o.inner.borrow().bytes, 0);
        o.push(Bytes::from_static(b"z")).unwrap();
        o.close(CloseReason::Ended);
        assert_eq!(o.try_pop(), Some(Bytes::from_static(b"z")));
        let mut d = pin!(o.pop());
        assert_eq!(d.as_mut().poll(&mut cx), Poll::Ready(None));
    }
}
