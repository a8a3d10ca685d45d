//! The shard's journal: the log that makes a topic's appends durable without a trip to the
//! store thread. A `{pub}` whose write is [`journaled`] is encoded into this shard's pending
//! round and handed to the store thread at once as a write behind the acknowledgement; one
//! task per shard writes each round to the current segment file and syncs it (io_uring
//! `write` + `fdatasync`, on this shard's own ring: no thread hop, no blocking call; direct I/O
//! by default, `journal_file.rs`), and only then are the round's publishes acknowledged.
//! Records that arrive while a round is being synced form the next round, so under load one
//! sync covers many messages (group commit per shard).
//!
//! A segment grows to `store.journal_segment_kib`; the task then opens the next one and asks
//! the store thread for a durable commit (a waited empty write): once it completes, everything
//! in the older segments is durable in the store and they are removed. Replay after a crash is
//! `store::journal::replay`, run by the server before any shard starts.
//!
//! [`journaled`]: crate::store::journal::journaled

use std::future::poll_fn;
use std::path::PathBuf;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::shard::journal_file::{Opened, SegmentFile};
use crate::shard::local::with;
use crate::shard::{Local, ShardCtx};
use crate::store::journal::{encode, segment_path};
use crate::store::{StoreError, WriteBatch};

/// The journal's state on its shard (the file itself is owned by the task).
#[derive(Debug)]
pub(crate) struct Journal {
    /// Directory of the segment files.
    dir: PathBuf,
    /// Rotate to a new segment once the current one holds this many bytes.
    segment_bytes: u64,
    /// Write segments with direct I/O (`store.journal_direct_io`).
    direct: bool,
    /// Records not yet handed to the task, and the tickets of the writes they hold.
    buf: Vec<u8>,
    tickets: Vec<u64>,
    /// The task, when it waits for records.
    waker: Option<Waker>,
}

/// One round the task writes and syncs.
pub(crate) struct Round {
    bytes: Vec<u8>,
    tickets: Vec<u64>,
}

impl Journal {
    pub(crate) fn new(dir: PathBuf, segment_bytes: u64, direct: bool) -> Journal {
        Journal {
            dir,
            segment_bytes: segment_bytes.max(1),
            direct,
            buf: Vec::new(),
            tickets: Vec::new(),
            waker: None,
        }
    }

    /// Adds `batch` to the next round; the write's waiter is `ticket`.
    pub(crate) fn append(&mut self, ticket: u64, batch: &WriteBatch) -> Result<(), StoreError> {
        encode(&mut self.buf, batch);
        self.tickets.push(ticket);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        Ok(())
    }

    /// The next round, once there is one.
    fn poll_round(&mut self, cx: &mut Context<'_>) -> Poll<Round> {
        if self.tickets.is_empty() {
            self.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Round {
            bytes: std::mem::take(&mut self.buf),
            tickets: std::mem::take(&mut self.tickets),
        })
    }
}

impl ShardCtx {
    /// A round was written and synced (or failed): its writes are acknowledged (or fail) in
    /// this step, in the order they were journaled.
    fn journal_synced(&mut self, tickets: Vec<u64>, res: Result<(), StoreError>) {
        if let Err(e) = &res {
            log::error!(
                "shard {}: journal write failed, its writes are refused: {e}",
                self.id.0
            );
        }
        for ticket in tickets {
            self.completions.push_back(Local::StoreDone {
                ticket,
                res: res.clone(),
            });
        }
        self.run_work();
        self.flush();
    }

    /// The task opened segment `current`: ask the store thread for a durable commit, after
    /// which the older segments hold nothing the store lacks.
    fn journal_rotated(&mut self, current: u64) {
        let service = self.service.clone();
        let res = self.writer.submit(
            Vec::new(),
            Box::new(move |res| {
                if res.is_ok() {
                    let _ = service.send(Local::JournalCheckpoint { below: current });
                }
            }),
        );
        if let Err(e) = res {
            // The segments stay; the next rotation retries (replay is idempotent anyway).
            log::warn!("shard {}: journal checkpoint not queued: {e}", self.id.0);
        }
    }

    /// Removes this shard's segments older than `below` (their content is durable in the
    /// store), off the executor.
    pub(super) fn journal_checkpointed(&mut self, below: u64) {
        let Some(j) = &self.journal else { return };
        let (dir, shard) = (j.dir.clone(), self.id.0);
        glommio::spawn_local(async move {
            let removed = glommio::executor()
                .spawn_blocking(move || {
                    let mut n = 0;
                    for seg in (0..below).rev() {
                        match std::fs::remove_file(segment_path(&dir, shard, seg)) {
                            Ok(()) => n += 1,
                            // Older ones were removed by an earlier checkpoint.
                            Err(_) => break,
                        }
                    }
                    n
                })
                .await;
            log::debug!("shard {shard}: journal checkpoint removed {removed} segment(s)");
        })
        .detach();
    }
}

/// The journal task: writes and syncs rounds, one at a time, rotating segments. While a
/// segment is in use the next one is prepared (created, zero-filled for direct I/O, synced)
/// in the background, so that a rotation waits for none of that.
pub(crate) async fn journal_loop() {
    let Some((dir, shard, segment_bytes, mut direct)) = with(|ctx| {
        ctx.journal
            .as_ref()
            .map(|j| (j.dir.clone(), ctx.id.0, j.segment_bytes, j.direct))
    }) else {
        return;
    };
    let (stats, warn, delay) = with(|ctx| {
        let store = &ctx.cfg.store;
        (
            ctx.stats.clone(),
            Duration::from_millis(store.stall_warn_ms),
            Duration::from_millis(store.faults.sync_delay_ms),
        )
    });
    let prepare = |segment: u64, direct: bool| {
        let path = segment_path(&dir, shard, segment);
        (
            segment,
            glommio::spawn_local(SegmentFile::create(path, segment_bytes, direct)),
        )
    };
    let mut segment = 0u64;
    let mut file: Option<SegmentFile> = None;
    let mut next: Option<(u64, glommio::Task<Result<Opened, StoreError>>)> = None;
    let mut pos = 0u64;
    loop {
        let round = poll_fn(|cx| {
            with(|ctx| match ctx.journal.as_mut() {
                Some(j) => j.poll_round(cx),
                None => Poll::Pending,
            })
        })
        .await;
        let len = round.bytes.len() as u64;
        // Watched from the write to the sync's answer: the round's publishes wait that long.
        stats.journal_sync.begin();
        let res = async {
            if file.is_some() && pos + len > segment_bytes {
                if let Some(f) = file.take() {
                    f.close().await?;
                }
                segment += 1;
                pos = 0;
            }
            if file.is_none() {
                let prepared = match next.take() {
                    Some((n, task)) if n == segment => task.await.ok(),
                    _ => None,
                };
                let opened = match prepared {
                    Some(o) => o,
                    // None prepared, or its preparation failed: once more, now.
                    None => {
                        let path = segment_path(&dir, shard, segment);
                        SegmentFile::create(path, segment_bytes, direct).await?
                    }
                };
                if let Some(why) = opened.refused.as_ref().filter(|_| direct) {
                    log::warn!(
                        "shard {shard}: the journal's filesystem refuses direct I/O ({why}): \
                         writing through the page cache"
                    );
                    direct = false;
                }
                log::debug!(
                    "shard {shard}: journal segment {segment} opened ({})",
                    if opened.file.is_direct() {
                        "direct I/O"
                    } else {
                        "buffered"
                    }
                );
                file = Some(opened.file);
                next = Some(prepare(segment + 1, direct));
                if segment > 0 {
                    with(|ctx| ctx.journal_rotated(segment));
                }
            }
            let f = file.as_mut().ok_or(StoreError::Stopped)?;
            f.write(round.bytes, pos).await?;
            pos += len;
            if !delay.is_zero() {
                // Fault injection (`store.faults.sync_delay_ms`): a slow fdatasync. io_uring
                // would leave the shard running meanwhile, and so does the timer.
                glommio::timer::sleep(delay).await;
            }
            f.sync().await
        }
        .await;
        stats.journal_sync.end(warn);
        if res.is_err() {
            // The segment may now end in a torn record, and replay stops at one: the next
            // round goes to a new segment (opening it retries until the disk has room again).
            if let Some(f) = file.take() {
                let _ = f.close().await;
                segment += 1;
                pos = 0;
            }
        }
        with(|ctx| ctx.journal_synced(round.tickets, res));
    }
}
