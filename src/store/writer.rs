//! The storage thread (`coretalk-store`): it owns every write to the [`Store`], grouping the
//! batches queued by shards into one transaction per round (group commit: one fsync for many
//! writers) and reporting each batch's outcome through its callback, in submission order.
//!
//! It deliberately does not decide what to write nor retry failed writes, and it never blocks a
//! submitter: a full queue is refused at once, so that back-pressure is the caller's decision.
//! Callbacks run on this thread and must be short (typically: post the result to a shard).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::{Store, StoreError, WriteBatch};

/// The message of the [`StoreError::Backend`] returned by [`StoreWriter::submit`] when the queue
/// is full, so that callers can tell overload from a real storage failure.
pub const QUEUE_FULL: &str = "store queue full";

/// Completion callback of a submitted batch. It runs on the storage thread.
pub type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Tuning of the storage thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// Upper bound on the ops gathered into one transaction (default 4096). The thread stops
    /// draining the queue before a batch that would exceed it (that batch opens the next
    /// transaction); a single batch larger than the bound still commits whole, alone. The default is large enough that one fsync is shared by thousands of small
    /// writes under load, yet small enough that a commit stays in the low milliseconds and a
    /// slow round does not delay the callbacks of the earliest batches for long.
    pub max_batch_ops: usize,
    /// Capacity of the queue, in batches (default 65536). Submissions beyond it are refused
    /// with [`QUEUE_FULL`] instead of blocking a shard. The default absorbs a burst of many
    /// seconds of peak traffic during a slow disk flush while bounding the memory held by
    /// queued batches (tens of MiB for typical chat messages).
    pub queue_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch_ops: 4096,
            queue_capacity: 65536,
        }
    }
}

/// Counters of the storage thread, for monitoring. Updated with relaxed atomics: each value is
/// exact, but a reader may see one counter of a round updated before another.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions run ([`Store::apply`] calls), one per group of batches.
    pub commits: AtomicU64,
    /// Batches applied or refused by the store (completed callbacks).
    pub batches: AtomicU64,
    /// Ops contained in those batches.
    pub ops: AtomicU64,
    /// Submissions refused because the queue was full.
    pub rejected: AtomicU64,
}

/// A plain copy of [`WriterStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStatsSnapshot {
    /// See [`WriterStats::commits`].
    pub commits: u64,
    /// See [`WriterStats::batches`].
    pub batches: u64,
    /// See [`WriterStats::ops`].
    pub ops: u64,
    /// See [`WriterStats::rejected`].
    pub rejected: u64,
}

impl WriterStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> WriterStatsSnapshot {
        WriterStatsSnapshot {
            commits: self.commits.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

/// One queued batch and its completion.
struct Job {
    batch: WriteBatch,
    done: Completion,
}

/// A handle for submitting batches to the storage thread. Cheap to clone and `Send`: each shard
/// holds one. The thread ends once every clone is dropped and the queue is drained.
#[derive(Clone)]
pub struct StoreWriter {
    tx: Sender<Job>,
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("queued", &self.tx.len())
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

/// Waits for the storage thread to finish; returned by [`StoreWriter::spawn`].
#[derive(Debug)]
pub struct WriterJoin {
    handle: JoinHandle<()>,
}

impl WriterJoin {
    /// Blocks until the storage thread exits, which happens after every [`StoreWriter`] clone is
    /// dropped and every queued batch has been applied and its callback invoked. An `Err` means
    /// the thread panicked outside the store and the callbacks (both of which are contained).
    pub fn join(self) -> Result<(), StoreError> {
        self.handle
            .join()
            .map_err(|_| StoreError::Backend("store writer thread panicked".to_owned()))
    }
}

impl StoreWriter {
    /// Starts the `coretalk-store` thread writing to `store`.
    ///
    /// Fails only if the OS refuses to create the thread.
    pub fn spawn(
        store: Arc<dyn Store>,
        cfg: WriterConfig,
    ) -> Result<(StoreWriter, WriterJoin), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue_capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let thread_stats = Arc::clone(&stats);
        let max_ops = cfg.max_batch_ops.max(1);
        let handle = std::thread::Builder::new()
            .name("coretalk-store".to_owned())
            .spawn(move || run(store.as_ref(), &rx, max_ops, &thread_stats))
            .map_err(|e| StoreError::Backend(format!("cannot start the store thread: {e}")))?;
        Ok((StoreWriter { tx, stats }, WriterJoin { handle }))
    }

    /// Queues `batch`; `done` is called on the storage thread with its result once the group it
    /// joined has committed. Never blocks. Fails — without calling `done` — with
    /// `Backend(`[`QUEUE_FULL`]`)` when the queue is full, or [`StoreError::Stopped`] when the
    /// thread is gone.
    pub fn submit(&self, batch: WriteBatch, done: Completion) -> Result<(), StoreError> {
        match self.tx.try_send(Job { batch, done }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Backend(QUEUE_FULL.to_owned()))
            }
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Stopped),
        }
    }

    /// Queues `batch` and blocks the calling thread until it has committed. For startup,
    /// tooling and tests only: never call it from a shard executor or from a completion
    /// callback (the latter would deadlock the storage thread).
    pub fn submit_and_wait(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.submit(
            batch,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv().unwrap_or(Err(StoreError::Stopped))
    }

    /// The thread's counters.
    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    /// Batches waiting in the queue now.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }
}

/// The storage thread's loop: one group commit per round until the queue is closed and empty.
fn run(store: &dyn Store, rx: &Receiver<Job>, max_ops: usize, stats: &WriterStats) {
    let mut batches: Vec<WriteBatch> = Vec::new();
    let mut dones: Vec<Completion> = Vec::new();
    // A job drained from the queue that would have pushed its group past `max_ops`: it opens
    // the next round instead (the channel has no peek).
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            // `recv` fails only once every sender is gone and the queue is empty.
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        // An empty batch still costs one, so that a flood of them cannot grow a group forever.
        let cost = |job: &Job| job.batch.len().max(1);
        let mut ops = cost(&first);
        batches.push(first.batch);
        dones.push(first.done);
        while ops < max_ops {
            match rx.try_recv() {
                Ok(job) if ops + cost(&job) > max_ops => {
                    carried = Some(job);
                    break;
                }
                Ok(job) => {
                    ops += cost(&job);
                    batches.push(job.batch);
                    dones.push(job.done);
                }
                Err(_) => break,
            }
        }

        let mut results =
            catch_unwind(AssertUnwindSafe(|| store.apply(&batches))).unwrap_or_else(|_| {
                log::error!("store apply panicked; failing {} batches", batches.len());
                Vec::new()
            });
        if results.len() != batches.len() {
            if !results.is_empty() {
                log::error!(
                    "store returned {} results for {} batches",
                    results.len(),
                    batches.len()
                );
            }
            let err = StoreError::Backend("store apply failed".to_owned());
            results = vec![Err(err); batches.len()];
        }

        let op_count: usize = batches.iter().map(Vec::len).sum();
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .batches
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        stats.ops.fetch_add(op_count as u64, Ordering::Relaxed);
        batches.clear();

        for (done, result) in dones.drain(..).zip(results) {
            if catch_unwind(AssertUnwindSafe(move || done(result))).is_err() {
                log::error!("a store completion callback panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    use super::*;
    use crate::ids::{UnixMillis, UserId};
    use crate::store::testing::HookedStore;
    use crate::store::{MessageQuery, MessageRecord, RedbStore, WriteOp};

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
}
