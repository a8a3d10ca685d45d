//! The shutdown sequence after the first SIGINT/SIGTERM: the graceful drain, bounded by
//! `runtime.shutdown_timeout_ms` and cut short by a second signal, then the close of the store,
//! which happens in every case.
//!
//! Everything it waits for reports through one channel of [`Event`]s (signals from
//! `coretalk-signal`, thread exits from small `coretalk-wait` threads that join them), so the
//! main thread never blocks on a join it cannot abandon. What it abandons keeps running until
//! the process exits; the store is closed under it through [`StoreGate`].

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::signals;
use super::store_gate::StoreGate;
use crate::store::Store;

/// Something the shutdown sequence hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGINT or SIGTERM (its number).
    Signal(i32),
    /// Shard `N`'s thread has ended.
    ShardExited(usize),
    /// The store writer committed everything queued and its thread ended.
    WriterExited,
    /// The hash threads finished their queue and ended.
    HashExited,
}

/// How the process ends; `main` exits with [`Exit::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything stopped in order and the store was closed: status 0.
    Clean,
    /// A second signal or the deadline cut the drain short; the store was still closed cleanly
    /// after the write in progress: status 3.
    CutShort,
    /// The store could not be closed (a further signal, or a store call still running another
    /// `runtime.shutdown_timeout_ms` after the cut): status 4. redb recovers the file at the next
    /// start; with `store.durable = false`, writes since start-up are lost.
    StoreLeftOpen,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            Exit::Clean => 0,
            Exit::CutShort => 3,
            Exit::StoreLeftOpen => 4,
        }
    }
}

/// What has not stopped yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    shards: Vec<bool>,
    writer: bool,
    hash: bool,
}

impl Pending {
    /// `shards` shard threads, the writer and the hash threads, all still running.
    pub fn new(shards: usize) -> Pending {
        Pending {
            shards: vec![true; shards],
            writer: true,
            hash: true,
        }
    }

    fn is_empty(&self) -> bool {
        !self.writer && !self.hash && !self.shards.contains(&true)
    }

    fn stopped(&mut self, ev: Event) {
        match ev {
            Event::ShardExited(i) => {
                if let Some(s) = self.shards.get_mut(i) {
                    *s = false;
                }
            }
            Event::WriterExited => self.writer = false,
            Event::HashExited => self.hash = false,
            Event::Signal(_) => {}
        }
    }

    /// What is left, for the log line that abandons it.
    pub fn describe(&self) -> String {
        let shards: Vec<String> = (0..self.shards.len())
            .filter(|&i| self.shards[i])
            .map(|i| i.to_string())
            .collect();
        let mut parts = Vec::new();
        if !shards.is_empty() {
            parts.push(format!("shard(s) {}", shards.join(", ")));
        }
        if self.writer {
            parts.push("the store writer's queue (never acknowledged)".to_owned());
        }
        if self.hash {
            parts.push("the hash threads".to_owned());
        }
        if parts.is_empty() {
            "nothing".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// How the drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Everything pending stopped.
    Done,
    /// Another SIGINT/SIGTERM arrived first.
    Signal(i32),
    /// The deadline passed first.
    Deadline,
}

/// Waits until nothing is pending, another signal arrives, or `deadline` passes; `pending` is
/// left holding what did not stop.
pub fn drain(events: &Receiver<Event>, pending: &mut Pending, deadline: Instant) -> Drain {
    loop {
        if pending.is_empty() {
            return Drain::Done;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Signal(sig)) => return Drain::Signal(sig),
            Ok(ev) => pending.stopped(ev),
            // Nothing can report any more: only the deadline is left to wait for.
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left);
                return Drain::Deadline;
            }
            Err(RecvTimeoutError::Timeout) => return Drain::Deadline,
        }
    }
}

/// How often [`close_store`] retries while a store call is still inside.
const CLOSE_POLL: Duration = Duration::from_millis(2);

/// Closes the store: refuses new calls, waits for the calls inside (the writer's group commit,
/// a shard's read) and drops the database. Gives up, leaving it open, on another signal or at
/// `deadline`; the error says which.
pub fn close_store<S: Store>(
    events: &Receiver<Event>,
    gate: &StoreGate<S>,
    deadline: Instant,
) -> Result<(), String> {
    gate.begin_close();
    loop {
        if gate.try_close() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err("a store call was still running at the deadline".to_owned());
        }
        match events.recv_timeout(CLOSE_POLL) {
            Ok(Event::Signal(sig)) => {
                return Err(format!("{} while closing the store", signals::name(sig)))
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(CLOSE_POLL),
        }
    }
}

/// Runs `join` on a `coretalk-wait` thread and reports `done` when it returns. If the thread
/// cannot be started, `done` is never reported and the deadline covers it.
pub fn watch(events: &Sender<Event>, done: Event, join: impl FnOnce() + Send + 'static) {
    let events = events.clone();
    let started = std::thread::Builder::new()
        .name("coretalk-wait".to_owned())
        .stack_size(64 << 10)
        .spawn(move || {
            join();
            let _ = events.send(done);
        });
    if let Err(e) = started {
        log::error!("cannot start a thread to wait for {done:?}: {e}");
    }
}

/// After the first signal, whose number is `first`: waits for what `pending` lists (already
/// told to stop and [`watch`]ed) for at most `timeout`, then closes the store.
pub fn finish<S: Store>(
    events: &Receiver<Event>,
    mut pending: Pending,
    gate: &StoreGate<S>,
    timeout: Duration,
) -> Exit {
    let ms = timeout.as_millis();
    let clean = match drain(events, &mut pending, Instant::now() + timeout) {
        Drain::Done => true,
        Drain::Signal(sig) => {
            log::warn!(
                "second {} during shutdown: abandoning {}; closing the store",
                signals::name(sig),
                pending.describe()
            );
            false
        }
        Drain::Deadline => {
            log::warn!(
                "shutdown deadline of {ms} ms (runtime.shutdown_timeout_ms) passed: abandoning {}; closing the store",
                pending.describe()
            );
            false
        }
    };
    match close_store(events, gate, Instant::now() + timeout) {
        Ok(()) if clean => {
            log::info!("stopped cleanly");
            Exit::Clean
        }
        Ok(()) => {
            log::warn!(
                "store closed cleanly after the write in progress; exiting with status {}",
                Exit::CutShort.code()
            );
            Exit::CutShort
        }
        Err(why) => {
            log::error!(
                "store NOT closed ({why}); redb recovers it at the next start; exiting with status {}",
                Exit::StoreLeftOpen.code()
            );
            Exit::StoreLeftOpen
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::server::store_gate::tests::held_gate;
    use crate::store::{RedbStore, StoreError};

    const SOON: Duration = Duration::from_secs(30);

    #[test]
    fn the_drain_is_done_when_everything_reported() {
        let (tx, rx) = mpsc::channel();
        for ev in [
            Event::ShardExited(1),
            Event::WriterExited,
            Event::ShardExited(0),
            Event::HashExited,
        ] {
            tx.send(ev).unwrap();
        }
        let mut pending = Pending::new(2);
        assert_eq!(drain(&rx, &mut pending, Instant::now() + SOON), Drain::Done);
        assert_eq!(pending.describe(), "nothing");
    }

    #[test]
    fn a_signal_ends_the_drain_and_names_what_is_left() {
        let (tx, rx) = mpsc::channel();
        tx.send(Event::ShardExited(0)).unwrap();
        tx.send(Event::HashExited).unwrap();
        tx.send(Event::Signal(libc::SIGINT)).unwrap();
        tx.send(Event::WriterExited).unwrap(); // after the signal: not waited for
        let mut pending = Pending::new(3);
        assert_eq!(
            drain(&rx, &mut pending, Instant::now() + SOON),
            Drain::Signal(libc::SIGINT)
        );
        assert_eq!(
            pending.describe(),
            "shard(s) 1, 2, the store writer's queue (never acknowledged)"
        );
    }

    #[test]
    fn the_deadline_ends_the_drain() {
        let (tx, rx) = mpsc::channel();
        tx.send(Event::WriterExited).unwrap();
        let mut pending = Pending::new(1);
        let d = drain(
            &rx,
            &mut pending,
            Instant::now() + Duration::from_millis(20),
        );
        assert_eq!(d, Drain::Deadline);
        assert_eq!(pending.describe(), "shard(s) 0, the hash threads");
        drop(tx);
    }

    #[test]
    fn finish_closes_the_store_in_every_outcome() {
        // Clean: everything reported.
        let (tx, rx) = mpsc::channel();
        for ev in [
            Event::ShardExited(0),
            Event::WriterExited,
            Event::HashExited,
        ] {
            tx.send(ev).unwrap();
        }
        let gate = StoreGate::new(RedbStore::in_memory());
        assert_eq!(finish(&rx, Pending::new(1), &gate, SOON), Exit::Clean);
        assert_eq!(gate.last_message("grpA"), Err(StoreError::Stopped));

        // Cut short by a second signal with a shard that never stops.
        tx.send(Event::Signal(libc::SIGTERM)).unwrap();
        let gate = StoreGate::new(RedbStore::in_memory());
        assert_eq!(finish(&rx, Pending::new(1), &gate, SOON), Exit::CutShort);
        assert_eq!(gate.last_message("grpA"), Err(StoreError::Stopped));

        // Cut short by the deadline.
        let gate = StoreGate::new(RedbStore::in_memory());
        let short = Duration::from_millis(20);
        assert_eq!(finish(&rx, Pending::new(1), &gate, short), Exit::CutShort);
        assert_eq!(gate.last_message("grpA"), Err(StoreError::Stopped));
        assert_eq!(Exit::CutShort.code(), 3);
    }

    #[test]
    fn the_close_waits_for_the_commit_inside_unless_a_signal_or_the_deadline_comes() {
        let (tx, rx) = mpsc::channel();
        let dir = tempfile::tempdir().unwrap();
        let (gate, entered, go) = held_gate(dir.path());
        let writer = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.apply(&[vec![]]))
        };
        entered.recv().unwrap();

        let short = Instant::now() + Duration::from_millis(20);
        assert!(close_store(&rx, &gate, short).is_err());
        tx.send(Event::Signal(libc::SIGINT)).unwrap();
        let e = close_store(&rx, &gate, Instant::now() + SOON).unwrap_err();
        assert!(e.contains("SIGINT"), "{e}");

        // The commit inside finishes, and then the close goes through.
        let closer = std::thread::spawn(move || {
            let r = close_store(&rx, &gate, Instant::now() + SOON);
            (r, gate)
        });
        go.send(()).unwrap();
        assert_eq!(writer.join().unwrap(), vec![Ok(())]);
        let (r, _gate) = closer.join().unwrap();
        assert_eq!(r, Ok(()));
        RedbStore::open(dir.path(), true).expect("closed: the file opens again");
    }
}
