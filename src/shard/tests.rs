//! Shard-level tests without executors or sockets: a [`ShardCtx`] over an in-memory store,
//! driven through its entry points (sessions that outlive their transports, handles, expiry).

use std::sync::Arc;

use super::*;
use crate::auth::apikey::ApiKeyChecker;
use crate::ids::SessionHandle;
use crate::store::{RedbStore, WriterConfig};

/// One shard of one, with real writer and hash threads over an in-memory store.
pub(super) fn shard(cfg: Config) -> ShardCtx {
    let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory());
    let (writer, _join) =
        StoreWriter::spawn(store.clone(), WriterConfig::default()).expect("writer thread");
    let (hasher, _hjoin) = HashPool::spawn(1, 16, crate::auth::hasher::HashPriority::Nice(0));
    let (mut links, services) = mesh::build(1, 16);
    let stats = Arc::new(ShardStats::default());
    ShardCtx::new(ShardInit {
        id: ShardId(0),
        n_shards: 1,
        cfg: Arc::new(cfg),
        link: links.remove(0),
        service: services[0].clone(),
        store,
        writer,
        readers: None,
        hasher,
        tokens: TokenIssuer::new(vec![7u8; 32], 1, 3600),
        api_keys: Arc::new(ApiKeyChecker::from_base64("AAAA").expect("salt")),
        stats: stats.clone(),
        all_stats: Arc::new(vec![stats]),
        process: Arc::new(crate::stats::ProcessStats::default()),
        hi_params: serde_json::json!({}),
        cluster: None,
    })
}

const IDLE: u64 = 70_000;

#[test]
fn a_session_outlives_its_transport_until_the_idle_time() {
    let mut sh = shard(Config::default());
    let t0 = UnixMillis(1_000_000);
    let h = sh
        .open_session_at(SessionKind::LongPoll, "test".into(), t0)
        .expect("open");
    assert_eq!(h.sid.shard(), ShardId(0), "the id names its home shard");
    let outbox = sh.attach_transport(h).expect("attach");
    sh.detach_transport_at(h.sid, t0);
    // Between requests: queued output is kept.
    sh.push_frame(h.sid, Frame::new(Outcome::Ok.ctrl(None, None, t0).msg()));
    assert_eq!(outbox.len(), 1);
    sh.housekeeping_at(t0.plus_ms(IDLE - 1));
    let again = sh
        .attach_transport(h)
        .expect("still alive just before the idle time");
    assert!(
        Rc::ptr_eq(&again, &outbox),
        "the same outbox, with its frame"
    );
    assert_eq!(again.len(), 1);
    // Attached transports keep it alive however long.
    sh.housekeeping_at(t0.plus_ms(10 * IDLE));
    assert!(sh.sessions.contains_key(&h.sid));
    // The idle time counts from the last detach.
    let t1 = t0.plus_ms(10 * IDLE);
    sh.detach_transport_at(h.sid, t1);
    sh.housekeeping_at(t1.plus_ms(IDLE));
    assert!(!sh.sessions.contains_key(&h.sid), "expired");
    assert!(sh.detached.is_empty());
    assert!(
        sh.attach_transport(h).is_none(),
        "an expired handle finds nothing"
    );
}

#[test]
fn concurrent_transports_all_have_to_leave() {
    let mut sh = shard(Config::default());
    let t0 = UnixMillis(5_000);
    let h = sh
        .open_session_at(SessionKind::LongPoll, "t".into(), t0)
        .unwrap();
    sh.attach_transport(h).unwrap();
    sh.attach_transport(h).unwrap();
    sh.detach_transport_at(h.sid, t0);
    sh.housekeeping_at(t0.plus_ms(2 * IDLE));
    assert!(
        sh.sessions.contains_key(&h.sid),
        "one poll is still attached"
    );
    sh.detach_transport_at(h.sid, t0.plus_ms(2 * IDLE));
    sh.housekeeping_at(t0.plus_ms(3 * IDLE));
    assert!(!sh.sessions.contains_key(&h.sid));
}

#[test]
fn a_session_nobody_attaches_to_expires_too() {
    let mut sh = shard(Config::default());
    let t0 = UnixMillis(9_000);
    let h = sh
        .open_session_at(SessionKind::LongPoll, "t".into(), t0)
        .unwrap();
    sh.housekeeping_at(t0.plus_ms(IDLE));
    assert!(!sh.sessions.contains_key(&h.sid));
}

#[test]
fn handles_are_random_and_need_their_secret() {
    let mut sh = shard(Config::default());
    let a = sh.open_session(SessionKind::WebSocket, "a".into()).unwrap();
    let b = sh.open_session(SessionKind::WebSocket, "b".into()).unwrap();
    assert_ne!(a.sid, b.sid);
    assert_ne!(a.secret, b.secret);
    // Not a counter: the low 48 bits of consecutive ids are far apart.
    let low = |h: SessionHandle| h.sid.0 & 0xffff_ffff_ffff;
    assert!(low(a).abs_diff(low(b)) > 1_000);
    let forged = SessionHandle {
        sid: a.sid,
        secret: a.secret ^ 1,
    };
    assert!(sh.attach_transport(forged).is_none());
    assert!(sh.attach_transport(a).is_some());
}

#[test]
fn client_messages_come_decoded_from_any_transport() {
    let mut sh = shard(Config::default());
    let h = sh.open_session(SessionKind::LongPoll, "t".into()).unwrap();
    let outbox = sh.attach_transport(h).unwrap();
    let hi = crate::proto::decode(br#"{"hi":{"id":"1","ver":"0.25"}}"#);
    sh.client_msg(h.sid, hi);
    sh.client_msg(h.sid, Err(crate::proto::DecodeError::Malformed("x".into())));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut got = Vec::new();
    let _ = outbox.poll_drain(&mut cx, &mut got);
    let texts: Vec<String> = got
        .iter()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].contains("\"code\":200"),
        "long poll {{hi}} is 200: {}",
        texts[0]
    );
    assert!(texts[1].contains("\"code\":400"), "{}", texts[1]);
}

/// The task that ends the executor sleeps until shutdown drains the shard, and is woken by the
/// shutdown step itself: an idle shard is not polled on a timer.
#[test]
fn the_drain_waiter_is_woken_by_shutdown_not_by_a_timer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let mut sh = shard(Config::default());
    let h = sh.open_session(SessionKind::WebSocket, "t".into()).unwrap();
    sh.attach_transport(h).unwrap();
    assert_eq!(sh.poll_drained(&mut cx), Poll::Pending);
    sh.housekeeping();
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        0,
        "nothing wakes it while serving"
    );
    sh.begin_shutdown();
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(sh.poll_drained(&mut cx), Poll::Ready(()));
    assert!(sh
        .open_session(SessionKind::WebSocket, "late".into())
        .is_none());
}

/// Long-poll requests on the session's own shard, answered within the step (no hold needed):
/// a message, a probe, polls of queued frames, a wrong secret, an ended session's last frame.
#[test]
fn long_poll_requests_answered_within_the_step() {
    use crate::routing::{LpAnswer, LpRequest};
    let mut sh = shard(Config::default());
    let h = sh
        .open_session(SessionKind::LongPoll, "t".into())
        .expect("open");
    let ask = |sh: &mut ShardCtx, h: SessionHandle, req| {
        let w = sh.longpoll(h, req);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match w.poll_answer(&mut cx) {
            std::task::Poll::Ready(a) => a,
            std::task::Poll::Pending => panic!("not answered within the step"),
        }
    };
    let hi = crate::proto::decode(br#"{"hi":{"id":"1","ver":"0.25"}}"#);
    assert_eq!(
        ask(&mut sh, h, LpRequest::Send(Box::new(hi))),
        LpAnswer::Accepted
    );
    assert_eq!(ask(&mut sh, h, LpRequest::Probe), LpAnswer::Accepted);
    let LpAnswer::Frame(f) = ask(&mut sh, h, LpRequest::Poll) else {
        panic!("the hi reply");
    };
    assert!(f.starts_with(br#"{"ctrl":{"id":"1""#), "{f:?}");
    assert_eq!(
        ask(&mut sh, h, LpRequest::Poll),
        LpAnswer::Frame(bytes::Bytes::from_static(b"0"))
    );
    let forged = SessionHandle {
        secret: h.secret ^ 1,
        ..h
    };
    assert_eq!(ask(&mut sh, forged, LpRequest::Poll), LpAnswer::Invalid);
    assert_eq!(sh.stats.lp_in.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(
        sh.stats.lp_out.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(sh.sessions[&h.sid].transports, 0, "every request detached");
    // Ended with a frame queued: the next poll gets it, the one after is refused.
    sh.push_frame(h.sid, Frame::new(Outcome::Ok.ctrl(None, None, now()).msg()));
    sh.close_session(h.sid);
    assert_eq!(
        ask(
            &mut sh,
            h,
            LpRequest::Send(Box::new(crate::proto::decode(b"{}")))
        ),
        LpAnswer::Invalid
    );
    assert!(matches!(
        ask(&mut sh, h, LpRequest::Poll),
        LpAnswer::Frame(_)
    ));
    assert_eq!(ask(&mut sh, h, LpRequest::Poll), LpAnswer::Invalid);
    assert!(sh.lp_waits.is_empty() && sh.lp_closing.is_empty());
}

#[test]
fn stats_follow_sessions_replies_and_readiness() {
    use crate::stats::get;
    let mut sh = shard(Config::default());
    let h = sh
        .open_session(SessionKind::WebSocket, "10.0.0.1:1".into())
        .unwrap();
    let outbox = sh.attach_transport(h).unwrap();
    assert_eq!(
        get(&sh.stats.sessions_by_kind[0]),
        1,
        "one WebSocket session"
    );
    sh.client_frame(h.sid, br#"{"hi":{"id":"7","ver":"0.25"}}"#);
    sh.client_frame(h.sid, b"not json");
    assert_eq!(outbox.len(), 2, "hi and malformed answered");
    assert_eq!(get(&sh.stats.ctrl_codes[0]), 1, "hi's 201 carries its id");
    assert_eq!(get(&sh.stats.malformed), 1);
    let lat = sh.stats.request_latency.snapshot();
    assert_eq!(lat.count, 1, "the hi was timed: {lat:?}");
    assert_eq!(sh.stats.outgoing_size.snapshot().count, 2);
    assert!(sh.sessions[&h.sid].inflight.is_none(), "nothing unanswered");
    // Readiness reads flags only.
    assert_eq!(sh.readiness(), Err("store not open".into()));
    sh.process
        .store_open
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(sh.readiness(), Err("shards not accepting: 0".into()));
    sh.set_accepting();
    assert_eq!(sh.readiness(), Ok(()));
    assert!(sh
        .metrics_text()
        .contains("coretalk_sessions{shard=\"0\",kind=\"ws\"} 1\n"));
    sh.close_session(h.sid);
    assert_eq!(get(&sh.stats.sessions_by_kind[0]), 0);
    sh.begin_shutdown();
    assert!(sh.readiness().is_err(), "a stopping shard is not ready");
}

#[test]
fn a_session_slot_stays_small() {
    // One per session in the shard's table, spare buckets included (W1): 48 bytes, with the
    // 8-byte key a 56-byte bucket (64 with the expiry as an `Option<UnixMillis>`).
    let size = std::mem::size_of::<super::SessionSlot>();
    assert!(size <= 48, "SessionSlot is {size} bytes");
}
