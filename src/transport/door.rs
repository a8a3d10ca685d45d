//! The front door's bookkeeping (`[frontdoor]`, tuning/frontdoor.md): every accepted
//! connection holds a [`Ticket`] from `accept` to the end of its task. The shard's door knows
//! which connections are still pending (request head or handshake under way), from which
//! address, and which WebSocket sessions may not have logged in yet, oldest first; and the
//! process knows how many client connections are open in all.
//!
//! Three bounds follow:
//! - per address: a connection from an address that already has `max_pending_per_addr`
//!   pending ones is refused (503) — trusted proxies are exempt;
//! - in all: past `max_pending` the oldest pending connection is cut;
//! - near the open-file limit (the soft `RLIMIT_NOFILE`, re-read every second, less the
//!   descriptors open at start-up and `fd_reserve`): each new connection sheds the oldest
//!   unauthenticated one on its shard, so an idle flood cannot keep real clients out; an
//!   `accept` that fails with `EMFILE` sheds a batch at once ([`shed_for_descriptors`]).
//!
//! Limits are per process and each shard enforces its share (SO_REUSEPORT spreads one
//! address's connections over the shards). A pending connection is cut by writing a 503 to
//! its socket without blocking and shutting it down: its task sees the end of the stream
//! and ends as any other; a session is cut through its outbox (WebSocket close 1013).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::config::{parse_cidrs, Cidr, Config};
use crate::ids::SessionId;
use crate::logging::Noisy;
use crate::shard::local::with;

/// Client connections open in the process, all shards and listeners, accept to task end.
static OPEN: AtomicUsize = AtomicUsize::new(0);
/// Descriptors open when the first shard began to serve (listeners, rings, store files).
static BASE: OnceLock<usize> = OnceLock::new();

/// What a pending connection that is cut reads before the end of its stream.
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 58\r\nConnection: close\r\n\r\n{\"ctrl\":{\"code\":503,\"text\":\"service unavailable, retry\"}}\n";

/// How many unauthenticated connections an `EMFILE` sheds at once.
const EMFILE_BATCH: usize = 16;

thread_local! {
    static DOOR: RefCell<Option<Door>> = const { RefCell::new(None) };
}

/// A pending connection: its socket (to cut it) and its address (for the per-address count).
struct Pending {
    fd: RawFd,
    ip: Option<IpAddr>,
}

/// One shard's front door.
struct Door {
    max_pending: usize,
    max_per_addr: usize,
    reserve: usize,
    trusted: Vec<Cidr>,
    next: u64,
    pending: BTreeMap<u64, Pending>,
    per_addr: HashMap<IpAddr, usize>,
    /// Upgraded WebSocket sessions not yet seen authenticated, by ticket (oldest first).
    sessions: BTreeMap<u64, SessionId>,
    nofile: usize,
    nofile_read: Instant,
    noisy: Noisy,
    shed_since_line: u64,
}

/// Why a connection was turned away at the door.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its address already has `max_pending_per_addr` connections pending.
    PerAddress,
}

/// A connection's place at the door; dropping it (when the connection's task ends) frees it.
/// It must be dropped before the socket is closed (declare it after the stream).
#[derive(Debug)]
pub struct Ticket {
    seq: u64,
}

/// Sets up this shard's door (idempotent); `shards` divides the process-wide limits.
pub fn init(cfg: &Config, shards: usize) {
    let _ = BASE.get_or_init(count_open_fds);
    let share = |v: usize| {
        if v == 0 {
            usize::MAX
        } else {
            v.div_ceil(shards.max(1))
        }
    };
    DOOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(Door {
                max_pending: share(cfg.frontdoor.max_pending),
                max_per_addr: share(cfg.frontdoor.max_pending_per_addr),
                reserve: cfg.frontdoor.fd_reserve,
                trusted: parse_cidrs(&cfg.listen.trusted_proxies).unwrap_or_default(),
                next: 0,
                pending: BTreeMap::new(),
                per_addr: HashMap::new(),
                sessions: BTreeMap::new(),
                nofile: soft_nofile(),
                nofile_read: Instant::now(),
                noisy: Noisy::per_second(cfg.log.noisy_per_sec),
                shed_since_line: 0,
            });
        }
    });
}

/// Admits a connection just accepted on socket `fd` from `ip`: a ticket, or why not (the
/// caller answers and closes). May shed older connections to make room.
pub fn admit(fd: RawFd, ip: Option<IpAddr>) -> Result<Ticket, Refused> {
    OPEN.fetch_add(1, Ordering::Relaxed);
    let (result, shed) = DOOR.with(|d| {
        let mut guard = d.borrow_mut();
        let Some(door) = guard.as_mut() else {
            // No door on this thread (unit tests): admit without bounds.
            return (Ok(Ticket { seq: u64::MAX }), Vec::new());
        };
        door.admit(fd, ip)
    });
    cut(shed);
    result
}

/// Frees descriptors after `accept` failed for want of them: sheds up to a batch of this
/// shard's oldest unauthenticated connections. Returns how many.
pub fn shed_for_descriptors() -> usize {
    let victims = DOOR.with(|d| {
        let mut guard = d.borrow_mut();
        match guard.as_mut() {
            Some(door) => (0..EMFILE_BATCH).filter_map(|_| door.oldest()).collect(),
            None => Vec::new(),
        }
    });
    cut(victims)
}

/// Answers 503 to a refused connection without blocking (its caller then closes it).
pub fn refuse(fd: RawFd) {
    // SAFETY: `fd` is the caller's open socket; the buffer outlives the call; no blocking.
    unsafe {
        libc::send(
            fd,
            SHED_RESPONSE.as_ptr().cast(),
            SHED_RESPONSE.len(),
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
    /// (long poll, static files, monitoring): no longer pending.
    pub fn routed(&self) {
        with_door(|door| door.unpend(self.seq));
    }

    /// The WebSocket handshake was answered for session `sid`: no longer pending, and shed
    /// first near the descriptor limit until it has logged in.
    pub fn upgraded(&self, sid: SessionId) {
        with_door(|door| {
            door.unpend(self.seq);
            door.sessions.insert(self.seq, sid);
        });
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
        let seq = self.seq;
        with_door(|door| {
            door.unpend(seq);
            door.sessions.remove(&seq);
            door.publish();
        });
    }
}

fn with_door(f: impl FnOnce(&mut Door)) {
    // `try_with`: a ticket may be dropped while the thread tears down its locals.
    let _ = DOOR.try_with(|d| {
        if let Ok(mut guard) = d.try_borrow_mut() {
            if let Some(door) = guard.as_mut() {
                f(door);
            }
        }
    });
}

/// A connection chosen to be cut.
enum Victim {
    Pending(RawFd),
    Session(SessionId),
}

impl Door {
    fn admit(&mut self, fd: RawFd, ip: Option<IpAddr>) -> (Result<Ticket, Refused>, Vec<Victim>) {
        let mut victims = Vec::new();
        let ip = ip.filter(|ip| !self.trusted.iter().any(|c| c.contains(*ip)));
        if let Some(ip) = ip {
            if self.per_addr.get(&ip).copied().unwrap_or(0) >= self.max_per_addr {
                with(|ctx| ctx.note_door(false));
                // The caller drops nothing: give the count back here.
                OPEN.fetch_sub(1, Ordering::Relaxed);
                return (Err(Refused::PerAddress), victims);
            }
        }
        if self.pending.len() >= self.max_pending {
            if let Some((_, p)) = self.pending.pop_first() {
                self.forget_addr(p.ip);
                victims.push(Victim::Pending(p.fd));
            }
        }
        if self.near_descriptor_limit() {
            if let Some(v) = self.oldest() {
                victims.push(v);
            }
        } else {
            self.prune_authenticated(2);
        }
        let seq = self.next;
        self.next += 1;
        self.pending.insert(seq, Pending { fd, ip });
        if let Some(ip) = ip {
            *self.per_addr.entry(ip).or_insert(0) += 1;
        }
        if !victims.is_empty() {
            self.shed_since_line += victims.len() as u64;
            if let Some(before) = self.noisy.hit(Instant::now()) {
                tracing::warn!(
                    open = OPEN.load(Ordering::Relaxed),
                    limit = self.nofile,
                    pending = self.pending.len(),
                    suppressed = before,
                    "front door: shed {} unauthenticated connections to make room",
                    self.shed_since_line
                );
                self.shed_since_line = 0;
            }
        }
        self.publish();
        (Ok(Ticket { seq }), victims)
    }

    /// Whether client connections have reached the descriptor limit less the reserve.
    fn near_descriptor_limit(&mut self) -> bool {
        if self.nofile_read.elapsed() >= Duration::from_secs(1) {
            self.nofile = soft_nofile();
            self.nofile_read = Instant::now();
        }
        let base = BASE.get().copied().unwrap_or(0);
        OPEN.load(Ordering::Relaxed) + base + self.reserve >= self.nofile
    }

    /// The oldest unauthenticated connection, taken out of the door's books.
    fn oldest(&mut self) -> Option<Victim> {
        loop {
            let p = self.pending.first_key_value().map(|(k, _)| *k);
            let s = self.sessions.first_key_value().map(|(k, _)| *k);
            match (p, s) {
                (None, None) => return None,
                (Some(p), s) if s.is_none_or(|s| p < s) => {
                    let pending = self.pending.remove(&p).expect("first key");
                    self.forget_addr(pending.ip);
                    return Some(Victim::Pending(pending.fd));
                }
                _ => {
                    let (_, sid) = self.sessions.pop_first().expect("first key");
                    if with(|ctx| ctx.session_authenticated(sid)) == Some(false) {
                        return Some(Victim::Session(sid));
                    }
                }
            }
        }
    }

    /// Drops up to `n` sessions that have logged in from the front of the books, so they
    /// hold only what may still be unauthenticated.
    fn prune_authenticated(&mut self, n: usize) {
        for _ in 0..n {
            let Some((&seq, &sid)) = self.sessions.first_key_value() else {
                return;
            };
            if with(|ctx| ctx.session_authenticated(sid)) == Some(false) {
                return;
            }
            self.sessions.remove(&seq);
        }
    }

    fn unpend(&mut self, seq: u64) {
        if let Some(p) = self.pending.remove(&seq) {
            self.forget_addr(p.ip);
        }
    }

    fn forget_addr(&mut self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        if let Some(n) = self.per_addr.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&ip);
            }
        }
    }

    fn publish(&self) {
        let pending = self.pending.len() as u64;
        let _ = crate::shard::local::try_with(|ctx| ctx.note_pending_connections(pending));
    }
}

/// Cuts the victims; returns how many.
fn cut(victims: Vec<Victim>) -> usize {
    let n = victims.len();
    for v in victims {
        match v {
            Victim::Pending(fd) => {
                // SAFETY: the fd belongs to a live pending connection (its ticket is dropped
                // before its socket closes, and dropping it removes the fd from the books).
                refuse(fd);
                unsafe {
                    libc::shutdown(fd, libc::SHUT_RDWR);
                }
            }
            Victim::Session(sid) => with(|ctx| ctx.shed_session(sid)),
        }
        with(|ctx| ctx.note_door(true));
    }
    n
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
    fn the_shed_response_is_well_formed() {
        let text = std::str::from_utf8(SHED_RESPONSE).unwrap();
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
