//! The reader pool (`coretalk-read-N` threads): answers store reads off the executors for a
//! store whose reads wait on the network (PostgreSQL), so that no shard ever blocks on one.
//!
//! A shard hands over its queries with a callback ([`ReadCompletion`]) that posts the answers
//! back to it as an event, exactly as the embedded store's answers arrive. Each thread takes the
//! next job from one bounded queue, so a slow query holds one thread, not the others. The queue
//! never blocks a shard: a full one is refused at once with [`READ_QUEUE_FULL`], which callers
//! report as overload. The threads end when every handle is dropped and the queue is empty.
//!
//! It does not order reads after writes: a shard that acknowledges writes before they are
//! applied reads through the writer instead (`StoreWriter::read`), and a store with a reader
//! pool acknowledges a write only after its commit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::writer::ReadCompletion;
use super::{ReadQuery, Store, StoreError};

/// The message of the [`StoreError::Backend`] returned when the read queue is full.
pub const READ_QUEUE_FULL: &str = "store read queue full";

struct Job {
    queries: Vec<ReadQuery>,
    done: ReadCompletion,
}

/// A cloneable handle to the pool; cheap to clone, one per shard.
#[derive(Clone)]
pub struct ReaderPool {
    tx: Sender<Job>,
}

/// Joins the pool's threads (after every [`ReaderPool`] handle is dropped).
pub struct ReadersJoin {
    handles: Vec<JoinHandle<()>>,
}

impl ReadersJoin {
    /// Waits for every thread to end.
    pub fn join(self) {
        for h in self.handles {
            if h.join().is_err() {
                log::error!("a store reader thread panicked");
            }
        }
    }
}

impl ReaderPool {
    /// Starts `threads` readers (at least one) over `store` with a queue of `capacity` jobs.
    /// Each answer is held `delay` after its queries ran (`store.faults.read_delay_ms`; tests
    /// only, zero in production).
    pub fn spawn(
        store: Arc<dyn Store>,
        threads: usize,
        capacity: usize,
        delay: Duration,
    ) -> Result<(ReaderPool, ReadersJoin), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(capacity.max(1));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (store, rx) = (store.clone(), rx.clone());
            let h = std::thread::Builder::new()
                .name(format!("coretalk-read-{i}"))
                .spawn(move || serve(&*store, rx, delay))
                .map_err(|e| StoreError::Backend(format!("cannot start a reader thread: {e}")))?;
            handles.push(h);
        }
        Ok((ReaderPool { tx }, ReadersJoin { handles }))
    }

    /// Queues `queries`; `done` gets every query with its answer, in order, on a reader thread.
    /// Fails at once, without calling `done`, when the queue is full or the pool is gone.
    pub fn read(&self, queries: Vec<ReadQuery>, done: ReadCompletion) -> Result<(), StoreError> {
        match self.tx.try_send(Job { queries, done }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Backend(READ_QUEUE_FULL.to_owned())),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Stopped),
        }
    }

    /// Jobs waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }
}

/// One reader thread: answers jobs until the queue is closed and drained. A panic inside the
/// store answers that query with an error instead of taking the thread down.
fn serve(store: &dyn Store, rx: Receiver<Job>, delay: Duration) {
    for job in rx {
        let results = job
            .queries
            .into_iter()
            .map(|q| {
                let r = catch_unwind(AssertUnwindSafe(|| store.read(&q))).unwrap_or_else(|_| {
                    Err(StoreError::Backend("a store read panicked".to_owned()))
                });
                (q, r)
            })
            .collect();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if catch_unwind(AssertUnwindSafe(|| (job.done)(results))).is_err() {
            log::error!("a store read completion panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::store::{ReadAnswer, RedbStore};
    use std::sync::mpsc;

    #[test]
    fn answers_come_back_in_order_through_the_callback() {
        let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory());
        let (pool, join) = ReaderPool::spawn(store, 2, 8, Duration::ZERO).unwrap();
        let (tx, rx) = mpsc::channel();
        let qs = vec![ReadQuery::User(UserId(1)), ReadQuery::Topic("grpX".into())];
        pool.read(
            qs.clone(),
            Box::new(move |r| {
                tx.send(r).unwrap();
            }),
        )
        .unwrap();
        let got = rx.recv().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, qs[0]);
        assert!(matches!(got[0].1, Ok(ReadAnswer::User(None))));
        assert_eq!(got[1].0, qs[1]);
        assert!(matches!(got[1].1, Ok(ReadAnswer::Topic(None))));
        drop(pool);
        join.join();
    }

    #[test]
    fn a_full_queue_is_refused_at_once_and_the_pool_ends_when_dropped() {
        // One thread held inside its first callback, a queue of one: the third read is refused.
        let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory());
        let (pool, join) = ReaderPool::spawn(store, 1, 1, Duration::ZERO).unwrap();
        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        pool.read(
            vec![ReadQuery::User(UserId(1))],
            Box::new(move |_| {
                entered_tx.send(()).unwrap();
                let _ = hold_rx.recv();
            }),
        )
        .unwrap();
        entered_rx.recv().unwrap();
        pool.read(vec![ReadQuery::User(UserId(2))], Box::new(|_| {}))
            .unwrap();
        let err = pool
            .read(vec![ReadQuery::User(UserId(3))], Box::new(|_| {}))
            .unwrap_err();
        assert_eq!(err, StoreError::Backend(READ_QUEUE_FULL.to_owned()));
        hold_tx.send(()).unwrap();
        drop(pool);
        join.join();
    }
}
