//! The front door's books for this shard (`[frontdoor]`, tuning/frontdoor.md): the pending
//! connections (request head or handshake under way) by age and address, and the WebSocket
//! sessions that may not have logged in yet, oldest first. `transport/door.rs` holds the
//! tickets and the sockets; this file decides what to refuse and whom to shed.
//!
//! Limits are per process; the shard enforces its share (`limit / shards`, rounded up).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::Instant;

use crate::config::{parse_cidrs, Cidr, Config};
use crate::ids::SessionId;
use crate::logging::Noisy;
use crate::shard::{CloseReason, ShardCtx};
use crate::stats::ShardStats;

/// A pending connection: its socket (to cut it) and its address (for the per-address count).
struct Pending {
    fd: RawFd,
    ip: Option<IpAddr>,
}

/// One shard's front door.
pub struct Door {
    max_pending: usize,
    max_per_addr: usize,
    trusted: Vec<Cidr>,
    next: u64,
    pending: BTreeMap<u64, Pending>,
    per_addr: HashMap<IpAddr, usize>,
    /// Upgraded WebSocket sessions not yet seen authenticated, by ticket (oldest first).
    sessions: BTreeMap<u64, SessionId>,
    noisy: Noisy,
    shed_since_line: u64,
}

/// Why a connection was turned away at the door.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its address already has `max_pending_per_addr` connections pending.
    PerAddress,
}

impl Door {
    pub(super) fn new(cfg: &Config, shards: usize) -> Door {
        let share = |v: usize| {
            if v == 0 {
                usize::MAX
            } else {
                v.div_ceil(shards.max(1))
            }
        };
        Door {
            max_pending: share(cfg.frontdoor.max_pending),
            max_per_addr: share(cfg.frontdoor.max_pending_per_addr),
            trusted: parse_cidrs(&cfg.listen.trusted_proxies)
                .unwrap_or_default()
                .into_iter()
                .chain(parse_cidrs(&cfg.frontdoor.exempt).unwrap_or_default())
                .collect(),
            next: 0,
            pending: BTreeMap::new(),
            per_addr: HashMap::new(),
            sessions: BTreeMap::new(),
            noisy: Noisy::per_second(cfg.log.noisy_per_sec),
            shed_since_line: 0,
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

    fn pop_oldest_pending(&mut self) -> Option<RawFd> {
        let (_, p) = self.pending.pop_first()?;
        self.forget_addr(p.ip);
        Some(p.fd)
    }
}

impl ShardCtx {
    /// Admits a connection just accepted on socket `fd` from `ip`: its ticket number, or why
    /// not. `near_limit`: the process is near its descriptor limit, so the oldest
    /// unauthenticated connection makes room. Pending sockets to cut go into `cut`.
    pub fn door_admit(
        &mut self,
        fd: RawFd,
        ip: Option<IpAddr>,
        near_limit: bool,
        cut: &mut Vec<RawFd>,
    ) -> Result<u64, Refused> {
        let door = &mut self.door;
        let ip = ip.filter(|ip| !door.trusted.iter().any(|c| c.contains(*ip)));
        if let Some(ip) = ip {
            if door.per_addr.get(&ip).copied().unwrap_or(0) >= door.max_per_addr {
                ShardStats::inc(&self.stats.conn_refused);
                return Err(Refused::PerAddress);
            }
        }
        let mut shed = 0;
        if door.pending.len() >= door.max_pending {
            if let Some(fd) = door.pop_oldest_pending() {
                cut.push(fd);
                shed += 1;
            }
        }
        if near_limit {
            shed += self.shed_oldest(1, cut);
        } else {
            self.prune_authenticated(2);
        }
        let door = &mut self.door;
        let seq = door.next;
        door.next += 1;
        door.pending.insert(seq, Pending { fd, ip });
        if let Some(ip) = ip {
            *door.per_addr.entry(ip).or_insert(0) += 1;
        }
        if shed > 0 {
            self.note_shed(shed);
        }
        self.publish_pending();
        Ok(seq)
    }

    /// Sheds up to `n` of the oldest unauthenticated connections (after `accept` failed for
    /// want of descriptors); pending sockets to cut go into `cut`. Returns how many.
    pub fn door_shed(&mut self, n: usize, cut: &mut Vec<RawFd>) -> usize {
        let shed = self.shed_oldest(n, cut);
        if shed > 0 {
            self.note_shed(shed);
            self.publish_pending();
        }
        shed
    }

    /// Ticket `seq`'s request was routed to an endpoint that bounds itself: no longer pending.
    pub fn door_routed(&mut self, seq: u64) {
        self.door.unpend(seq);
        self.publish_pending();
    }

    /// Ticket `seq` became WebSocket session `sid`: no longer pending, shed first near the
    /// descriptor limit until it logs in.
    pub fn door_upgraded(&mut self, seq: u64, sid: SessionId) {
        self.door.unpend(seq);
        self.door.sessions.insert(seq, sid);
        self.publish_pending();
    }

    /// Ticket `seq`'s connection ended.
    pub fn door_release(&mut self, seq: u64) {
        self.door.unpend(seq);
        self.door.sessions.remove(&seq);
        self.publish_pending();
    }

    /// Cuts the `n` oldest unauthenticated connections: pending ones into `cut`, sessions by
    /// closing their outbox (WebSocket close 1013).
    fn shed_oldest(&mut self, n: usize, cut: &mut Vec<RawFd>) -> usize {
        let mut shed = 0;
        while shed < n {
            let p = self.door.pending.first_key_value().map(|(k, _)| *k);
            let s = self.door.sessions.first_key_value().map(|(k, _)| *k);
            match (p, s) {
                (None, None) => break,
                (Some(p), s) if s.is_none_or(|s| p < s) => {
                    let fd = self.door.pop_oldest_pending().expect("first key");
                    debug_assert!(p < self.door.next);
                    cut.push(fd);
                    shed += 1;
                }
                _ => {
                    let (_, sid) = self.door.sessions.pop_first().expect("first key");
                    if let Some(slot) = self.sessions.get(&sid) {
                        if slot.session.user.is_none() {
                            slot.outbox.close(CloseReason::Shed);
                            shed += 1;
                        }
                    }
                }
            }
        }
        shed
    }

    /// Drops up to `n` sessions that have logged in (or ended) from the front of the books,
    /// so they hold only what may still be unauthenticated.
    fn prune_authenticated(&mut self, n: usize) {
        for _ in 0..n {
            let Some((&seq, &sid)) = self.door.sessions.first_key_value() else {
                return;
            };
            if self
                .sessions
                .get(&sid)
                .is_some_and(|s| s.session.user.is_none())
            {
                return;
            }
            self.door.sessions.remove(&seq);
        }
    }

    fn note_shed(&mut self, n: usize) {
        ShardStats::add(&self.stats.conn_shed, n as u64);
        let door = &mut self.door;
        door.shed_since_line += n as u64;
        if let Some(before) = door.noisy.hit(Instant::now()) {
            tracing::warn!(
                pending = door.pending.len(),
                suppressed = before,
                "front door: shed {} unauthenticated connections to make room",
                door.shed_since_line
            );
            door.shed_since_line = 0;
        }
    }

    fn publish_pending(&self) {
        ShardStats::set(&self.stats.conn_pending, self.door.pending.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::tests::shard;
    use crate::shard::SessionKind;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    fn cfg(toml: &str) -> Config {
        let c: Config = toml::from_str(toml).expect("config");
        c.validate().expect("valid");
        c
    }

    #[test]
    fn one_address_is_refused_past_its_share_and_trusted_proxies_are_not() {
        let mut ctx = shard(cfg(
            "[frontdoor]\nmax_pending_per_addr = 2\n[listen]\ntrusted_proxies = [\"10.0.0.9\"]\n",
        ));
        let mut cut = Vec::new();
        let a = ctx.door_admit(100, ip(1), false, &mut cut).unwrap();
        ctx.door_admit(101, ip(1), false, &mut cut).unwrap();
        assert_eq!(
            ctx.door_admit(102, ip(1), false, &mut cut),
            Err(Refused::PerAddress)
        );
        assert!(ctx.door_admit(103, ip(2), false, &mut cut).is_ok());
        for fd in 104..110 {
            assert!(ctx.door_admit(fd, ip(9), false, &mut cut).is_ok());
        }
        // A routed connection frees its address's place.
        ctx.door_routed(a);
        assert!(ctx.door_admit(110, ip(1), false, &mut cut).is_ok());
        assert!(cut.is_empty());
    }

    #[test]
    fn past_the_cap_the_oldest_pending_is_cut() {
        let mut ctx = shard(cfg("[frontdoor]\nmax_pending = 3\n"));
        let mut cut = Vec::new();
        for fd in 10..13 {
            ctx.door_admit(fd, ip(1), false, &mut cut).unwrap();
        }
        assert!(cut.is_empty());
        ctx.door_admit(13, ip(1), false, &mut cut).unwrap();
        assert_eq!(cut, vec![10]);
        ctx.door_admit(14, ip(1), false, &mut cut).unwrap();
        assert_eq!(cut, vec![10, 11]);
    }

    #[test]
    fn near_the_limit_the_oldest_unauthenticated_goes_first_and_logged_in_sessions_stay() {
        let mut ctx = shard(Config::default());
        let mut cut = Vec::new();
        // Ticket 0: a session that logs in; ticket 1: one that does not; ticket 2: pending.
        let t0 = ctx.door_admit(20, ip(1), false, &mut cut).unwrap();
        let s0 = ctx
            .open_session(SessionKind::WebSocket, "a".into())
            .unwrap();
        ctx.door_upgraded(t0, s0.sid);
        ctx.sessions.get_mut(&s0.sid).unwrap().session.user =
            Some((crate::ids::UserId(1), crate::access::AuthLevel::Auth));
        let t1 = ctx.door_admit(21, ip(1), false, &mut cut).unwrap();
        let s1 = ctx
            .open_session(SessionKind::WebSocket, "b".into())
            .unwrap();
        let out1 = ctx.attach_transport(s1).unwrap();
        ctx.door_upgraded(t1, s1.sid);
        ctx.door_admit(22, ip(1), false, &mut cut).unwrap();
        // Near the limit: the logged-in session is skipped, the unauthenticated one is shed.
        ctx.door_admit(23, ip(1), true, &mut cut).unwrap();
        assert!(cut.is_empty());
        assert!(out1.is_closed(), "the unauthenticated session was shed");
        // Next: the oldest pending connection.
        ctx.door_admit(24, ip(1), true, &mut cut).unwrap();
        assert_eq!(cut, vec![22]);
        assert_eq!(ctx.door_shed(16, &mut cut), 2);
        assert_eq!(cut, vec![22, 23, 24]);
        assert_eq!(
            ctx.stats
                .conn_shed
                .load(std::sync::atomic::Ordering::Relaxed),
            4
        );
    }
}
