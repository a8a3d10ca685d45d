//! The slow-hash pool: a few dedicated threads that run bcrypt so that hashing never happens on
//! an executor thread. Submission never blocks; a full queue is reported as [`AuthError::Busy`].
//!
//! It does not wake executors or carry results across shards by itself: the submitter's callback
//! runs on a pool thread and must hand the outcome back (channel, waker, cross-shard message).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::basic::{hash_password, verify_password};
use super::AuthError;

/// A slow password operation.
pub enum HashJob {
    /// Hash a new password at the given bcrypt cost.
    Hash {
        /// The plaintext password.
        password: String,
        /// bcrypt cost, 4..=31.
        cost: u32,
    },
    /// Check a password against a stored bcrypt hash.
    Verify {
        /// The plaintext password the client sent.
        password: String,
        /// The stored bcrypt hash (`$2a$…`/`$2b$…` text as bytes).
        hash: Vec<u8>,
    },
}

impl fmt::Debug for HashJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashJob::Hash { cost, .. } => f
                .debug_struct("Hash")
                .field("password", &"<redacted>")
                .field("cost", cost)
                .finish(),
            HashJob::Verify { .. } => f
                .debug_struct("Verify")
                .field("password", &"<redacted>")
                .finish_non_exhaustive(),
        }
    }
}

impl HashJob {
    /// Runs the job on the current thread (blocking for the whole bcrypt computation). The pool
    /// calls this; tests and offline tools may call it directly.
    pub fn run(self) -> HashOutcome {
        match self {
            HashJob::Hash { password, cost } => HashOutcome::Hashed(hash_password(&password, cost)),
            HashJob::Verify { password, hash } => {
                HashOutcome::Verified(verify_password(&password, &hash))
            }
        }
    }
}

/// The result of a [`HashJob`], of the matching kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOutcome {
    /// Result of [`HashJob::Hash`]: the bcrypt hash, or a policy error (password too long,
    /// invalid cost).
    Hashed(Result<Vec<u8>, AuthError>),
    /// Result of [`HashJob::Verify`]: whether the password matched.
    Verified(bool),
}

/// Completion callback, run on a pool thread.
type Done = Box<dyn FnOnce(HashOutcome) + Send>;

struct Task {
    job: HashJob,
    done: Done,
}

/// A cloneable, `Send` handle for submitting jobs. The workers stop once every handle is
/// dropped and the queue is drained.
#[derive(Clone)]
pub struct HashPool {
    tx: Sender<Task>,
}

impl fmt::Debug for HashPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashPool")
            .field("queued", &self.tx.len())
            .field("capacity", &self.tx.capacity())
            .finish()
    }
}

/// How the hash threads yield their cores to the shards (`auth.hash_sched_idle`, `auth.hash_nice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashPriority {
    /// Linux `SCHED_IDLE`: the thread runs when nothing else on the core wants to, and a waking
    /// shard preempts it at once.
    Idle,
    /// A nice value (−20 … 19); 0 leaves the shards' priority.
    Nice(i32),
}

/// Waits for the pool's worker threads; obtained from [`HashPool::spawn`].
#[derive(Debug)]
pub struct HashPoolJoin {
    handles: Vec<JoinHandle<()>>,
}

impl HashPool {
    /// Starts `threads` workers (at least one) named `coretalk-hash-N` sharing a queue of
    /// `queue_capacity` jobs. A capacity of 0 accepts a job only while a worker is idle.
    /// Each worker lowers its own scheduling priority to `priority` (see `auth.hash_sched_idle`):
    /// bcrypt bursts then yield the core to the shards instead of delaying their messages.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to create a thread (startup only).
    pub fn spawn(
        threads: usize,
        queue_capacity: usize,
        priority: HashPriority,
    ) -> (HashPool, HashPoolJoin) {
        let (tx, rx) = crossbeam_channel::bounded::<Task>(queue_capacity);
        let handles = (0..threads.max(1))
            .map(|n| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("coretalk-hash-{n}"))
                    .spawn(move || {
                        lower_priority(priority);
                        worker(rx)
                    })
                    .unwrap_or_else(|e| panic!("cannot start hash pool thread {n}: {e}"))
            })
            .collect();
        (HashPool { tx }, HashPoolJoin { handles })
    }

    /// Queues `job`; `done` later runs on a pool thread with the outcome. Never blocks.
    ///
    /// A full queue gives [`AuthError::Busy`] and `done` is dropped without being called. If
    /// the job or `done` panics, the worker survives; a job that panics drops its `done` uncalled.
    pub fn submit(
        &self,
        job: HashJob,
        done: Box<dyn FnOnce(HashOutcome) + Send>,
    ) -> Result<(), AuthError> {
        match self.tx.try_send(Task { job, done }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(AuthError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                // Only possible if every worker thread is gone.
                log::error!("hash pool has no workers left");
                Err(AuthError::Busy)
            }
        }
    }

    /// Number of jobs waiting in the queue (not counting those being run).
    pub fn queued(&self) -> usize {
        self.tx.len()
    }
}

/// Lowers the calling thread's scheduling priority (Linux applies both per thread). Failure only
/// logs: a thread at normal priority still works.
fn lower_priority(priority: HashPriority) {
    match priority {
        HashPriority::Nice(0) => {}
        HashPriority::Nice(nice) => {
            // SAFETY: plain syscall on the calling thread (who = 0), no pointers.
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
                log::warn!(
                    "cannot set the hash thread's nice value to {nice}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        HashPriority::Idle => {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: the calling thread (pid 0); `param` outlives the call.
            if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
                log::warn!(
                    "cannot move the hash thread to SCHED_IDLE: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

impl HashPoolJoin {
    /// Waits until every worker has exited, i.e. all [`HashPool`] handles are dropped and the
    /// queue is drained.
    pub fn join(self) {
        for h in self.handles {
            if h.join().is_err() {
                log::error!("hash pool thread panicked");
            }
        }
    }
}

fn worker(rx: Receiver<Task>) {
    while let Ok(Task { job, done }) = rx.recv() {
        let run = AssertUnwindSafe(move || done(job.run()));
        if catch_unwind(run).is_err() {
            log::error!("hash pool job or callback panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(30);

    /// The scheduling policy and nice value a pool thread runs its jobs under.
    fn policy_of(priority: HashPriority) -> (i32, i32) {
        let (pool, join) = HashPool::spawn(1, 1, priority);
        let (tx, rx) = mpsc::channel();
        let job = HashJob::Hash {
            password: "secret".into(),
            cost: 4,
        };
        let done = Box::new(move |_| {
            // SAFETY: plain syscalls about the calling thread.
            let got = unsafe {
                (
                    libc::sched_getscheduler(0),
                    libc::getpriority(libc::PRIO_PROCESS, 0),
                )
            };
            tx.send(got).unwrap();
        });
        pool.submit(job, done).unwrap();
        let got = rx.recv_timeout(WAIT).unwrap();
        drop(pool);
        join.join();
        got
    }

    #[test]
    fn hash_threads_run_under_the_configured_priority() {
        assert_eq!(policy_of(HashPriority::Idle).0, libc::SCHED_IDLE);
        assert_eq!(policy_of(HashPriority::Nice(19)), (libc::SCHED_OTHER, 19));
        assert_eq!(policy_of(HashPriority::Nice(0)).0, libc::SCHED_OTHER);
    }

    #[test]
    fn runs_jobs_off_thread() {
        let (pool, join) = HashPool::spawn(2, 8, HashPriority::Nice(0));
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        pool.submit(
            HashJob::Hash {
                password: "secret".into(),
                cost: 4,
            },
            Box::new(move |out| {
                let name = std::thread::current().name().map(str::to_owned);
                tx.send((name, out)).unwrap();
            }),
        )
        .unwrap();
        let (name, out) = rx.recv_timeout(WAIT).unwrap();
        assert!(name.unwrap().starts_with("coretalk-hash-"));
        let HashOutcome::Hashed(Ok(hash)) = out else {
            panic!("unexpected {out:?}");
        };

        for (pw, want) in [("secret", true), ("wrong", false)] {
            let tx = tx2.clone();
            pool.submit(
                HashJob::Verify {
                    password: pw.into(),
                    hash: hash.clone(),
                },
                Box::new(move |out| {
                    let name = std::thread::current().name().map(str::to_owned);
                    tx.send((name, out)).unwrap();
                }),
            )
            .unwrap();
            let (name, out) = rx.recv_timeout(WAIT).unwrap();
            assert!(name.unwrap().starts_with("coretalk-hash-"));
            assert_eq!(out, HashOutcome::Verified(want));
        }

        drop(pool);
        join.join();
    }

    #[test]
    fn full_queue_is_busy() {
        let (pool, join) = HashPool::spawn(1, 1, HashPriority::Nice(0));
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<&'static str>();

        // Job A occupies the only worker until released.
        let d = done_tx.clone();
        pool.submit(
            HashJob::Verify {
                password: "x".into(),
                hash: Vec::new(),
            },
            Box::new(move |_| {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                d.send("a").unwrap();
            }),
        )
        .unwrap();
        started_rx.recv_timeout(WAIT).unwrap();

        // Job B fills the single queue slot.
        let d = done_tx.clone();
        pool.submit(
            HashJob::Verify {
                password: "x".into(),
                hash: Vec::new(),
            },
            Box::new(move |_| d.send("b").unwrap()),
        )
        .unwrap();
        assert_eq!(pool.queued(), 1);

        // Job C is refused and its callback never runs.
        let d = done_tx.clone();
        let res = pool.submit(
            HashJob::Verify {
                password: "x".into(),
                hash: Vec::new(),
            },
            Box::new(move |_| d.send("c").unwrap()),
        );
        assert_eq!(res, Err(AuthError::Busy));

        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv_timeout(WAIT).unwrap(), "a");
        assert_eq!(done_rx.recv_timeout(WAIT).unwrap(), "b");
        drop(pool);
        join.join();
        drop(done_tx);
        assert!(done_rx.recv().is_err(), "callback of refused job ran");
    }

    #[test]
    fn drains_queue_before_exit_and_survives_panics() {
        let (pool, join) = HashPool::spawn(1, 16, HashPriority::Nice(0));
        let (tx, rx) = mpsc::channel();
        pool.submit(
            HashJob::Verify {
                password: "x".into(),
                hash: Vec::new(),
            },
            Box::new(|_| panic!("callback panic (expected in this test)")),
        )
        .unwrap();
        for i in 0..5 {
            let tx = tx.clone();
            pool.submit(
                HashJob::Verify {
                    password: "x".into(),
                    hash: b"garbage".to_vec(),
                },
                Box::new(move |out| tx.send((i, out)).unwrap()),
            )
            .unwrap();
        }
        let clone = pool.clone();
        drop(pool);
        drop(clone);
        join.join();
        drop(tx);
        let got: Vec<_> = rx.iter().collect();
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|(_, o)| *o == HashOutcome::Verified(false)));
    }

    #[test]
    fn handle_is_send_and_job_debug_hides_password() {
        fn assert_send<T: Send + Clone>() {}
        assert_send::<HashPool>();
        let s = format!(
            "{:?}",
            HashJob::Hash {
                password: "hunter2".into(),
                cost: 4
            }
        );
        assert!(!s.contains("hunter2"), "{s}");
    }
}
