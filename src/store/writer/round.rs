//! The storage thread's loop: gather a group of queued writes (lingering for more when nobody
//! waits for them), apply it in one transaction, run the completions in submission order, and
//! answer reads queued behind writes once those writes are applied.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use super::{Completion, Job, ReadCompletion, Shared, WriterStats};
use crate::store::{ReadQuery, Store, StoreError, WriteBatch};

/// How long the thread rests after committing a group of `ops` ops nobody waited for, whose
/// writes arrived over `span` (since the previous such group was gathered; `None` after a
/// waited group or at start): the whole `window`, or, when writes arrive fast enough that a
/// window would gather more than `target_ops`, the time `target_ops` take at that rate, but
/// never under a quarter of the window. Shorter groups mean shorter apply bursts on a core a
/// shard may share; the per-transaction cost is paid more often only at rates where each
/// group is still `target_ops` long.
pub(super) fn rest_for(
    window: Duration,
    target_ops: usize,
    ops: usize,
    span: Option<Duration>,
) -> Duration {
    match span {
        Some(span) if target_ops > 0 && ops > target_ops && !span.is_zero() => span
            .mul_f64(target_ops as f64 / ops as f64)
            .clamp(window / 4, window),
        _ => window,
    }
}

/// Everything the thread owns.
pub(super) struct Rounds {
    pub(super) store: Arc<dyn Store>,
    pub(super) rx: Receiver<Job>,
    pub(super) max_ops: usize,
    pub(super) window: Duration,
    /// `store.group_target_ops` (see [`rest_for`]).
    pub(super) target_ops: usize,
    /// `store.faults.sync_delay_ms`: a wait before every durable commit (tests only).
    pub(super) sync_delay: Duration,
    /// `store.stall_warn_ms`.
    pub(super) stall_warn: Duration,
    pub(super) stats: Arc<WriterStats>,
    pub(super) shared: Arc<Shared>,
}

/// One write of the group being gathered.
struct Pending {
    done: Completion,
    waited: bool,
}

impl Rounds {
    /// One group commit per round until the queue is closed and empty.
    pub(super) fn run(self) {
        let mut batches: Vec<WriteBatch> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        // A job drained from the queue that ends the group (a read, or a write that would have
        // pushed it past `max_ops`): it opens the next round instead (the channel has no peek).
        let mut carried: Option<Job> = None;
        // Under a steady stream of writes behind, the next group is gathered by one timed wake
        // per window (not a wake per first write plus one at the window's end).
        let mut rest_after: Option<Instant> = None;
        // When the last group nobody waited for was gathered: the span its writes arrived in.
        let mut last_gathered: Option<Instant> = None;
        loop {
            if let (None, Some(until)) = (&carried, rest_after.take()) {
                self.rest(until);
                if let Ok(job) = self.rx.try_recv() {
                    carried = Some(job);
                }
            }
            let first = match carried.take() {
                Some(job) => job,
                // `recv` fails only once every sender is gone and the queue is empty.
                None => match self.rx.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                },
            };
            let (batch, done, waited) = match first {
                Job::Read { queries, done } => {
                    // Every write queued before it was applied by an earlier round.
                    self.answer(queries, done);
                    continue;
                }
                Job::Write {
                    batch,
                    done,
                    waited,
                } => (batch, done, waited),
            };
            let mut ops = cost(&batch);
            let mut all_linger = !waited;
            batches.push(batch);
            pending.push(Pending { done, waited });
            let mut deadline: Option<Instant> = None;
            while ops < self.max_ops {
                match self.rx.try_recv() {
                    Ok(job @ Job::Read { .. }) => {
                        carried = Some(job);
                        break;
                    }
                    Ok(Job::Write {
                        batch,
                        done,
                        waited,
                    }) => {
                        if ops + cost(&batch) > self.max_ops {
                            carried = Some(Job::Write {
                                batch,
                                done,
                                waited,
                            });
                            break;
                        }
                        ops += cost(&batch);
                        all_linger &= !waited;
                        batches.push(batch);
                        pending.push(Pending { done, waited });
                    }
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {
                        if !all_linger || self.window.is_zero() {
                            break;
                        }
                        let now = Instant::now();
                        match deadline {
                            None => {
                                // Announce the wait, then drain once more before parking: a
                                // submitter either queued before that drain (seen there) or
                                // sees `lingering` and unparks this thread.
                                self.shared.lingering.store(true, Ordering::SeqCst);
                                deadline = Some(now + self.window);
                            }
                            Some(d) if now >= d => break,
                            Some(d) => std::thread::park_timeout(d - now),
                        }
                    }
                }
            }
            self.shared.lingering.store(false, Ordering::SeqCst);
            let gathered = Instant::now();
            // Writes behind the acknowledgement are already safe (in a shard's journal) or
            // were never meant to survive a crash: their group may stay volatile until the
            // next durable one, which any waited write makes.
            self.commit(&mut batches, &mut pending, all_linger);
            if all_linger && !self.window.is_zero() {
                let span = last_gathered.map(|at| gathered.saturating_duration_since(at));
                let rest = rest_for(self.window, self.target_ops, ops, span);
                rest_after = Some(Instant::now() + rest);
                last_gathered = Some(gathered);
            } else {
                last_gathered = None;
            }
        }
    }

    /// Waits until `until` unless a waited write or a read arrives (its submitter unparks this
    /// thread once it sees `lingering`).
    fn rest(&self, until: Instant) {
        self.shared.lingering.store(true, Ordering::SeqCst);
        // A submitter of a waited write or a read raises `urgent` before it looks at
        // `lingering`: either this loop sees the flag, or the submitter sees `lingering` and
        // unparks it.
        loop {
            if self.shared.urgent.swap(false, Ordering::SeqCst) {
                break;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::park_timeout(until - now);
        }
        self.shared.lingering.store(false, Ordering::SeqCst);
    }

    /// Applies the group in one transaction and runs its completions in order. Writes behind
    /// the acknowledgement that fail on the backend (a full disk, a lost database) are applied
    /// again, with a growing pause, until they succeed: clients were told they did. The queue
    /// meanwhile fills, and the shards stop reading sockets (`store.behind_pause`).
    fn commit(&self, batches: &mut Vec<WriteBatch>, pending: &mut Vec<Pending>, volatile: bool) {
        // Watched until the completions ran: that is when the writers learn the outcome.
        self.stats.commit.begin();
        let mut results = self.apply(batches, volatile);
        let mut pause = Duration::from_millis(50);
        loop {
            let retry: Vec<usize> = (0..batches.len())
                .filter(|&i| {
                    !pending[i].waited && matches!(results[i], Err(StoreError::Backend(_)))
                })
                .collect();
            if retry.is_empty() {
                break;
            }
            let n = self.stats.retries.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() || n == 0 {
                log::error!(
                    "store: {} acknowledged write(s) failed to apply ({:?}); retrying until they do (retry {})",
                    retry.len(),
                    results[retry[0]],
                    n + 1
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
            let again: Vec<WriteBatch> = retry.iter().map(|&i| batches[i].clone()).collect();
            let r = self.apply(&again, volatile);
            for (k, &i) in retry.iter().enumerate() {
                results[i] = r[k].clone();
            }
        }
        for (i, r) in results.iter().enumerate() {
            if !pending[i].waited && r.is_err() {
                self.stats.unapplied.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.complete(batches, pending, results);
        self.stats.commit.end(self.stall_warn);
    }

    /// One transaction over `batches`: one result per batch whatever happens inside.
    fn apply(&self, batches: &[WriteBatch], volatile: bool) -> Vec<Result<(), StoreError>> {
        if !volatile && !self.sync_delay.is_zero() {
            // Fault injection (`store.faults.sync_delay_ms`): a durable commit as slow as a
            // stalled disk's fsync. The server warned at start-up that it is set.
            std::thread::sleep(self.sync_delay);
        }
        let store = &self.store;
        let apply = || {
            if volatile {
                store.apply_volatile(batches)
            } else {
                store.apply(batches)
            }
        };
        let mut results = catch_unwind(AssertUnwindSafe(apply)).unwrap_or_else(|_| {
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
        results
    }

    /// Counts the group and runs its completions in submission order.
    fn complete(
        &self,
        batches: &mut Vec<WriteBatch>,
        pending: &mut Vec<Pending>,
        results: Vec<Result<(), StoreError>>,
    ) {
        let op_count: usize = batches.iter().map(Vec::len).sum();
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats
            .batches
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        self.stats.ops.fetch_add(op_count as u64, Ordering::Relaxed);
        batches.clear();

        for (p, result) in pending.drain(..).zip(results) {
            let done = p.done;
            if catch_unwind(AssertUnwindSafe(move || done(result))).is_err() {
                log::error!("a store completion callback panicked");
            }
            if !p.waited {
                // Applied (and reported): reads no longer need to queue behind it.
                self.shared.behind.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Answers reads queued behind writes.
    fn answer(&self, queries: Vec<ReadQuery>, done: ReadCompletion) {
        let results = queries
            .into_iter()
            .map(|q| {
                let r = catch_unwind(AssertUnwindSafe(|| self.store.read(&q)))
                    .unwrap_or_else(|_| Err(StoreError::Backend("store read panicked".to_owned())));
                (q, r)
            })
            .collect();
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        if catch_unwind(AssertUnwindSafe(move || done(results))).is_err() {
            log::error!("a store read callback panicked");
        }
    }
}

/// An empty batch still costs one, so that a flood of them cannot grow a group forever.
fn cost(batch: &WriteBatch) -> usize {
    batch.len().max(1)
}
