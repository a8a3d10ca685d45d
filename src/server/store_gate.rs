//! The store as the shards and the writer see it: a [`Store`] that the shutdown sequence can
//! close (drop the database, which makes redb record a clean shutdown) while threads it has
//! abandoned still hold a reference to it.
//!
//! Every call takes the shared side of a lock with `try_read` and never waits: once closing has
//! begun, new calls fail at once with [`StoreError::Stopped`], and the close waits only for the
//! calls already inside (a read, or the writer's group commit) to return. So a commit is never
//! cut in half, and nothing that reported success is dropped before the database closes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, TryLockError};

use crate::ids::UserId;
use crate::store::{
    AuthRecord, DelRecord, LastMessage, MessageQuery, MessageRecord, ReadAnswer, ReadQuery, Store,
    StoreError, SubRecord, TopicRecord, UserRecord, WriteBatch,
};

/// A closable wrapper around the one store of the process.
#[derive(Debug)]
pub struct StoreGate<S> {
    /// Set first when closing begins: calls arriving later are refused without touching the lock,
    /// so a steady stream of calls cannot starve the close.
    closing: AtomicBool,
    /// `None` once closed. Only [`StoreGate::try_close`] takes the exclusive side (`try_write`).
    inner: RwLock<Option<S>>,
}

impl<S: Store> StoreGate<S> {
    /// Wraps an open store.
    pub fn new(store: S) -> StoreGate<S> {
        StoreGate {
            closing: AtomicBool::new(false),
            inner: RwLock::new(Some(store)),
        }
    }

    /// Refuses every call from now on; the calls already inside finish normally.
    pub fn begin_close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Closes the store if no call is inside any more: takes it out and drops it (for redb: the
    /// clean close). True once closed (also on later calls). Implies [`StoreGate::begin_close`].
    pub fn try_close(&self) -> bool {
        self.begin_close();
        let store = match self.inner.try_write() {
            Ok(mut guard) => guard.take(),
            Err(TryLockError::WouldBlock) => return false,
            // Only a panic in this function while it held the lock; nothing is left to close.
            Err(TryLockError::Poisoned(_)) => return true,
        };
        // Dropped outside the lock; for redb this writes the shutdown record and syncs.
        drop(store);
        true
    }

    /// Runs `f` on the store unless closing has begun.
    fn with<T>(&self, f: impl FnOnce(&S) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(StoreError::Stopped);
        }
        // `try_read` fails only while `try_close` holds the lock, i.e. after `closing` was set.
        match self.inner.try_read() {
            Ok(guard) => match guard.as_ref() {
                Some(store) => f(store),
                None => Err(StoreError::Stopped),
            },
            Err(_) => Err(StoreError::Stopped),
        }
    }
}

impl<S: Store> Store for StoreGate<S> {
    fn user(&self, uid: UserId) -> Result<Option<UserRecord>, StoreError> {
        self.with(|s| s.user(uid))
    }
    fn auth(&self, unique: &str) -> Result<Option<AuthRecord>, StoreError> {
        self.with(|s| s.auth(unique))
    }
    fn auths_of_user(&self, uid: UserId) -> Result<Vec<AuthRecord>, StoreError> {
        self.with(|s| s.auths_of_user(uid))
    }
    fn topic(&self, name: &str) -> Result<Option<TopicRecord>, StoreError> {
        self.with(|s| s.topic(name))
    }
    fn sub(&self, topic: &str, uid: UserId) -> Result<Option<SubRecord>, StoreError> {
        self.with(|s| s.sub(topic, uid))
    }
    fn subs_of_topic(&self, topic: &str) -> Result<Vec<SubRecord>, StoreError> {
        self.with(|s| s.subs_of_topic(topic))
    }
    fn subs_of_user(&self, uid: UserId) -> Result<Vec<SubRecord>, StoreError> {
        self.with(|s| s.subs_of_user(uid))
    }
    fn messages(&self, topic: &str, q: MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        self.with(|s| s.messages(topic, q))
    }
    fn last_message(&self, topic: &str) -> Result<Option<LastMessage>, StoreError> {
        self.with(|s| s.last_message(topic))
    }
    fn del_log(
        &self,
        topic: &str,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DelRecord>, StoreError> {
        self.with(|s| s.del_log(topic, since, before, limit))
    }
    fn find_tags(
        &self,
        tags: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.with(|s| s.find_tags(tags, limit))
    }
    fn apply(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        self.with(|s| Ok(s.apply(batches)))
            .unwrap_or_else(|e| vec![Err(e); batches.len()])
    }
    fn apply_volatile(&self, batches: &[WriteBatch]) -> Vec<Result<(), StoreError>> {
        self.with(|s| Ok(s.apply_volatile(batches)))
            .unwrap_or_else(|e| vec![Err(e); batches.len()])
    }
    fn sync(&self) -> Result<(), StoreError> {
        self.with(|s| s.sync())
    }
    fn read(&self, q: &ReadQuery) -> Result<ReadAnswer, StoreError> {
        self.with(|s| s.read(q))
    }
    fn cred_owner(&self, unique: &str) -> Result<Option<UserId>, StoreError> {
        self.with(|s| s.cred_owner(unique))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;

    use super::*;
    use crate::ids::UnixMillis;
    use crate::store::testing::HookedStore;
    use crate::store::{RedbStore, WriteOp};

    fn msg(seq: u64) -> WriteOp {
        WriteOp::AppendMessage(MessageRecord {
            topic: "grpA".into(),
            seq,
            ts: UnixMillis(seq),
            from: UserId(1),
            head: None,
            content: format!("\"m{seq}\""),
            deleted: false,
        })
    }

    /// The hook of a store whose `apply` announces itself and then waits for the test's
    /// go-ahead.
    pub(crate) type HeldApply = HookedStore<Box<dyn Fn(&[WriteBatch]) + Send + Sync>>;

    /// A gate over a durable redb store in `dir` whose `apply` sends on the first receiver when
    /// it is inside and then waits for a send on (or the drop of) the second sender.
    pub(crate) fn held_gate(
        dir: &std::path::Path,
    ) -> (
        Arc<StoreGate<HeldApply>>,
        mpsc::Receiver<()>,
        mpsc::Sender<()>,
    ) {
        let (entered_tx, entered) = mpsc::sync_channel(1);
        let (go, go_rx) = mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let gate = Arc::new(StoreGate::new(HeldApply {
            inner: RedbStore::open(dir, true).unwrap(),
            hook: Box::new(move |_: &[WriteBatch]| {
                let _ = entered_tx.send(());
                let _ = go_rx.lock().unwrap().recv();
            }),
        }));
        (gate, entered, go)
    }

    #[test]
    fn closing_waits_for_the_commit_inside_and_refuses_new_calls() {
        let dir = tempfile::tempdir().unwrap();
        let (gate, entered, go) = held_gate(dir.path());
        let writer = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || gate.apply(&[vec![msg(1)], vec![msg(2)]]))
        };
        entered.recv().unwrap(); // the commit is inside the gate now

        assert!(!gate.try_close(), "closed under a commit in progress");
        // New calls are refused at once, without waiting for the commit.
        assert_eq!(gate.last_message("grpA"), Err(StoreError::Stopped));
        assert_eq!(
            gate.apply(&[vec![msg(3)]]),
            vec![Err(StoreError::Stopped)],
            "a group after the close began must not be written"
        );
        assert!(!gate.try_close());

        go.send(()).unwrap();
        assert_eq!(writer.join().unwrap(), vec![Ok(()), Ok(())]);
        assert!(gate.try_close());
        assert!(gate.try_close(), "closing twice is harmless");
        assert_eq!(gate.last_message("grpA"), Err(StoreError::Stopped));

        // The database was really closed although the gate is still alive, as it is for an
        // abandoned shard (redb allows one open handle per file), and it holds the commit that
        // finished inside the gate, not the one refused after.
        let reopened = RedbStore::open(dir.path(), true).expect("reopen after close");
        assert_eq!(
            reopened.last_message("grpA").unwrap().map(|l| l.seq),
            Some(2)
        );
        drop(gate);
    }

    #[test]
    fn calls_pass_through_until_closed() {
        let gate = StoreGate::new(RedbStore::in_memory());
        assert_eq!(gate.apply(&[vec![msg(1)]]), vec![Ok(())]);
        assert_eq!(gate.last_message("grpA").unwrap().map(|l| l.seq), Some(1));
        assert!(gate.try_close());
        assert_eq!(gate.user(UserId(1)), Err(StoreError::Stopped));
    }
}
