//! The shard's side of the limits (`[limits]`, `tuning/limits.md`): the per-address bucket of
//! password logins and account creations, the count of each user's sessions kept by the
//! shard that is home to the user's `me`, the refusal of requests while a session's outbox is
//! backed up, and the deadlines of background sessions turning foreground.
//!
//! The per-session buckets are the session's own (`session/limits.rs`); what lives here needs
//! a table shared by sessions or a clock-driven index. Every table is bounded: addresses by
//! `limits.addr_table_max` (full buckets are forgotten), user counts by the live sessions.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use crate::access::AuthLevel;
use crate::ids::{SessionId, UnixMillis, UserId};
use crate::proto::{Decoded, Frame, Outcome, ServerMsg};
use crate::routing::{home_shard, me_topic, Envelope, UserSessions};
use crate::session::limits::{Rate, TokenBucket};
use crate::shard::ShardCtx;
use crate::stats::ShardStats;

/// A remote address as a rate-limit key: IPv4 as itself, IPv6 by its /64 (one subscriber's
/// usual allocation, so hopping addresses inside it does not help).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AddrKey(u128);

impl AddrKey {
    /// The key of a transport's remote string (`ip:port`, `[v6]:port` or a bare address);
    /// `None` when it names no IP address (then only the per-session bucket applies).
    pub(crate) fn of(remote: &str) -> Option<AddrKey> {
        let ip = remote
            .parse::<SocketAddr>()
            .map(|a| a.ip())
            .or_else(|_| remote.parse::<IpAddr>())
            .ok()?;
        Some(match ip {
            IpAddr::V4(v4) => AddrKey(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(u128::from(u32::from(v4))),
                None => AddrKey(u128::from(v6) & !0xffff_ffff_ffff_ffffu128),
            },
        })
    }
}

/// Per-address buckets of one shard, bounded. When the table is full of addresses that are
/// still refilling, the others share one overflow bucket: a flood from many addresses is
/// slowed as a whole, and addresses already known keep their own bucket.
pub(crate) struct AddrTable {
    rate: Rate,
    max: usize,
    buckets: HashMap<AddrKey, TokenBucket>,
    overflow: TokenBucket,
}

impl AddrTable {
    pub(crate) fn new(rate: Rate, max: usize) -> AddrTable {
        AddrTable {
            rate,
            max,
            buckets: HashMap::new(),
            overflow: TokenBucket::full(rate, UnixMillis(0)),
        }
    }

    /// Takes a token for `key` at `now`.
    pub(crate) fn take(&mut self, key: AddrKey, now: UnixMillis) -> bool {
        let rate = self.rate;
        if rate.per_min == 0 {
            return true;
        }
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max {
            self.evict_full(now);
        }
        if let Some(b) = self.buckets.get_mut(&key) {
            return b.take(rate, now);
        }
        if self.buckets.len() >= self.max {
            return self.overflow.take(rate, now);
        }
        let mut b = TokenBucket::full(rate, now);
        let ok = b.take(rate, now);
        self.buckets.insert(key, b);
        ok
    }

    /// Forgets the addresses whose bucket has refilled (they are the same as unknown ones).
    pub(crate) fn evict_full(&mut self, now: UnixMillis) {
        let rate = self.rate;
        self.buckets.retain(|_, b| !b.is_full(rate, now));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// The shard's limit state.
pub(crate) struct ShardLimits {
    pub(crate) addrs: AddrTable,
    /// Background sessions of this shard by the time they turn foreground.
    pub(crate) foreground_due: BTreeSet<(UnixMillis, SessionId)>,
    /// Logins that succeeded and wait for the user's home shard to grant a session slot:
    /// the reply to send and the level to authenticate at.
    pub(crate) claims: HashMap<SessionId, (Frame, AuthLevel)>,
    /// Home shard only: the sessions holding a slot, per user (`limits.max_sessions_per_user`).
    pub(crate) user_slots: HashMap<UserId, Vec<SessionId>>,
}

impl ShardLimits {
    pub(crate) fn new(cfg: &crate::config::Config) -> ShardLimits {
        let l = &cfg.limits;
        ShardLimits {
            addrs: AddrTable::new(
                Rate::per_min(l.addr_auth_per_min, l.addr_auth_burst),
                l.addr_table_max,
            ),
            foreground_due: BTreeSet::new(),
            claims: HashMap::new(),
            user_slots: HashMap::new(),
        }
    }
}

impl ShardCtx {
    /// The per-address bucket of password logins and account creations; on refusal the
    /// session is answered `429` and its attempt is over.
    pub(super) fn admit_auth_from(
        &mut self,
        sid: SessionId,
        id: Option<&str>,
        now: UnixMillis,
    ) -> bool {
        let Some(slot) = self.sessions.get_mut(&sid) else {
            return false;
        };
        let Some(key) = AddrKey::of(slot.session.remote()) else {
            return true;
        };
        if self.limits.addrs.take(key, now) {
            return true;
        }
        slot.session.auth_finished();
        ShardStats::inc(&self.stats.limited);
        let frame = Frame::new(Outcome::TooManyRequests.ctrl(id, None, now).msg());
        self.push_frame(sid, frame);
        false
    }

    /// Refuses a client message with `429` when the session's outbox already holds a quarter
    /// of its frame limit (a client that sends without reading, a long-poll client that does
    /// not poll). Refusals are queued only while the outbox is less than half full and dropped
    /// beyond (never ending the session), so the other half stays free for the replies to
    /// requests admitted earlier: at most `limits.msg_burst` at once, two frames each, which
    /// `Config::validate` keeps within half the limit.
    pub(super) fn refuse_backed_up(
        &mut self,
        sid: SessionId,
        msg: &Decoded,
        now: UnixMillis,
    ) -> bool {
        let Some(slot) = self.sessions.get(&sid) else {
            return false;
        };
        let max = self.cfg.session.outbound_max_frames;
        if slot.outbox.len() * 4 < max {
            return false;
        }
        ShardStats::inc(&self.stats.limited);
        if matches!(msg.msg, crate::proto::client::ClientMsg::Note(_)) {
            return true;
        }
        let frame = Frame::new(
            Outcome::TooManyRequests
                .ctrl(msg.msg.id(), msg.msg.topic(), now)
                .msg(),
        );
        if slot.outbox.len() * 2 < max && slot.outbox.push(frame.encoded(slot.encoding)).is_ok() {
            ShardStats::inc(&self.stats.frames_out);
        }
        true
    }

    /// `SessionOut::WakeAt`: remember when a background session turns foreground.
    pub(super) fn wake_at(&mut self, sid: SessionId, at: UnixMillis) {
        self.limits.foreground_due.insert((at, sid));
    }

    /// Turns the background sessions whose delay has passed foreground (housekeeping).
    pub(super) fn wake_due(&mut self, now: UnixMillis) {
        while self
            .limits
            .foreground_due
            .first()
            .is_some_and(|(at, _)| *at <= now)
        {
            let Some((_, sid)) = self.limits.foreground_due.pop_first() else {
                break;
            };
            let mut out = std::mem::take(&mut self.session_out);
            if let Some(slot) = self.sessions.get_mut(&sid) {
                slot.session.wake(now, &mut out);
            }
            self.apply_session_out(sid, &mut out);
            self.session_out = out;
        }
    }

    /// A login of `sid` as `uid` succeeded: with a per-user session limit the reply waits for
    /// the user's home shard to grant a slot; without one it is applied at once.
    pub(super) fn authenticated(
        &mut self,
        sid: SessionId,
        uid: UserId,
        level: AuthLevel,
        frame: Frame,
    ) {
        if self.cfg.limits.max_sessions_per_user == 0 {
            if let Some(slot) = self.sessions.get_mut(&sid) {
                slot.session.authenticated(uid, level);
            }
            self.push_frame(sid, frame);
            return;
        }
        if !self.sessions.contains_key(&sid) {
            return;
        }
        self.limits.claims.insert(sid, (frame, level));
        let home = self.user_home(uid);
        self.send(
            home,
            Envelope::UserSessions(UserSessions::Claim { uid, sid }),
        );
    }

    /// A session ended (its slot already removed): forget its deadline and claim, and give
    /// its user's session slot back.
    pub(super) fn session_gone(
        &mut self,
        sid: SessionId,
        uid: Option<UserId>,
        foreground_at: Option<UnixMillis>,
    ) {
        self.limits.claims.remove(&sid);
        if let Some(at) = foreground_at {
            self.limits.foreground_due.remove(&(at, sid));
        }
        if let (Some(uid), true) = (uid, self.cfg.limits.max_sessions_per_user > 0) {
            let home = self.user_home(uid);
            self.send(
                home,
                Envelope::UserSessions(UserSessions::Release { uid, sid }),
            );
        }
    }

    fn user_home(&self, uid: UserId) -> crate::ids::ShardId {
        home_shard(&me_topic(uid), self.n_shards)
    }

    /// `Envelope::UserSessions`: claims and releases at the user's home shard, answers at the
    /// session's shard.
    pub(super) fn user_sessions(&mut self, m: UserSessions) {
        match m {
            UserSessions::Claim { uid, sid } => {
                let max = self.cfg.limits.max_sessions_per_user;
                let slots = self.limits.user_slots.entry(uid).or_default();
                let ok = max == 0 || slots.len() < max || slots.contains(&sid);
                if ok && !slots.contains(&sid) {
                    slots.push(sid);
                }
                if slots.is_empty() {
                    self.limits.user_slots.remove(&uid);
                }
                self.send(
                    sid.shard(),
                    Envelope::UserSessions(UserSessions::Granted { uid, sid, ok }),
                );
            }
            UserSessions::Release { uid, sid } => {
                if let Some(slots) = self.limits.user_slots.get_mut(&uid) {
                    slots.retain(|s| *s != sid);
                    if slots.is_empty() {
                        self.limits.user_slots.remove(&uid);
                    }
                }
            }
            UserSessions::Granted { uid, sid, ok } => {
                let claim = self.limits.claims.remove(&sid);
                let slot = self.sessions.get_mut(&sid);
                let (Some((frame, level)), Some(slot)) = (claim, slot) else {
                    // The session ended while the claim travelled: give the slot back.
                    if ok {
                        let home = self.user_home(uid);
                        self.send(
                            home,
                            Envelope::UserSessions(UserSessions::Release { uid, sid }),
                        );
                    }
                    return;
                };
                if ok {
                    slot.session.authenticated(uid, level);
                    self.push_frame(sid, frame);
                    return;
                }
                slot.session.auth_finished();
                ShardStats::inc(&self.stats.limited);
                let id = match frame.msg() {
                    ServerMsg::Ctrl(c) => c.id.clone(),
                    _ => None,
                };
                log::info!("session {sid}: {uid} has too many sessions, login refused");
                let refusal = Outcome::PolicyViolation
                    .ctrl(id.as_deref(), None, crate::shard::now())
                    .param("what", "sessions")
                    .msg();
                self.push_frame(sid, Frame::new(refusal));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::shard::tests::shard;
    use crate::shard::{now, Outbox, SessionKind};
    use std::rc::Rc;

    const ALICE: UserId = UserId(0x0102_0304_0506_0708);

    fn drain(o: &Outbox) -> Vec<serde_json::Value> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut got = Vec::new();
        let _ = o.poll_drain(&mut cx, &mut got);
        got.iter()
            .map(|b| serde_json::from_slice(b).expect("JSON frames"))
            .collect()
    }

    fn open(sh: &mut ShardCtx, remote: &str) -> (SessionId, Rc<Outbox>) {
        let h = sh
            .open_session(SessionKind::WebSocket, remote.into())
            .expect("open");
        let o = sh.attach_transport(h).expect("attach");
        (h.sid, o)
    }

    fn feed(sh: &mut ShardCtx, sid: SessionId, frame: &str) {
        sh.client_msg(sid, crate::proto::decode(frame.as_bytes()));
    }

    fn login_ok(id: &str) -> Frame {
        Frame::new(Outcome::Ok.ctrl(Some(id), None, now()).msg())
    }

    #[test]
    fn sessions_per_user_are_counted_at_the_users_home_and_given_back() {
        let mut cfg = Config::default();
        cfg.limits.max_sessions_per_user = 2;
        let mut sh = shard(cfg);
        let s: Vec<(SessionId, Rc<Outbox>)> = (0..3)
            .map(|i| open(&mut sh, &format!("10.0.0.{i}:1")))
            .collect();
        for (i, (sid, _)) in s.iter().enumerate() {
            sh.authenticated(*sid, ALICE, AuthLevel::Auth, login_ok(&format!("l{i}")));
            sh.run_work();
        }
        for (sid, o) in &s[..2] {
            assert_eq!(
                sh.sessions[sid].session.user(),
                Some((ALICE, AuthLevel::Auth))
            );
            assert_eq!(drain(o)[0]["ctrl"]["code"], 200);
        }
        let (s3, o3) = &s[2];
        assert_eq!(sh.sessions[s3].session.user(), None, "the third is refused");
        let f = drain(o3);
        assert_eq!(
            (
                &f[0]["ctrl"]["code"],
                &f[0]["ctrl"]["text"],
                &f[0]["ctrl"]["id"]
            ),
            (
                &serde_json::json!(422),
                &serde_json::json!("policy violation"),
                &serde_json::json!("l2")
            )
        );
        assert!(
            sh.sessions.contains_key(s3),
            "and lives on: it may log in later"
        );
        assert_eq!(sh.limits.user_slots[&ALICE].len(), 2);
        // A session that ends gives its slot back; the refused one gets it now.
        sh.close_session(s[0].0);
        sh.authenticated(*s3, ALICE, AuthLevel::Auth, login_ok("again"));
        sh.run_work();
        assert_eq!(
            sh.sessions[s3].session.user(),
            Some((ALICE, AuthLevel::Auth))
        );
        assert_eq!(drain(o3)[0]["ctrl"]["code"], 200);
        for sid in [s[1].0, *s3] {
            sh.close_session(sid);
        }
        assert!(
            sh.limits.user_slots.is_empty(),
            "nothing kept for users without sessions"
        );
        assert!(sh.limits.claims.is_empty());
    }

    #[test]
    fn a_backed_up_outbox_refuses_requests_without_ending_the_session() {
        let mut cfg = Config::default();
        cfg.session.outbound_max_frames = 16;
        cfg.limits.msg_burst = 4;
        let mut sh = shard(cfg);
        let (sid, o) = open(&mut sh, "10.0.0.1:1");
        feed(&mut sh, sid, r#"{"hi":{"id":"1","ver":"0.25"}}"#);
        assert_eq!(drain(&o).len(), 1);
        // A quarter full: requests are refused, their refusals are queued.
        for _ in 0..4 {
            sh.push_frame(sid, login_ok("x"));
        }
        feed(
            &mut sh,
            sid,
            r#"{"get":{"id":"g","topic":"me","what":"desc"}}"#,
        );
        assert_eq!(o.len(), 5);
        // Half full: refusals are dropped (the rest is for replies), the session lives on.
        for _ in 0..3 {
            sh.push_frame(sid, login_ok("x"));
        }
        feed(
            &mut sh,
            sid,
            r#"{"get":{"id":"h","topic":"me","what":"desc"}}"#,
        );
        assert!(sh.sessions.contains_key(&sid));
        let f = drain(&o);
        assert_eq!(f.len(), 8);
        assert_eq!(
            (&f[4]["ctrl"]["code"], &f[4]["ctrl"]["id"]),
            (&serde_json::json!(429), &serde_json::json!("g"))
        );
        // Drained: handled again (a second `{hi}` before login is 401, not 429).
        feed(&mut sh, sid, r#"{"hi":{"id":"2","ver":"0.25"}}"#);
        assert_eq!(drain(&o)[0]["ctrl"]["code"], 401);
    }

    #[test]
    fn password_logins_are_limited_per_address_across_sessions() {
        let mut cfg = Config::default();
        cfg.limits.auth_per_min = 0;
        cfg.limits.addr_auth_per_min = 60;
        cfg.limits.addr_auth_burst = 2;
        cfg.auth.bcrypt_cost = 4;
        let mut sh = shard(cfg);
        let login = r#"{"login":{"id":"l","scheme":"basic","secret":"YWxpY2U6YWxpY2UxMjM="}}"#;
        let mut outs = Vec::new();
        for remote in ["10.0.0.1:1", "10.0.0.1:2", "10.0.0.1:3", "10.0.0.2:1"] {
            let (sid, o) = open(&mut sh, remote);
            feed(&mut sh, sid, r#"{"hi":{"id":"1","ver":"0.25"}}"#);
            drain(&o);
            feed(&mut sh, sid, login);
            outs.push((sid, o));
        }
        // The first two reached the account machine (no such user: 401, once the hash pool
        // checked the password against the dummy hash); the third address-mate is refused at
        // once; another address is not affected.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while [0, 1, 3].iter().any(|&i| outs[i].1.is_empty()) {
            assert!(
                std::time::Instant::now() < deadline,
                "no answer from the hash pool"
            );
            let (mut locals, mut envs) = (Vec::new(), Vec::new());
            sh.link.drain(64, &mut locals, &mut envs);
            sh.handle_received(&mut locals, &mut envs);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let code = |o: &Outbox| drain(o)[0]["ctrl"]["code"].clone();
        assert_eq!(code(&outs[0].1), 401);
        assert_eq!(code(&outs[1].1), 401);
        let f = drain(&outs[2].1);
        assert_eq!(
            (&f[0]["ctrl"]["code"], &f[0]["ctrl"]["id"]),
            (&serde_json::json!(429), &serde_json::json!("l"))
        );
        assert!(
            !sh.sessions[&outs[2].0].session.auth_pending,
            "it may try again later"
        );
        assert_eq!(code(&outs[3].1), 401);
    }

    #[test]
    fn housekeeping_turns_background_sessions_foreground_at_their_deadline() {
        let mut sh = shard(Config::default());
        let (sid, _o) = open(&mut sh, "10.0.0.1:1");
        feed(&mut sh, sid, r#"{"hi":{"id":"1","ver":"0.25","bkg":true}}"#);
        assert!(sh.sessions[&sid].session.is_background());
        assert_eq!(sh.limits.foreground_due.len(), 1);
        let t = now();
        sh.housekeeping_at(t);
        assert!(
            sh.sessions[&sid].session.is_background(),
            "5 s have not passed"
        );
        sh.housekeeping_at(t.plus_ms(5_001));
        assert!(!sh.sessions[&sid].session.is_background());
        assert!(sh.limits.foreground_due.is_empty());
        // A background session that ends leaves nothing in the index.
        let (sid2, _o2) = open(&mut sh, "10.0.0.1:2");
        feed(
            &mut sh,
            sid2,
            r#"{"hi":{"id":"1","ver":"0.25","bkg":true}}"#,
        );
        assert_eq!(sh.limits.foreground_due.len(), 1);
        sh.close_session(sid2);
        assert!(sh.limits.foreground_due.is_empty());
    }

    #[test]
    fn addresses_key_by_ip_and_ipv6_by_its_64() {
        let a = AddrKey::of("10.1.2.3:5555").unwrap();
        assert_eq!(Some(a), AddrKey::of("10.1.2.3:6666"));
        assert_eq!(Some(a), AddrKey::of("[::ffff:10.1.2.3]:1"));
        assert_ne!(Some(a), AddrKey::of("10.1.2.4:5555"));
        let v6 = AddrKey::of("[2001:db8:1:2::1]:443").unwrap();
        assert_eq!(Some(v6), AddrKey::of("[2001:db8:1:2:ffff::9]:80"));
        assert_ne!(Some(v6), AddrKey::of("[2001:db8:1:3::1]:443"));
        assert_eq!(AddrKey::of("test"), None);
    }

    #[test]
    fn the_address_table_is_bounded_and_forgets_idle_addresses() {
        let rate = Rate::per_min(60, 2);
        let mut t = AddrTable::new(rate, 2);
        let t0 = UnixMillis(1_000_000);
        let (a, b, c) = (AddrKey(1), AddrKey(2), AddrKey(3));
        assert!(t.take(a, t0) && t.take(a, t0));
        assert!(!t.take(a, t0), "a's burst is spent");
        assert!(t.take(b, t0));
        assert_eq!(t.len(), 2);
        // Full of active addresses: a third shares the overflow bucket, the table stays at 2.
        assert!(t.take(c, t0) && t.take(AddrKey(4), t0));
        assert!(!t.take(AddrKey(5), t0), "the overflow bucket is shared");
        assert_eq!(t.len(), 2);
        // Once a and b have refilled they are forgotten and c gets its own bucket.
        let later = t0.plus_ms(2_000);
        assert!(t.take(c, later));
        assert!(t.len() <= 2);
        t.evict_full(later.plus_ms(10_000));
        assert_eq!(t.len(), 0, "every bucket refilled: nothing is kept");
    }
}
