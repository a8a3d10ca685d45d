//! Rate limits for log lines of conditions that can repeat thousands of times a second (accept
//! failures at the file limit, slow-consumer disconnects, malformed input): the first few of
//! each interval are logged, the rest counted and summarised in one line once the interval is
//! over. One [`Noisy`] per condition per shard, so nothing is shared between threads.

use std::time::{Duration, Instant};

/// One condition's limiter.
#[derive(Debug)]
pub struct Noisy {
    per_interval: u32,
    interval: Duration,
    window: Instant,
    logged: u32,
    suppressed: u64,
}

impl Noisy {
    /// At most `per_sec` lines per second (0: none, only summaries).
    pub fn per_second(per_sec: u32) -> Noisy {
        Noisy {
            per_interval: per_sec,
            interval: Duration::from_secs(1),
            window: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    /// One occurrence at `now`. `Some(n)`: log it, after a summary of the `n` occurrences
    /// suppressed before it (when `n > 0`); `None`: stay quiet (it is counted).
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        let mut before = 0;
        if now.duration_since(self.window) >= self.interval {
            before = std::mem::take(&mut self.suppressed);
            self.window = now;
            self.logged = 0;
        }
        if self.logged < self.per_interval {
            self.logged += 1;
            Some(before)
        } else {
            self.suppressed += before + 1;
            None
        }
    }

    /// Occurrences suppressed in an interval that is over (to summarise from a timer, so a
    /// burst that stopped is still reported); 0 when there is nothing to report.
    pub fn flush(&mut self, now: Instant) -> u64 {
        if now.duration_since(self.window) >= self.interval {
            self.window = now;
            self.logged = 0;
            std::mem::take(&mut self.suppressed)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_a_few_times_then_summarised() {
        let t0 = Instant::now();
        let mut n = Noisy::per_second(2);
        assert_eq!(n.hit(t0), Some(0));
        assert_eq!(n.hit(t0), Some(0));
        for _ in 0..10 {
            assert_eq!(n.hit(t0), None);
        }
        assert_eq!(n.flush(t0), 0, "the interval is not over");
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(n.hit(t1), Some(10), "the next line carries the summary");
        assert_eq!(n.hit(t1), Some(0));
        assert_eq!(n.hit(t1), None);
        assert_eq!(
            n.flush(t1 + Duration::from_secs(1)),
            1,
            "a timer reports the rest"
        );
        assert_eq!(n.flush(t1 + Duration::from_secs(3)), 0);
    }
}
