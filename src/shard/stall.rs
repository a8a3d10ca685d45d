//! Watching the durable syncs for stalls, from each shard's housekeeping (once a second): the
//! shard's own journal sync, and on shard 0 the store thread's group commit. A sync that has
//! lasted `store.stall_warn_ms` is counted as a stall when first seen ([`SyncWatch::check`];
//! one the watcher missed is counted by the syncing party when it ends) and logged when it
//! begins and when it ends, rate-limited per shard (`log.noisy_per_sec`).
//!
//! It only reads atomics: a stalled store thread never holds up a shard here.

use std::time::{Duration, Instant};

use crate::logging::Noisy;
use crate::stats::{StallNews, SyncWatch};

use super::ShardCtx;

/// A shard's watcher state.
#[derive(Debug)]
pub(super) struct StallWatch {
    noisy: Noisy,
    journal_seen: u64,
    writer_seen: u64,
}

impl StallWatch {
    pub(super) fn new(lines_per_sec: u32) -> StallWatch {
        StallWatch {
            noisy: Noisy::per_second(lines_per_sec),
            journal_seen: 0,
            writer_seen: 0,
        }
    }
}

impl ShardCtx {
    /// Counts and logs the stalls that began or ended since the last look.
    pub(super) fn watch_stalls(&mut self) {
        let warn = Duration::from_millis(self.cfg.store.stall_warn_ms);
        let faults = self.cfg.store.faults.any();
        let now = Instant::now();
        let news = self
            .stats
            .journal_sync
            .check(warn, &mut self.stall_watch.journal_seen);
        report(
            &mut self.stall_watch.noisy,
            now,
            "journal sync",
            (warn, faults),
            news,
        );
        if self.id.0 == 0 {
            let w: &SyncWatch = &self.writer.stats().commit;
            let news = w.check(warn, &mut self.stall_watch.writer_seen);
            report(
                &mut self.stall_watch.noisy,
                now,
                "store commit",
                (warn, faults),
                news,
            );
        }
        let suppressed = self.stall_watch.noisy.flush(now);
        if suppressed > 0 {
            tracing::warn!(count = suppressed, "more store stall lines suppressed");
        }
    }
}

/// One watch's news as log lines; `cfg` is the threshold and whether a fault is injected.
fn report(noisy: &mut Noisy, now: Instant, what: &str, cfg: (Duration, bool), news: StallNews) {
    let (warn, faults) = cfg;
    let injected = if faults {
        " (store.faults.sync_delay_ms is set)"
    } else {
        ""
    };
    if let Some(age) = news.began {
        if let Some(before) = noisy.hit(now) {
            tracing::warn!(
                suppressed = before,
                "store stall: a {what} has been in progress for {} ms{injected}; writes wait for it",
                age.as_millis()
            );
        }
    }
    if let Some((n, last)) = news.ended {
        if let Some(before) = noisy.hit(now) {
            tracing::warn!(
                suppressed = before,
                "store stall over: {n} {what}(s) of {} ms or more ended, the last after {} ms{injected}",
                warn.as_millis(),
                last.as_millis()
            );
        }
    }
}
