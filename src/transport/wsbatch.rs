//! Batched sends: the shard writer's sends of one round handed to the kernel in one system
//! call, through a small io_uring private to the shard, instead of one `send` each.
//!
//! A fan-out's sends are most of its cost, and on these machines a system call's entry and exit
//! alone cost about 0.17 µs of the ~1.7 µs a small `send` takes. The writer gathers the links
//! of a round ([`SendBatch::add`] encodes each link's frames into one shared buffer), then
//! [`SendBatch::flush`] queues one `IORING_OP_SEND` per link and submits them together.
//!
//! The ring is used synchronously: every send carries `MSG_DONTWAIT`, which makes io_uring
//! answer `EAGAIN` rather than wait for room, so each send completes within the submitting call
//! and the buffer is free again when `flush` returns; nothing stays in flight across a task
//! switch. Each result is then settled exactly as a direct `send`'s would be (see
//! [`wsout`](super::wsout)): a short send first tries the rest directly, then leaves what the
//! socket did not take to the session's task; an error fails the link.
//!
//! The sockets are registered with the ring as fixed files while their links are open
//! ([`SendBatch::register`] when a link is made, [`SendBatch::unregister`] when its task lets go
//! of the socket, before closing it), so a send does not look its descriptor up and take a
//! reference to its file each time (`fget`, 3 % of a 1,000-subscriber fan-out). A registered
//! file keeps its socket open, so a link that is dropped still registered unregisters itself.
//! Without a slot (registration refused, or the table full) a send names the descriptor.
//!
//! If the ring misbehaves (an error other than an interrupted wait, or completions that do
//! not come), it is closed, the sends not yet answered are made directly, and the shard's
//! writer goes back to one `send` per link for good, with a warning in the log.

use std::io;
use std::ops::Range;
use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{opcode, types, IoUring};

use crate::transport::ws::{Scratch, SCRATCH_KEEP};
use crate::transport::wsout::{send_all, Link};

/// Bytes gathered before a batch is submitted even if it has room for more sends.
const BATCH_BYTES: usize = 256 << 10;
/// Submissions tried for one batch before the ring is given up.
const TRIES: usize = 8;
/// A send not answered by the ring.
const UNANSWERED: i32 = i32::MIN;

/// One send gathered: the link, its socket, its fixed-file slot and its bytes in the buffer.
struct Gathered {
    link: Rc<Link>,
    fd: RawFd,
    slot: Option<u32>,
    range: Range<usize>,
}

/// One shard's batch of sends and the ring that makes them.
pub struct SendBatch {
    /// `None` once given up: every send is then made directly.
    ring: Option<IoUring>,
    /// Most sends per submission (the ring's size).
    cap: usize,
    /// The frames of the gathered sends, encoded back to back.
    buf: Vec<u8>,
    /// The gathered sends.
    sends: Vec<Gathered>,
    /// Each send's result, by its place in `sends`.
    results: Vec<i32>,
    /// Sends the ring has answered, in all.
    answered: u64,
    /// Fixed-file slots the ring has (0: sockets are not registered).
    slots: u32,
    /// Slots given back, reused first.
    free: Vec<u32>,
    /// Slots never used yet start here.
    next: u32,
}

impl SendBatch {
    /// A batch of at most `cap` sends per submission, or why the ring could not be made.
    pub fn new(cap: usize) -> io::Result<SendBatch> {
        let entries = cap.next_power_of_two() as u32;
        // SUBMIT_ALL: one bad request must not leave the rest of the batch unsubmitted.
        let ring = IoUring::builder()
            .setup_submit_all()
            .setup_single_issuer()
            .build(entries)
            .or_else(|_| IoUring::new(entries))?;
        let slots = fixed_slots();
        let slots = match ring.submitter().register_files_sparse(slots) {
            Ok(()) => slots,
            Err(e) => {
                log::info!("shard writer: sockets not registered with io_uring ({e})");
                0
            }
        };
        Ok(SendBatch {
            ring: Some(ring),
            cap,
            buf: Vec::new(),
            sends: Vec::with_capacity(cap),
            results: Vec::with_capacity(cap),
            answered: 0,
            slots,
            free: Vec::new(),
            next: 0,
        })
    }

    /// Registers socket `fd` as a fixed file: its slot, or `None` (the send then names `fd`).
    pub fn register(&mut self, fd: RawFd) -> Option<u32> {
        let ring = self.ring.as_ref()?;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None if self.next < self.slots => {
                self.next += 1;
                self.next - 1
            }
            None => return None,
        };
        match ring.submitter().register_files_update(slot, &[fd]) {
            Ok(_) => Some(slot),
            Err(e) => {
                log::debug!("shard writer: fd {fd} not registered: {e}");
                self.free.push(slot);
                None
            }
        }
    }

    /// Lets go of `slot`'s socket (before it is closed: a registered file keeps it open).
    pub fn unregister(&mut self, slot: u32) {
        let Some(ring) = self.ring.as_ref() else {
            // Closing the ring let go of every registered file.
            return;
        };
        match ring.submitter().register_files_update(slot, &[-1]) {
            Ok(_) => self.free.push(slot),
            // The slot is not reused; the file is released when the ring closes.
            Err(e) => log::warn!("shard writer: fixed file {slot} not released: {e}"),
        }
    }

    /// Sends the ring has answered since the batch was made.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// Whether the ring was given up (the writer then stops batching).
    pub fn given_up(&self) -> bool {
        self.ring.is_none()
    }

    /// Gathers what `link`'s outbox holds (or leaves it to its task, as a direct write
    /// would); submits the batch when it is full.
    pub fn add(&mut self, link: &Rc<Link>, scratch: &Scratch) {
        let start = self.buf.len();
        let Some(fd) = link.take(scratch, &mut self.buf) else {
            return;
        };
        self.sends.push(Gathered {
            link: link.clone(),
            fd,
            slot: link.slot(),
            range: start..self.buf.len(),
        });
        if self.sends.len() >= self.cap || self.buf.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Makes the gathered sends and settles each with its link.
    pub fn flush(&mut self) {
        if self.sends.is_empty() {
            return;
        }
        self.results.clear();
        self.results.resize(self.sends.len(), UNANSWERED);
        self.submit();
        for (
            i,
            Gathered {
                link, fd, range, ..
            },
        ) in self.sends.drain(..).enumerate()
        {
            let bytes = &self.buf[range];
            let sent = match self.results[i] {
                UNANSWERED => send_all(fd, bytes),
                r if r == bytes.len() as i32 => Ok(bytes.len()),
                r if r > 0 => send_all(fd, &bytes[r as usize..]).map(|more| r as usize + more),
                0 => Err(io::ErrorKind::WriteZero.into()),
                r if r == -libc::EAGAIN => Ok(0),
                r if r == -libc::EINTR => send_all(fd, bytes),
                r => Err(io::Error::from_raw_os_error(-r)),
            };
            link.settle(fd, bytes, sent);
        }
        self.buf.clear();
        if self.buf.capacity() > SCRATCH_KEEP {
            self.buf = Vec::new();
        }
    }

    /// Queues and submits one send per gathered link, and collects the answers into
    /// `results`; gives the ring up if it fails.
    fn submit(&mut self) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        {
            let mut sq = ring.submission();
            for (i, g) in self.sends.iter().enumerate() {
                let bytes = &self.buf[g.range.clone()];
                let (ptr, len) = (bytes.as_ptr(), bytes.len() as u32);
                let send = match g.slot {
                    Some(slot) => opcode::Send::new(types::Fixed(slot), ptr, len),
                    None => opcode::Send::new(types::Fd(g.fd), ptr, len),
                };
                let sqe = send.flags(flags).build().user_data(i as u64);
                // SAFETY: `bytes` stays valid and unmoved until every send is answered below
                // (MSG_DONTWAIT: each completes within the submitting call), and the ring is
                // closed before `buf` is touched if they are not.
                if unsafe { sq.push(&sqe) }.is_err() {
                    // Cannot happen (`sends` never exceeds the ring); sent directly if it does.
                    break;
                }
            }
        }
        let want = ring.submission().len();
        let mut answered = 0;
        let mut failure = None;
        for _ in 0..TRIES {
            match ring.submit_and_wait(want.saturating_sub(answered)) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) => {}
                Err(e) => failure = Some(e),
            }
            for cqe in ring.completion() {
                if let Some(r) = self.results.get_mut(cqe.user_data() as usize) {
                    *r = cqe.result();
                    answered += 1;
                    self.answered += 1;
                }
            }
            if answered >= want || failure.is_some() {
                break;
            }
        }
        if answered < want || failure.is_some() {
            let why = failure.map_or_else(
                || format!("{answered} of {want} sends answered"),
                |e| e.to_string(),
            );
            log::warn!(
                "shard writer: io_uring sends given up ({why}); sending directly from now on"
            );
            // Closing the ring discards what it did not submit; the unanswered sends are made
            // directly by `flush`.
            self.ring = None;
        }
    }
}

/// Fixed-file slots per shard: one for every descriptor the process may open (at most 65,536;
/// the kernel keeps 8 bytes per slot).
fn fixed_slots() -> u32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur.min(1 << 16) as u32
}
