//! The front door at the socket (`[frontdoor]`, tuning/frontdoor.md): every accepted
//! connection holds a [`Ticket`] from `accept` to the end of its task; the shard's books
//! (`shard/door.rs`) decide what to refuse and whom to shed, and this file does it to the
//! sockets. The process counts its open client connections here, against the soft
//! `RLIMIT_NOFILE` (re-read every second) less the descriptors open at start-up and
//! `frontdoor.fd_reserve`: near that line every new connection sheds the oldest
//! unauthenticated one on its shard, and an `accept` that fails with `EMFILE` sheds a batch
//! ([`shed_for_descriptors`], called by `accept.rs`).
//!
//! A pending connection is cut by writing a 503 to its socket without blocking and shutting
//! it down: its task sees the end of the stream and ends as any other. A ticket is dropped
//! before its socket closes (declare it after the stream), so the books never name a
//! descriptor that another connection may have been given since.

use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::ids::SessionId;
use crate::shard::local::{try_with, with};

pub use crate::shard::door::Refused;

/// Client connections open in the process, all shards and listeners, accept to task end.
static OPEN: AtomicUsize = AtomicUsize::new(0);
/// Descriptors open when the first shard began to serve (listeners, rings, store files).
static BASE: OnceLock<usize> = OnceLock::new();
/// The soft open-file limit, and the second it was read.
static NOFILE: AtomicUsize = AtomicUsize::new(0);
static NOFILE_READ: AtomicU64 = AtomicU64::new(0);
/// `frontdoor.fd_reserve`.
static RESERVE: AtomicUsize = AtomicUsize::new(64);

/// What a connection that is turned away or cut reads before the end of its stream.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 58\r\nConnection: close\r\n\r\n{\"ctrl\":{\"code\":503,\"text\":\"service unavailable, retry\"}}\n";

/// How many unauthenticated connections an `EMFILE` sheds at once.
const EMFILE_BATCH: usize = 16;

/// A connection's place at the door; dropping it (when the connection's task ends) frees it.
#[derive(Debug)]
pub struct Ticket {
    seq: u64,
}

/// Reads the process-wide figures once (idempotent).
pub fn init(cfg: &Config) {
    let _ = BASE.get_or_init(count_open_fds);
    RESERVE.store(cfg.frontdoor.fd_reserve, Ordering::Relaxed);
}

/// Admits a connection just accepted on socket `fd` from `ip`: a ticket, or why not (the
/// caller answers with [`refuse`] and closes). May shed older connections to make room.
pub fn admit(fd: RawFd, ip: Option<IpAddr>) -> Result<Ticket, Refused> {
    let near = near_descriptor_limit();
    let mut cut = Vec::new();
    let seq = with(|ctx| ctx.door_admit(fd, ip, near, &mut cut));
    shut(&cut);
    let seq = seq?;
    OPEN.fetch_add(1, Ordering::Relaxed);
    Ok(Ticket { seq })
}

/// Frees descriptors after `accept` failed for want of them: sheds up to a batch of this
/// shard's oldest unauthenticated connections. Returns how many.
pub fn shed_for_descriptors() -> usize {
    let mut cut = Vec::new();
    let n = with(|ctx| ctx.door_shed(EMFILE_BATCH, &mut cut));
    shut(&cut);
    n
}

/// Answers 503 to a connection without blocking (its caller then closes it).
pub fn refuse(fd: RawFd) {
    // SAFETY: `fd` is an open socket; the buffer outlives the call; MSG_DONTWAIT never blocks.
    unsafe {
        libc::send(
            fd,
            BUSY_RESPONSE.as_ptr().cast(),
            BUSY_RESPONSE.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        );
    }
}

/// Client connections open in the process.
pub fn open_connections() -> usize {
    OPEN.load(Ordering::Relaxed)
}

impl Ticket {
    /// The request head was read and routed to an endpoint that bounds itself from here on
    /// (long poll, static files, monitoring, gRPC): no longer pending.
    pub fn routed(&self) {
        with(|ctx| ctx.door_routed(self.seq));
    }

    /// The WebSocket handshake was answered for session `sid`: no longer pending, and shed
    /// first near the descriptor limit until it has logged in.
    pub fn upgraded(&self, sid: SessionId) {
        with(|ctx| ctx.door_upgraded(self.seq, sid));
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
        // `try_with`: a ticket may be dropped while its executor tears down.
        let _ = try_with(|ctx| ctx.door_release(self.seq));
    }
}

/// Cuts pending connections: a 503, then `shutdown` (their tasks then end).
fn shut(fds: &[RawFd]) {
    for &fd in fds {
        refuse(fd);
        // SAFETY: the fd belongs to a live pending connection: the books held it, and a
        // ticket leaves the books before its socket closes.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    }
}

/// Whether client connections have reached the descriptor limit less start-up and reserve.
fn near_descriptor_limit() -> bool {
    let second = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if NOFILE_READ.swap(second, Ordering::Relaxed) != second {
        NOFILE.store(soft_nofile(), Ordering::Relaxed);
    }
    let base = BASE.get().copied().unwrap_or(0);
    let used = OPEN.load(Ordering::Relaxed) + base + RESERVE.load(Ordering::Relaxed);
    used + 1 >= NOFILE.load(Ordering::Relaxed)
}

/// The soft open-file limit.
fn soft_nofile() -> usize {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return usize::MAX;
    }
    usize::try_from(l.rlim_cur).unwrap_or(usize::MAX)
}

/// Descriptors open now (read once, at start-up).
fn count_open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_response_is_well_formed() {
        let text = std::str::from_utf8(BUSY_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["ctrl"]["code"], 503);
    }

    #[test]
    fn the_descriptor_limit_is_read() {
        assert!(soft_nofile() > 0);
        assert!(count_open_fds() > 0);
    }
}
