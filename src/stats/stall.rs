//! Stall watching for the durable syncs: the store thread's group commit and each shard's
//! journal `fdatasync`. The party that syncs marks the start and end of each sync on a
//! [`SyncWatch`]; anyone may read the age of the sync in progress (`/metrics`, `/debug/vars`),
//! and a watcher (a shard's housekeeping) asks it once a second whether a stall began or ended,
//! to count it and log it.
//!
//! A stall is a sync that has lasted at least the threshold (`store.stall_warn_ms`). It is
//! counted once: by the watcher as soon as it sees the sync over the threshold, or by the
//! syncing party when the sync ends, whichever comes first, so the counter is exact however
//! often the watcher looks. Only atomics: the syncing party and the watchers are different
//! threads (the store thread and shard 0) or the same one (a shard and its journal task).

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds since the process's first use of this module, plus one (0 means "none").
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    (base.elapsed().as_nanos() as u64).saturating_add(1)
}

/// The syncs of one party, for monitoring.
#[derive(Debug, Default)]
pub struct SyncWatch {
    /// When the sync in progress began ([`now_ns`]); 0 when none is.
    started: AtomicU64,
    /// The `started` of the last sync counted as a stall (so that it is counted once).
    counted: AtomicU64,
    /// Syncs that lasted at least the threshold.
    stalls: AtomicU64,
    /// Stalls that have ended, and how long the last one took, ms (for the watcher's line).
    ended: AtomicU64,
    last_ms: AtomicU64,
}

/// What a watcher learns from [`SyncWatch::check`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StallNews {
    /// A stall it is the first to see: the sync in progress has lasted this long.
    pub began: Option<Duration>,
    /// Stalls that ended since the watcher last looked, and how long the last one took.
    pub ended: Option<(u64, Duration)>,
}

impl SyncWatch {
    /// A sync begins.
    pub fn begin(&self) {
        self.started.store(now_ns(), SeqCst);
    }

    /// The sync in progress ended; counts it as a stall if it lasted `warn` or more and no
    /// watcher counted it yet (`warn` zero: stalls are not counted).
    pub fn end(&self, warn: Duration) {
        let started = self.started.swap(0, SeqCst);
        if started == 0 {
            return;
        }
        let took = Duration::from_nanos(now_ns().saturating_sub(started));
        if warn.is_zero() || took < warn {
            return;
        }
        if self.counted.swap(started, SeqCst) != started {
            self.stalls.fetch_add(1, SeqCst);
        }
        self.last_ms.store(took.as_millis() as u64, SeqCst);
        self.ended.fetch_add(1, SeqCst);
    }

    /// How long the sync in progress has lasted (zero when none is).
    pub fn age(&self) -> Duration {
        match self.started.load(SeqCst) {
            0 => Duration::ZERO,
            s => Duration::from_nanos(now_ns().saturating_sub(s)),
        }
    }

    /// Syncs that lasted at least the threshold (those in progress included, once seen).
    pub fn stalls(&self) -> u64 {
        self.stalls.load(SeqCst)
    }

    /// The watcher's look: counts a sync in progress past `warn` as a stall (once), and
    /// reports stalls ended since `seen_ended` (which it updates).
    pub fn check(&self, warn: Duration, seen_ended: &mut u64) -> StallNews {
        let mut news = StallNews::default();
        let started = self.started.load(SeqCst);
        if !warn.is_zero() && started != 0 {
            let age = Duration::from_nanos(now_ns().saturating_sub(started));
            if age >= warn && self.counted.swap(started, SeqCst) != started {
                self.stalls.fetch_add(1, SeqCst);
                news.began = Some(age);
            }
        }
        let ended = self.ended.load(SeqCst);
        if ended != *seen_ended {
            let n = ended.wrapping_sub(*seen_ended);
            *seen_ended = ended;
            let last = Duration::from_millis(self.last_ms.load(SeqCst));
            news.ended = Some((n, last));
        }
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WARN: Duration = Duration::from_millis(30);

    #[test]
    fn a_short_sync_is_no_stall_and_leaves_no_age() {
        let w = SyncWatch::default();
        let mut seen = 0;
        w.begin();
        assert!(w.age() < WARN);
        assert_eq!(w.check(WARN, &mut seen), StallNews::default());
        w.end(WARN);
        assert_eq!(w.age(), Duration::ZERO);
        assert_eq!(w.stalls(), 0);
        assert_eq!(w.check(WARN, &mut seen), StallNews::default());
    }

    #[test]
    fn a_stall_seen_in_progress_is_counted_once_and_reported_at_its_end() {
        let w = SyncWatch::default();
        let mut seen = 0;
        w.begin();
        std::thread::sleep(WARN + Duration::from_millis(5));
        let news = w.check(WARN, &mut seen);
        assert!(news.began.is_some_and(|a| a >= WARN), "{news:?}");
        assert_eq!(w.stalls(), 1);
        assert!(w.age() >= WARN);
        assert_eq!(w.check(WARN, &mut seen).began, None, "counted once");
        w.end(WARN);
        assert_eq!(w.stalls(), 1, "the end does not count it again");
        assert_eq!(w.age(), Duration::ZERO);
        let news = w.check(WARN, &mut seen);
        assert_eq!(news.began, None);
        let (n, took) = news.ended.expect("the end is reported");
        assert_eq!(n, 1);
        assert!(took >= WARN);
        assert_eq!(w.check(WARN, &mut seen), StallNews::default());
    }

    #[test]
    fn a_stall_missed_by_the_watcher_is_counted_at_its_end() {
        let w = SyncWatch::default();
        let mut seen = 0;
        w.begin();
        std::thread::sleep(WARN + Duration::from_millis(5));
        w.end(WARN);
        assert_eq!(w.stalls(), 1);
        let news = w.check(WARN, &mut seen);
        assert_eq!(news.began, None);
        assert_eq!(news.ended.map(|(n, _)| n), Some(1));
    }

    #[test]
    fn a_zero_threshold_counts_nothing() {
        let w = SyncWatch::default();
        let mut seen = 0;
        w.begin();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(w.check(Duration::ZERO, &mut seen), StallNews::default());
        w.end(Duration::ZERO);
        assert_eq!(w.stalls(), 0);
    }
}
