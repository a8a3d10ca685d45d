//! Tests of the storage thread: ordering, grouping, bounds, refusal, shutdown, and the
//! acknowledged-before-applied path (lingering groups, the read barrier).

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use crossbeam_channel::{Receiver, Sender};

use super::*;
use crate::ids::{UnixMillis, UserId};
use crate::store::testing::HookedStore;
use crate::store::{MessageQuery, MessageRecord, ReadQuery, RedbStore, WriteOp};

fn msg(topic: &str, seq: u64) -> WriteOp {
    WriteOp::AppendMessage(MessageRecord {
        topic: topic.into(),
        seq,
        ts: UnixMillis(seq),
        from: UserId(1),
        head: None,
        content: format!("\"m{seq}\""),
        deleted: false,
    })
}

fn spawn(store: Arc<dyn Store>, cfg: WriterConfig) -> (StoreWriter, WriterJoin) {
    StoreWriter::spawn(store, cfg).unwrap()
}

/// The hook of a [`HookedStore`] that holds every `apply` until the gate opens (its sender
/// is dropped), announcing each entry and recording the size of each group.
type Gate = Box<dyn Fn(&[WriteBatch]) + Send + Sync>;

/// A gated store: the store, the announcements of each `apply`, the gate (drop it to open),
/// and the size of each group committed.
#[allow(clippy::type_complexity)]
fn gate_store() -> (
    Arc<HookedStore<Gate>>,
    Receiver<()>,
    Sender<()>,
    Arc<Mutex<Vec<usize>>>,
) {
    let (entered_tx, entered_rx) = crossbeam_channel::unbounded();
    let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
    let groups = Arc::new(Mutex::new(Vec::new()));
    let seen = groups.clone();
    let hook: Gate = Box::new(move |batches: &[WriteBatch]| {
        let _ = entered_tx.send(());
        let _ = gate_rx.recv();
        seen.lock()
            .unwrap()
            .push(batches.iter().map(Vec::len).sum());
    });
    let store = HookedStore {
        inner: RedbStore::in_memory(),
        hook,
    };
    (Arc::new(store), entered_rx, gate_tx, groups)
}

#[test]
fn completes_in_submission_order_with_each_result() {
    let store = Arc::new(RedbStore::in_memory());
    let (w, join) = spawn(store.clone(), WriterConfig::default());
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..200u64 {
        // Every 10th batch duplicates the previous message and must conflict.
        let seq = if i % 10 == 9 { i } else { i + 1 };
        let log = Arc::clone(&log);
        w.submit(
            vec![msg("grpA", seq)],
            Box::new(move |r| log.lock().unwrap().push((i, r))),
        )
        .unwrap();
    }
    drop(w);
    join.join().unwrap();
    let log = log.lock().unwrap();
    let order: Vec<u64> = log.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, (0..200).collect::<Vec<_>>());
    for (i, r) in log.iter() {
        if i % 10 == 9 {
            assert!(matches!(r, Err(StoreError::Conflict(_))), "{i}: {r:?}");
        } else {
            assert_eq!(r, &Ok(()), "{i}");
        }
    }
    let q = MessageQuery {
        since: None,
        before: None,
        limit: 1000,
        exclude: vec![],
    };
    assert_eq!(store.messages("grpA", q).unwrap().len(), 180);
}

#[test]
fn groups_concurrent_submissions_into_fewer_commits() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 500;
    let store = Arc::new(RedbStore::in_memory());
    let (w, join) = spawn(store.clone(), WriterConfig::default());
    let completed: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let w = w.clone();
            let completed = Arc::clone(&completed);
            std::thread::spawn(move || {
                for seq in 1..=PER_THREAD {
                    let completed = Arc::clone(&completed);
                    let done: Completion = Box::new(move |r| {
                        assert_eq!(r, Ok(()));
                        completed.lock().unwrap().push((t, seq));
                    });
                    w.submit(vec![msg(&format!("grp{t}"), seq)], done).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let stats = Arc::clone(w.stats());
    drop(w);
    join.join().unwrap();

    let s = stats.snapshot();
    assert_eq!(s.batches, THREADS * PER_THREAD);
    assert_eq!(s.ops, THREADS * PER_THREAD);
    assert_eq!(s.rejected, 0);
    assert!(s.commits < s.batches, "no grouping: {s:?}");
    // Each producer's batches complete in its own submission order.
    let completed = completed.lock().unwrap();
    assert_eq!(completed.len() as u64, THREADS * PER_THREAD);
    for t in 0..THREADS {
        let mine: Vec<u64> = completed.iter().filter(|c| c.0 == t).map(|c| c.1).collect();
        assert_eq!(mine, (1..=PER_THREAD).collect::<Vec<_>>());
        let last = store.last_message(&format!("grp{t}")).unwrap().unwrap();
        assert_eq!(last.seq, PER_THREAD);
    }
}

#[test]
fn a_group_stops_at_max_batch_ops() {
    let (store, entered, gate, groups) = gate_store();
    let cfg = WriterConfig {
        max_batch_ops: 4,
        queue_capacity: 100,
        group_window_us: 0,
        ..WriterConfig::default()
    };
    let (w, join) = spawn(store.clone(), cfg);
    let noop = || -> Completion { Box::new(|r| assert_eq!(r, Ok(()))) };
    w.submit(vec![msg("grpA", 1)], noop()).unwrap();
    entered.recv().unwrap(); // the first round is held in apply, the queue is empty
    for seq in 2..=11 {
        w.submit(vec![msg("grpA", seq)], noop()).unwrap();
    }
    // A batch larger than the bound still commits whole, in a group of its own.
    w.submit((12..=17).map(|s| msg("grpA", s)).collect(), noop())
        .unwrap();
    assert_eq!(w.queued(), 11);
    drop(gate);
    let stats = Arc::clone(w.stats());
    drop(w);
    join.join().unwrap();
    assert_eq!(*groups.lock().unwrap(), vec![1, 4, 4, 2, 6]);
    let s = stats.snapshot();
    assert_eq!((s.commits, s.batches, s.ops), (5, 12, 17));
}

#[test]
fn a_full_queue_refuses_without_calling_back() {
    let (store, entered, gate, _groups) = gate_store();
    let cfg = WriterConfig {
        max_batch_ops: 4096,
        queue_capacity: 2,
        group_window_us: 0,
        ..WriterConfig::default()
    };
    let (w, join) = spawn(store.clone(), cfg);
    let calls = Arc::new(AtomicU64::new(0));
    let counted = |calls: &Arc<AtomicU64>| -> Completion {
        let calls = Arc::clone(calls);
        Box::new(move |r| {
            assert_eq!(r, Ok(()));
            calls.fetch_add(1, Ordering::SeqCst);
        })
    };
    w.submit(vec![msg("grpA", 1)], counted(&calls)).unwrap();
    entered.recv().unwrap();
    w.submit(vec![msg("grpA", 2)], counted(&calls)).unwrap();
    w.submit(vec![msg("grpA", 3)], counted(&calls)).unwrap();
    let refused_called = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&refused_called);
    let r = w.submit(
        vec![msg("grpA", 4)],
        Box::new(move |_| flag.store(true, Ordering::SeqCst)),
    );
    assert_eq!(r, Err(StoreError::Backend(QUEUE_FULL.to_owned())));
    assert_eq!(w.stats().snapshot().rejected, 1);
    drop(gate);
    // Once the queue drains, submissions are accepted again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while calls.load(Ordering::SeqCst) < 3 {
        assert!(std::time::Instant::now() < deadline, "queue never drained");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(w.submit_and_wait(vec![msg("grpA", 5)]), Ok(()));
    drop(w);
    join.join().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(!refused_called.load(Ordering::SeqCst));
    assert_eq!(store.last_message("grpA").unwrap().map(|l| l.seq), Some(5));
    let q = MessageQuery {
        since: None,
        before: None,
        limit: 10,
        exclude: vec![],
    };
    assert_eq!(store.messages("grpA", q).unwrap().len(), 4);
}

#[test]
fn join_waits_for_every_pending_callback() {
    let (store, entered, gate, _groups) = gate_store();
    let (w, join) = spawn(store, WriterConfig::default());
    let calls = Arc::new(AtomicU64::new(0));
    for seq in 1..=50 {
        let calls = Arc::clone(&calls);
        w.submit(
            vec![msg("grpA", seq)],
            Box::new(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    }
    entered.recv().unwrap();
    drop(w); // queue still holds batches: the thread must drain it before exiting
    drop(gate);
    join.join().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 50);
}

#[test]
fn a_panicking_callback_does_not_stop_the_writer() {
    let store = Arc::new(RedbStore::in_memory());
    let (w, join) = spawn(store, WriterConfig::default());
    w.submit(vec![msg("grpA", 1)], Box::new(|_| panic!("callback bug")))
        .unwrap();
    assert_eq!(w.submit_and_wait(vec![msg("grpA", 2)]), Ok(()));
    let dup = w.submit_and_wait(vec![msg("grpA", 2)]);
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    drop(w);
    join.join().unwrap();
}

#[test]
fn the_thread_is_named_and_the_handle_is_send() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<StoreWriter>();
    let store = Arc::new(RedbStore::in_memory());
    let (w, join) = spawn(store, WriterConfig::default());
    let (tx, rx) = crossbeam_channel::bounded(1);
    w.submit(
        vec![],
        Box::new(move |r| {
            let name = std::thread::current().name().map(str::to_owned);
            let _ = tx.send((name, r));
        }),
    )
    .unwrap();
    assert_eq!(
        rx.recv().unwrap(),
        (Some("coretalk-store".to_owned()), Ok(()))
    );
    drop(w);
    join.join().unwrap();
}

/// A writer over an in-memory store with `window_us` of lingering.
fn lingering(window_us: u64) -> (Arc<RedbStore>, StoreWriter, WriterJoin) {
    let store = Arc::new(RedbStore::in_memory());
    let cfg = WriterConfig {
        group_window_us: window_us,
        ..WriterConfig::default()
    };
    let (w, join) = spawn(store.clone(), cfg);
    (store, w, join)
}

fn log_err() -> Completion {
    Box::new(|r| assert_eq!(r, Ok(())))
}

#[test]
fn writes_behind_linger_and_share_one_commit() {
    // A long window: everything submitted within it joins the first group.
    let (store, w, join) = lingering(2_000_000);
    for seq in 1..=20 {
        w.submit_behind(vec![msg("grpA", seq)], log_err()).unwrap();
    }
    assert!(w.behind());
    // A waited write cuts the wait short and commits with them.
    assert_eq!(w.submit_and_wait(vec![msg("grpA", 21)]), Ok(()));
    assert!(!w.behind());
    let s = w.stats().snapshot();
    assert_eq!((s.commits, s.batches), (1, 21), "{s:?}");
    assert_eq!(store.last_message("grpA").unwrap().map(|l| l.seq), Some(21));
    drop(w);
    join.join().unwrap();
}

#[test]
fn a_lingering_group_commits_when_its_window_ends() {
    let (store, w, join) = lingering(20_000);
    let (tx, rx) = crossbeam_channel::bounded(1);
    w.submit_behind(
        vec![msg("grpA", 1)],
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )
    .unwrap();
    let t = std::time::Instant::now();
    assert_eq!(rx.recv().unwrap(), Ok(()));
    // Nobody cut it short: it waited (most of) its window, and no longer than a few of them.
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(10),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(store.last_message("grpA").unwrap().map(|l| l.seq), Some(1));
    drop(w);
    join.join().unwrap();
}

#[test]
fn a_read_queued_behind_writes_sees_them() {
    let (_store, w, join) = lingering(2_000_000);
    for seq in 1..=5 {
        w.submit_behind(vec![msg("grpA", seq)], log_err()).unwrap();
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    w.read(
        vec![ReadQuery::LastMessage("grpA".into())],
        Box::new(move |res| {
            let _ = tx.send(res);
        }),
    )
    .unwrap();
    let res = rx.recv().unwrap();
    assert_eq!(res.len(), 1);
    match &res[0].1 {
        Ok(crate::store::ReadAnswer::LastMessage(Some(m))) => assert_eq!(m.seq, 5),
        other => panic!("{other:?}"),
    }
    assert!(!w.behind());
    assert_eq!(w.stats().snapshot().reads, 1);
    drop(w);
    join.join().unwrap();
}

#[test]
fn a_refused_write_behind_does_not_count_as_behind() {
    let (store, entered, gate, _groups) = gate_store();
    let cfg = WriterConfig {
        queue_capacity: 1,
        group_window_us: 0,
        ..WriterConfig::default()
    };
    let (w, join) = spawn(store, cfg);
    w.submit(vec![msg("grpA", 1)], log_err()).unwrap();
    entered.recv().unwrap();
    w.submit_behind(vec![msg("grpA", 2)], log_err()).unwrap();
    let refused = w.submit_behind(vec![msg("grpA", 3)], log_err());
    assert_eq!(refused, Err(StoreError::Backend(QUEUE_FULL.to_owned())));
    assert!(w.behind());
    drop(gate);
    drop(w);
    join.join().unwrap();
}

#[test]
fn after_a_group_behind_the_thread_rests_but_a_waited_write_wakes_it() {
    // Groups of one op: the first write behind commits at once (its group is full), then the
    // thread rests a whole window before gathering again, unless someone waits.
    let store = Arc::new(RedbStore::in_memory());
    let cfg = WriterConfig {
        max_batch_ops: 1,
        group_window_us: 5_000_000,
        ..WriterConfig::default()
    };
    let (w, join) = spawn(store.clone(), cfg);
    let (tx, rx) = crossbeam_channel::bounded(1);
    w.submit_behind(
        vec![msg("grpA", 1)],
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )
    .unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(()));
    let t = std::time::Instant::now();
    assert_eq!(w.submit_and_wait(vec![msg("grpA", 2)]), Ok(()));
    // Far less than the 5 s rest (a generous bound: this checks the wake, not a speed).
    assert!(
        t.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(store.last_message("grpA").unwrap().map(|l| l.seq), Some(2));
    drop(w);
    join.join().unwrap();
}

#[test]
fn a_held_commit_shows_its_age_and_counts_as_one_stall() {
    let (store, entered, gate, _groups) = gate_store();
    let cfg = WriterConfig {
        stall_warn_ms: 20,
        ..WriterConfig::default()
    };
    let (w, join) = spawn(store, cfg);
    let stats = Arc::clone(w.stats());
    assert_eq!(stats.commit.age(), std::time::Duration::ZERO);
    w.submit(vec![msg("grpA", 1)], Box::new(|r| assert_eq!(r, Ok(()))))
        .unwrap();
    entered.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    assert!(stats.commit.age() >= std::time::Duration::from_millis(30));
    drop(gate);
    drop(w);
    join.join().unwrap();
    assert_eq!(stats.commit.age(), std::time::Duration::ZERO);
    assert_eq!(stats.commit.stalls(), 1);
}

#[test]
fn the_sync_delay_slows_durable_commits_only() {
    let cfg = WriterConfig {
        sync_delay_ms: 200,
        stall_warn_ms: 0,
        ..WriterConfig::default()
    };
    let (w, join) = spawn(Arc::new(RedbStore::in_memory()), cfg);
    let t = std::time::Instant::now();
    let (tx, rx) = crossbeam_channel::bounded(1);
    w.submit_behind(
        vec![msg("grpA", 1)],
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )
    .unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(()));
    assert!(
        t.elapsed() < std::time::Duration::from_millis(200),
        "volatile"
    );
    let t = std::time::Instant::now();
    w.submit_and_wait(vec![msg("grpA", 2)]).unwrap();
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(200),
        "durable"
    );
    assert_eq!(w.stats().commit.stalls(), 0, "a zero threshold counts none");
    drop(w);
    join.join().unwrap();
}

#[test]
fn the_rest_shortens_only_when_a_window_would_gather_more_than_the_target() {
    use std::time::Duration;
    let w = Duration::from_millis(10);
    let ms = Duration::from_millis;
    // Nothing to go by (start, or after a waited group), or the rule off: a whole window.
    assert_eq!(round::rest_for(w, 128, 1000, None), w);
    assert_eq!(round::rest_for(w, 0, 1000, Some(ms(10))), w);
    // At or under the target per span: a whole window.
    assert_eq!(round::rest_for(w, 128, 128, Some(ms(10))), w);
    assert_eq!(round::rest_for(w, 128, 50, Some(ms(10))), w);
    // 400 ops in 10 ms: 128 take 3.2 ms.
    assert_eq!(
        round::rest_for(w, 128, 400, Some(ms(10))),
        Duration::from_micros(3200)
    );
    // Never under a quarter of the window, never over it.
    assert_eq!(round::rest_for(w, 128, 4000, Some(ms(10))), ms(10) / 4);
    assert_eq!(round::rest_for(w, 128, 200, Some(ms(100))), w);
    assert_eq!(round::rest_for(w, 128, 200, Some(Duration::ZERO)), w);
}
