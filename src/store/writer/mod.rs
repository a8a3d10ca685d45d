//! The storage thread (`coretalk-store`): it owns every write to the [`Store`], grouping the
//! batches queued by shards into one transaction per round (group commit: one fsync for many
//! writers) and reporting each batch's outcome through its callback, in submission order.
//!
//! Two kinds of write reach it. A *waited* write ([`StoreWriter::submit`]) has someone waiting
//! for its commit (an acknowledgement that depends on it), so it is committed as soon as the
//! thread reaches it. A write *behind* the acknowledgement ([`StoreWriter::submit_behind`]) was
//! already made safe elsewhere (the shard's journal, or nothing at all with a non-durable
//! store) and acknowledged: the thread may linger up to [`WriterConfig::group_window_us`] to
//! commit more of them together. Because such writes are visible to clients before they are
//! applied, reads that could miss one go through this thread too ([`StoreWriter::read`]):
//! queued after every write submitted before them, they see all of them. [`StoreWriter::behind`]
//! says whether that is needed; when no write is behind, a shard reads the store directly.
//!
//! It deliberately does not decide what to write nor retry failed writes, and it never blocks a
//! submitter: a full queue is refused at once, so that back-pressure is the caller's decision.
//! Callbacks run on this thread and must be short (typically: post the result to a shard).

mod round;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};

use crossbeam_channel::{Sender, TrySendError};

use super::{ReadAnswer, ReadQuery, Store, StoreError, WriteBatch};
use crate::stats::SyncWatch;

/// The message of the [`StoreError::Backend`] returned by [`StoreWriter::submit`] when the queue
/// is full, so that callers can tell overload from a real storage failure.
pub const QUEUE_FULL: &str = "store queue full";

/// Completion callback of a submitted batch. It runs on the storage thread.
pub type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Completion callback of a read queued behind writes: each query with its answer, in order.
/// It runs on the storage thread.
pub type ReadCompletion = Box<dyn FnOnce(Vec<(ReadQuery, Result<ReadAnswer, StoreError>)>) + Send>;

/// Tuning of the storage thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// Upper bound on the ops gathered into one transaction (default 4096). The thread stops
    /// draining the queue before a batch that would exceed it (that batch opens the next
    /// transaction); a single batch larger than the bound still commits whole, alone. The
    /// default is large enough that one fsync is shared by thousands of small writes under
    /// load, yet small enough that a commit stays in the low milliseconds and a slow round
    /// does not delay the callbacks of the earliest batches for long.
    pub max_batch_ops: usize,
    /// Capacity of the queue, in batches (default 65536). Submissions beyond it are refused
    /// with [`QUEUE_FULL`] instead of blocking a shard. The default absorbs a burst of many
    /// seconds of peak traffic during a slow disk flush while bounding the memory held by
    /// queued batches (tens of MiB for typical chat messages).
    pub queue_capacity: usize,
    /// How long a group made only of writes behind the acknowledgement may wait for more
    /// before it commits, µs (default 10000; 0 = commit at once). Nobody waits for those
    /// commits, so waiting costs no latency and shares one transaction (and one wake-up of
    /// this thread) among many messages; a waited write or a read cuts the wait short.
    pub group_window_us: u64,
    /// Ops a group nobody waits for should hold (default 128; 0 = always rest a whole
    /// window). When writes behind arrive faster than that per window, the thread rests only
    /// as long as it takes them to reach this many at the last group's rate (never under a
    /// quarter of the window): the apply burst of a group shares a shard's core, and a shard
    /// that is preempted meanwhile waits for it.
    pub group_target_ops: usize,
    /// Fault injection for tests (`store.faults.sync_delay_ms`): every durable commit waits
    /// this long first, as if its fsync were that slow. 0 (the default) in production.
    pub sync_delay_ms: u64,
    /// A commit lasting this long or more is a stall (`store.stall_warn_ms`): counted in
    /// [`WriterStats::commit`]. 0: stalls are not counted.
    pub stall_warn_ms: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch_ops: 4096,
            queue_capacity: 65536,
            group_window_us: 10_000,
            group_target_ops: 128,
            sync_delay_ms: 0,
            stall_warn_ms: 1000,
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
    /// Reads answered on this thread because writes were behind ([`StoreWriter::read`]).
    pub reads: AtomicU64,
    /// Retries of writes behind the acknowledgement after a backend failure (a full disk):
    /// they are retried until they apply, since clients were told they succeeded.
    pub retries: AtomicU64,
    /// Writes behind the acknowledgement that never applied (the store closed first): the
    /// journal that holds them must not be cleared (the server checks this at exit).
    pub unapplied: AtomicU64,
    /// The group commit in progress (its age) and the stalls: commits that lasted at least
    /// [`WriterConfig::stall_warn_ms`], retries of failed writes behind included.
    pub commit: SyncWatch,
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
    /// See [`WriterStats::reads`].
    pub reads: u64,
}

impl WriterStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> WriterStatsSnapshot {
        WriterStatsSnapshot {
            commits: self.commits.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
        }
    }
}

/// One queued piece of work.
enum Job {
    /// A write and its completion; `waited` when an acknowledgement depends on its commit.
    Write {
        batch: WriteBatch,
        done: Completion,
        waited: bool,
    },
    /// Reads to answer once every write queued before them is applied.
    Read {
        queries: Vec<ReadQuery>,
        done: ReadCompletion,
    },
}

impl Job {
    /// Whether nobody waits for this job's commit (it may linger in a group).
    fn lingers(&self) -> bool {
        matches!(self, Job::Write { waited: false, .. })
    }
}

/// What the submitters and the thread share besides the queue.
#[derive(Debug, Default)]
struct Shared {
    /// Writes behind the acknowledgement submitted and not yet applied (and their
    /// completions run).
    behind: AtomicU64,
    /// The thread is lingering for more writes: a waited write or a read must unpark it.
    lingering: AtomicBool,
    /// A waited write or a read was queued since the thread last looked (ends a rest).
    urgent: AtomicBool,
}

/// A handle for submitting batches to the storage thread. Cheap to clone and `Send`: each shard
/// holds one. The thread ends once every clone is dropped and the queue is drained.
#[derive(Clone)]
pub struct StoreWriter {
    tx: Sender<Job>,
    stats: Arc<WriterStats>,
    shared: Arc<Shared>,
    thread: Thread,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("queued", &self.tx.len())
            .field("behind", &self.shared.behind.load(Ordering::Relaxed))
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
        let shared = Arc::new(Shared::default());
        let round = round::Rounds {
            store,
            rx,
            max_ops: cfg.max_batch_ops.max(1),
            window: std::time::Duration::from_micros(cfg.group_window_us),
            target_ops: cfg.group_target_ops,
            sync_delay: std::time::Duration::from_millis(cfg.sync_delay_ms),
            stall_warn: std::time::Duration::from_millis(cfg.stall_warn_ms),
            stats: Arc::clone(&stats),
            shared: Arc::clone(&shared),
        };
        let handle = std::thread::Builder::new()
            .name("coretalk-store".to_owned())
            .spawn(move || round.run())
            .map_err(|e| StoreError::Backend(format!("cannot start the store thread: {e}")))?;
        let thread = handle.thread().clone();
        Ok((
            StoreWriter {
                tx,
                stats,
                shared,
                thread,
            },
            WriterJoin { handle },
        ))
    }

    /// Queues `batch`; `done` is called on the storage thread with its result once the group it
    /// joined has committed. Never blocks. Fails — without calling `done` — with
    /// `Backend(`[`QUEUE_FULL`]`)` when the queue is full, or [`StoreError::Stopped`] when the
    /// thread is gone.
    pub fn submit(&self, batch: WriteBatch, done: Completion) -> Result<(), StoreError> {
        self.push(Job::Write {
            batch,
            done,
            waited: true,
        })
    }

    /// Queues a write that was acknowledged before it is applied (the caller made it safe
    /// elsewhere, or the store is not durable). Until it is applied, [`StoreWriter::behind`]
    /// is true, so that reads are ordered after it. `done` still reports the outcome (a failure
    /// here can only be logged: the client was told it succeeded). Fails like `submit`.
    pub fn submit_behind(&self, batch: WriteBatch, done: Completion) -> Result<(), StoreError> {
        self.shared.behind.fetch_add(1, Ordering::SeqCst);
        let r = self.push(Job::Write {
            batch,
            done,
            waited: false,
        });
        if r.is_err() {
            self.shared.behind.fetch_sub(1, Ordering::SeqCst);
        }
        r
    }

    /// Queues reads to be answered on the storage thread after every write queued before
    /// them is applied. Fails like `submit` (without calling `done`).
    pub fn read(&self, queries: Vec<ReadQuery>, done: ReadCompletion) -> Result<(), StoreError> {
        self.push(Job::Read { queries, done })
    }

    /// Whether any write acknowledged before being applied is still queued or being applied:
    /// then a read must go through [`StoreWriter::read`] to see it.
    pub fn behind(&self) -> bool {
        self.behind_len() > 0
    }

    /// How many writes acknowledged before being applied are still queued or being applied.
    pub fn behind_len(&self) -> u64 {
        self.shared.behind.load(Ordering::SeqCst)
    }

    fn push(&self, job: Job) -> Result<(), StoreError> {
        let lingers = job.lingers();
        match self.tx.try_send(job) {
            Ok(()) => {
                // Pairs with the thread's store of `lingering` before its last drain: either it
                // sees this job there, or this load sees it lingering and wakes it.
                if !lingers {
                    self.shared.urgent.store(true, Ordering::SeqCst);
                    if self.shared.lingering.load(Ordering::SeqCst) {
                        self.thread.unpark();
                    }
                }
                Ok(())
            }
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
