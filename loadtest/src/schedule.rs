//! Time: the shared clock (CLOCK_MONOTONIC nanoseconds, the same in every process on the
//! machine, so a timestamp written by one worker is comparable in another) and open-loop
//! pacing (send `i` is due at `start + i / rate`, whatever happened to send `i - 1`).

use std::sync::OnceLock;
use std::time::Duration;

/// Nanoseconds on CLOCK_MONOTONIC (since boot): the epoch every process shares.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A tokio instant for a shared-clock time (std's Instant is CLOCK_MONOTONIC on Linux too;
/// the pair below removes any offset).
pub fn instant_at(ns: u64) -> tokio::time::Instant {
    static BASE: OnceLock<(std::time::Instant, u64)> = OnceLock::new();
    let (i0, n0) = *BASE.get_or_init(|| (std::time::Instant::now(), now_ns()));
    let i = if ns >= n0 {
        i0 + Duration::from_nanos(ns - n0)
    } else {
        i0.checked_sub(Duration::from_nanos(n0 - ns)).unwrap_or(i0)
    };
    tokio::time::Instant::from_std(i)
}

/// Waits until the shared clock reaches `ns`. tokio timers have 1 ms granularity; with `spin`
/// the last ~1.5 ms are spent yielding to the runtime (other tasks and I/O still run) so
/// sends leave within microseconds of their scheduled time.
pub async fn wait_until(ns: u64, spin: bool) {
    const SPIN_NS: u64 = 1_500_000;
    let now = now_ns();
    if now >= ns {
        return;
    }
    if !spin {
        tokio::time::sleep_until(instant_at(ns)).await;
        return;
    }
    if ns - now > SPIN_NS {
        tokio::time::sleep_until(instant_at(ns - SPIN_NS)).await;
    }
    while now_ns() < ns {
        tokio::task::yield_now().await;
    }
}

/// Fixed-interval schedule: send `i` is due at `start_ns + i * 1e9 / rate`.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub start_ns: u64,
    pub end_ns: u64,
    pub rate: f64,
}

impl Pace {
    /// The due time of send `i`, or `None` once it falls at or after the end.
    pub fn due(&self, i: u64) -> Option<u64> {
        if self.rate <= 0.0 {
            return None;
        }
        let t = self.start_ns + (i as f64 * 1e9 / self.rate) as u64;
        (t < self.end_ns).then_some(t)
    }
}

/// The window a measurement counts: sends scheduled in `[from_ns, to_ns)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    pub from_ns: u64,
    pub to_ns: u64,
}

impl Window {
    pub fn contains(&self, ns: u64) -> bool {
        ns >= self.from_ns && ns < self.to_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_is_fixed_interval_and_stops_at_the_end() {
        let p = Pace {
            start_ns: 1_000,
            end_ns: 1_000 + 1_000_000_000,
            rate: 4.0,
        };
        let due: Vec<u64> = (0..10).map_while(|i| p.due(i)).collect();
        assert_eq!(
            due,
            vec![1_000, 250_001_000, 500_001_000, 750_001_000],
            "4/s over one second"
        );
    }

    #[test]
    fn instants_follow_the_shared_clock() {
        let a = instant_at(now_ns());
        let b = instant_at(now_ns() + 1_000_000);
        let d = b - a;
        assert!(d >= Duration::from_micros(900) && d <= Duration::from_millis(5));
    }
}
