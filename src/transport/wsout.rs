//! The shard's WebSocket writer: one task per shard writes the frames sessions queued straight
//! to their sockets, instead of each push waking that session's own task to write them.
//!
//! A fan-out to N local sessions used to cost N task wake-ups, N polls of a session's loop
//! and N writes; now it costs one wake-up of this task and N writes from one loop. A session
//! whose frames are queued files its [`Link`] here (once, however many frames follow) through
//! its outbox's [`PushHook`]; the writer then drains each filed outbox, encodes the frames into
//! the shard's write buffer and sends them with one non-blocking `send`.
//!
//! A client's message is answered without even that wake-up: its session's task brackets the
//! message with [`Writer::begin_inline`] and [`Writer::end_inline`], and what the message
//! queued (its `{ctrl}`, the deliveries to a peer, a small group's fan-out) is written at the
//! end of that call, by that task. Past [`INLINE_MAX`] links the writer's task takes over.
//!
//! The session's task stays the owner of its connection and of everything slow: a `send` the
//! socket does not take whole leaves the rest in the link's `tx` and wakes the task, which
//! writes it out within `session.write_stall_ms` (a slow consumer); a failed `send` marks the
//! link failed and wakes the task, which ends the session; a closed outbox, or a link whose
//! task is itself writing (`tx` not empty), is left to the task, so frames never overtake each
//! other on a socket. When the task ends it takes the socket out of the link first
//! ([`Link::detach`]), so the writer never writes to a descriptor that is closed or reused.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;

use crate::shard::{Outbox, PushHook};
use crate::transport::ws::{Scratch, SCRATCH_KEEP};
use crate::transport::wsbatch::SendBatch;
use crate::transport::wsframe::{self, OP_TEXT};

/// Links written between two offers of the core to other tasks.
const YIELD_EVERY: usize = 64;
/// Fewest links a round sends through the batch: below, the ring's own work per send is not
/// repaid by the system calls saved.
const BATCH_FROM: usize = 8;
/// Most links a client message's own task writes at its end ([`Writer::end_inline`]).
pub const INLINE_MAX: usize = YIELD_EVERY;

/// One shard's writer: the links with frames to write, and its task's waker.
#[derive(Default)]
pub struct Writer {
    /// The batch its sends go through (`ws.send_batch`); `None`: one `send` per link.
    batch: RefCell<Option<SendBatch>>,
    /// Fixed-file slots let go of while the batch was busy, released when it is done.
    orphans: RefCell<Vec<u32>>,
    filed: RefCell<Vec<Rc<Link>>>,
    /// The links being written (kept for its capacity between rounds).
    spare: RefCell<Vec<Rc<Link>>>,
    waker: RefCell<Option<Waker>>,
    /// Set once the task runs: sessions hook into the writer only then.
    running: Cell<bool>,
    /// Inside a client message's handling: its end writes what was filed, so filing does not
    /// wake the task.
    inline: Cell<bool>,
}

/// Bytes a write left unsent, boxed while there are any: 8 bytes in every link where a
/// `RefCell<Vec<u8>>` takes 32 (the link's `Rc` 80 → 56 bytes, W1). Never holds an empty box.
#[derive(Default)]
#[allow(clippy::box_collection)] // 8 bytes inline where the vector takes 24
pub struct Unsent(Cell<Option<Box<Vec<u8>>>>);

impl Unsent {
    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        let held = self.0.take();
        let empty = held.is_none();
        self.0.set(held);
        empty
    }

    /// Runs `f` on the bytes waiting (an empty vector when none); what it leaves is kept.
    /// (`f` must not reach this `Unsent` again.)
    pub fn with<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut held = self.0.take().unwrap_or_default();
        let r = f(&mut held);
        if !held.is_empty() {
            self.0.set(Some(held));
        }
        r
    }

    /// Appends bytes to what waits.
    pub fn push(&self, bytes: &[u8]) {
        self.with(|v| v.extend_from_slice(bytes));
    }

    /// Takes what waits, leaving nothing.
    pub fn take(&self) -> Vec<u8> {
        self.0.take().map(|b| *b).unwrap_or_default()
    }
}

/// One WebSocket connection as the writer sees it.
pub struct Link {
    /// The socket; -1 once the session's task let go of it.
    fd: Cell<RawFd>,
    /// The socket's fixed-file slot in the writer's ring, while registered.
    slot: Cell<Option<u32>>,
    /// Filed with the writer and not yet written.
    filed: Cell<bool>,
    /// A `send` failed: the session's task ends the session.
    failed: Cell<bool>,
    /// Bytes of a write the socket did not take, which the session's task writes out.
    pub tx: Unsent,
    outbox: Rc<Outbox>,
    writer: Rc<Writer>,
}

impl Writer {
    /// A writer whose rounds of at least [`BATCH_FROM`] links are sent through a batch of up
    /// to `send_batch` sends (`ws.send_batch`; 0: every link with its own `send`).
    pub fn new(send_batch: usize) -> Writer {
        let batch = match send_batch {
            0 => None,
            cap => SendBatch::new(cap)
                .map_err(|e| log::warn!("shard writer: no io_uring ({e}); one send per link"))
                .ok(),
        };
        Writer {
            batch: RefCell::new(batch),
            ..Writer::default()
        }
    }

    /// Whether the task runs (sessions opened before it write through their own tasks).
    pub fn is_running(&self) -> bool {
        self.running.get()
    }

    /// The writer's task: waits for filed links and writes them, for the shard's life.
    pub async fn run(self: Rc<Self>, scratch: Rc<Scratch>) {
        self.running.set(true);
        loop {
            poll_fn(|cx| {
                if self.filed.borrow().is_empty() {
                    *self.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            let round = self.take_round();
            for links in round.chunks(YIELD_EVERY) {
                self.write_links(links, &scratch);
                glommio::yield_if_needed().await;
            }
            self.return_round(round);
        }
    }

    /// Takes every link filed so far (in the spare vector, so a warm writer allocates nothing);
    /// links filed meanwhile start the next round.
    fn take_round(&self) -> Vec<Rc<Link>> {
        let mut round = std::mem::take(&mut *self.spare.borrow_mut());
        std::mem::swap(&mut round, &mut *self.filed.borrow_mut());
        round
    }

    /// Gives a written round's vector back as the spare.
    fn return_round(&self, mut round: Vec<Rc<Link>>) {
        round.clear();
        *self.spare.borrow_mut() = round;
    }

    /// A client message is about to be handled: links filed until [`Writer::end_inline`]
    /// are written then.
    pub fn begin_inline(&self) {
        self.inline.set(true);
    }

    /// The message was handled: writes the links filed (at most [`INLINE_MAX`]; more are left
    /// to the writer's task, which yields between groups).
    pub fn end_inline(&self, scratch: &Scratch) {
        self.inline.set(false);
        let n = self.filed.borrow().len();
        if n == 0 {
            return;
        }
        if n > INLINE_MAX {
            self.wake();
            return;
        }
        let round = self.take_round();
        self.write_links(&round, scratch);
        self.return_round(round);
    }

    /// Writes the filed `links`: through the batch when there are enough of them, else one
    /// `send` each.
    fn write_links(&self, links: &[Rc<Link>], scratch: &Scratch) {
        let mut batch = self.batch.borrow_mut();
        match batch.as_mut() {
            Some(b) if links.len() >= BATCH_FROM => {
                for link in links {
                    link.filed.set(false);
                    b.add(link, scratch);
                }
                b.flush();
            }
            _ => {
                for link in links {
                    link.filed.set(false);
                    link.write(scratch);
                }
            }
        }
        if let Some(b) = batch.as_mut() {
            for slot in self.orphans.borrow_mut().drain(..) {
                b.unregister(slot);
            }
            if b.given_up() {
                *batch = None;
            }
        } else {
            // No ring: no file is registered any more.
            self.orphans.borrow_mut().clear();
        }
    }

    fn file(&self, link: Rc<Link>) {
        self.filed.borrow_mut().push(link);
        if !self.inline.get() {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

impl Link {
    /// The session's outbound queue.
    pub fn outbox(&self) -> &Rc<Outbox> {
        &self.outbox
    }

    /// The link of the connection on `fd`, whose session queues into `outbox`; hooks it into
    /// `writer` if `hook` (`ws.shard_writer`) and the writer runs (otherwise the session's
    /// task writes everything).
    pub fn new(fd: RawFd, outbox: &Rc<Outbox>, writer: &Rc<Writer>, hook: bool) -> Rc<Link> {
        let link = Rc::new(Link {
            fd: Cell::new(fd),
            slot: Cell::new(None),
            filed: Cell::new(false),
            failed: Cell::new(false),
            tx: Unsent::default(),
            outbox: outbox.clone(),
            writer: writer.clone(),
        });
        if hook && writer.is_running() {
            let hook: Rc<dyn PushHook> = link.clone();
            outbox.set_hook(Rc::downgrade(&hook));
            link.register();
        }
        link
    }

    /// Registers the socket with the writer's batch, if it batches.
    fn register(&self) {
        if let Some(batch) = self.writer.batch.borrow_mut().as_mut() {
            self.slot.set(batch.register(self.fd.get()));
        }
    }

    /// The socket's fixed-file slot in the writer's ring, if registered.
    pub(super) fn slot(&self) -> Option<u32> {
        self.slot.get()
    }

    /// A `send` from the writer failed: the session should end.
    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    /// The session's task lets go of the socket: nothing is written to it from now on, and
    /// the writer's ring holds it no longer (so that closing it closes the connection).
    pub fn detach(&self) {
        self.fd.set(-1);
        if let Some(slot) = self.slot.take() {
            match self.writer.batch.try_borrow_mut() {
                Ok(mut batch) => {
                    if let Some(batch) = batch.as_mut() {
                        batch.unregister(slot);
                    }
                }
                // Dropped by the batch itself: released as soon as it is done.
                Err(_) => self.writer.orphans.borrow_mut().push(slot),
            }
        }
    }

    /// Writes what the outbox holds, or leaves it to the session's task (see the charter).
    fn write(&self, scratch: &Scratch) {
        let mut out = scratch.write.borrow_mut();
        out.clear();
        if let Some(fd) = self.take(scratch, &mut out) {
            let sent = send_all(fd, &out);
            self.settle(fd, &out, sent);
        }
        if out.capacity() > SCRATCH_KEEP {
            *out = Vec::new();
        }
    }

    /// Encodes what the outbox holds onto the end of `out` and returns the socket to send it
    /// on; `None` when there is nothing to send or the session's task writes it (see the
    /// charter).
    pub(super) fn take(&self, scratch: &Scratch, out: &mut Vec<u8>) -> Option<RawFd> {
        self.take_with(&mut scratch.frames.borrow_mut(), out)
    }

    /// [`Link::take`] with `frames` as the vector the outbox is drained into.
    fn take_with(&self, frames: &mut Vec<Bytes>, out: &mut Vec<u8>) -> Option<RawFd> {
        let fd = self.fd.get();
        if fd < 0 {
            return None;
        }
        if self.failed.get() || !self.tx.is_empty() {
            self.outbox.wake_task();
            return None;
        }
        if self.outbox.is_closed() {
            // Its task writes what is left, then the close frame.
            self.outbox.wake_task();
            return None;
        }
        if !self.outbox.take_open(frames) {
            // Its task drained the queue meanwhile.
            return None;
        }
        for f in frames.drain(..) {
            debug_assert!(std::str::from_utf8(&f).is_ok(), "frames are UTF-8");
            wsframe::encode(out, OP_TEXT, &f);
        }
        Some(fd)
    }

    /// Settles a send of `bytes` on `fd`: what the socket did not take goes to `tx` for the
    /// session's task, and an error fails the link.
    pub(super) fn settle(&self, fd: RawFd, bytes: &[u8], sent: io::Result<usize>) {
        match sent {
            Ok(n) if n == bytes.len() => {}
            Ok(n) => {
                self.tx.push(&bytes[n..]);
                self.outbox.wake_task();
            }
            Err(e) => {
                log::debug!("shard writer: send on fd {fd}: {e}");
                self.failed.set(true);
                self.outbox.wake_task();
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // A registered socket stays open while its slot holds it.
        self.detach();
    }
}

impl PushHook for Link {
    fn pushed(self: Rc<Self>) {
        if self.fd.get() >= 0 && !self.filed.replace(true) {
            let writer = self.writer.clone();
            writer.file(self);
        }
    }

    /// The outbox is at its limit (many frames queued in one go, faster than a round of the
    /// writer): its frames are written now, as a round would write them, so that a client that
    /// reads is not cut. A link whose socket already holds back a remainder (`tx`) takes
    /// nothing, and the push overflows as before. The buffers are this call's own: it runs
    /// inside a push, wherever that push is, and a full queue is rare.
    fn full(self: Rc<Self>) {
        let mut frames = Vec::new();
        let mut out = Vec::new();
        if let Some(fd) = self.take_with(&mut frames, &mut out) {
            let sent = send_all(fd, &out);
            self.settle(fd, &out, sent);
        }
    }
}

/// Sends `buf` on the non-blocking socket `fd` until it is all sent or the socket would
/// block: how many bytes went, or the error.
pub(super) fn send_all(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &buf[done..];
        // SAFETY: `fd` is the session's open socket (a link is detached before its socket
        // closes) and `rest` is a valid slice for the duration of the call.
        let n = unsafe {
            libc::send(
                fd,
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            done += n as usize;
            continue;
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(done),
            _ => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
#[path = "wsout_tests.rs"]
mod tests;
