//! Token buckets, runtime-free: the rate limits of a session (client messages, notes,
//! authentication attempts) and of the shard's per-address table. Time is an argument.
//!
//! A bucket holds up to `burst` tokens and gains `per_min / 60_000` tokens per millisecond;
//! each attempt takes one token or is refused. Tokens are kept in 60,000ths, so a millisecond
//! adds exactly `per_min` units and the refill is exact in integers at any rate.

use crate::ids::UnixMillis;

/// Units per token: a millisecond at `per_min` adds `per_min` units.
const UNIT: u64 = 60_000;

/// The rate and size of one kind of bucket. `per_min == 0` is "no limit".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens gained per minute.
    pub per_min: u64,
    /// Most tokens held (the burst).
    pub burst: u64,
}

impl Rate {
    /// `per_sec` tokens a second, `burst` at most.
    pub fn per_sec(per_sec: u32, burst: u32) -> Rate {
        Rate {
            per_min: u64::from(per_sec) * 60,
            burst: u64::from(burst),
        }
    }

    /// `per_min` tokens a minute, `burst` at most.
    pub fn per_min(per_min: u32, burst: u32) -> Rate {
        Rate {
            per_min: u64::from(per_min),
            burst: u64::from(burst),
        }
    }

    /// No limit at all.
    pub const UNLIMITED: Rate = Rate {
        per_min: 0,
        burst: 0,
    };

    fn unlimited(self) -> bool {
        self.per_min == 0
    }
}

/// One bucket; starts full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens in [`UNIT`]s.
    units: u64,
    at: UnixMillis,
}

impl TokenBucket {
    /// A bucket not used yet: full at any rate and any time. Its units are past every burst,
    /// and the first refill caps them to the rate's burst, so it needs no rate or clock to be
    /// made (a session makes its buckets before it knows either).
    pub const UNUSED: TokenBucket = TokenBucket {
        units: u64::MAX,
        at: UnixMillis(0),
    };

    /// A full bucket at `now`.
    pub fn full(rate: Rate, now: UnixMillis) -> TokenBucket {
        TokenBucket {
            units: rate.burst.saturating_mul(UNIT),
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: UnixMillis) {
        let elapsed = now.0.saturating_sub(self.at.0);
        let gained = elapsed.saturating_mul(rate.per_min);
        self.units = self
            .units
            .saturating_add(gained)
            .min(rate.burst.saturating_mul(UNIT));
        if now > self.at {
            self.at = now;
        }
    }

    /// Takes one token at `now`; false (and nothing taken) when the bucket is empty.
    pub fn take(&mut self, rate: Rate, now: UnixMillis) -> bool {
        if rate.unlimited() {
            return true;
        }
        self.refill(rate, now);
        if self.units >= UNIT {
            self.units -= UNIT;
            true
        } else {
            false
        }
    }

    /// True when the bucket has refilled completely by `now` (it is then the same as a fresh
    /// one, so a table may forget it).
    pub fn is_full(&self, rate: Rate, now: UnixMillis) -> bool {
        let mut b = *self;
        b.refill(rate, now);
        b.units >= rate.burst.saturating_mul(UNIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let rate = Rate::per_sec(10, 3);
        let t0 = UnixMillis(1_000_000);
        let mut b = TokenBucket::full(rate, t0);
        assert!(b.take(rate, t0) && b.take(rate, t0) && b.take(rate, t0));
        assert!(!b.take(rate, t0), "burst spent");
        assert!(
            !b.take(rate, t0.plus_ms(99)),
            "a token takes 100 ms at 10/s"
        );
        assert!(b.take(rate, t0.plus_ms(100)));
        assert!(!b.take(rate, t0.plus_ms(100)));
        // A long pause refills to the burst, not beyond.
        let later = t0.plus_ms(60_000);
        assert!(b.is_full(rate, later));
        for _ in 0..3 {
            assert!(b.take(rate, later));
        }
        assert!(!b.take(rate, later));
    }

    #[test]
    fn slow_rates_refill_exactly_and_zero_is_unlimited() {
        let rate = Rate::per_min(6, 1);
        let t0 = UnixMillis(5_000);
        let mut b = TokenBucket::full(rate, t0);
        assert!(b.take(rate, t0));
        assert!(!b.take(rate, t0.plus_ms(9_999)));
        assert!(b.take(rate, t0.plus_ms(10_000)), "6/min = one per 10 s");
        let mut u = TokenBucket::full(Rate::UNLIMITED, t0);
        for _ in 0..10_000 {
            assert!(u.take(Rate::UNLIMITED, t0));
        }
        // A clock that steps back never adds tokens.
        let mut c = TokenBucket::full(rate, t0);
        assert!(c.take(rate, t0));
        assert!(!c.take(rate, UnixMillis(0)));
    }

    #[test]
    fn an_unused_bucket_is_a_full_one_at_any_rate_and_time() {
        for (rate, t0) in [
            (Rate::per_sec(10, 3), UnixMillis(1_000_000)),
            (Rate::per_min(6, 1), UnixMillis(1)),
            (Rate::per_min(1, 5), UnixMillis(0)),
            (Rate::per_sec(u32::MAX, u32::MAX), UnixMillis(u64::MAX)),
        ] {
            let (mut unused, mut full) = (TokenBucket::UNUSED, TokenBucket::full(rate, t0));
            for step in 0..8 {
                let now = t0.plus_ms(step * 7);
                assert_eq!(
                    unused.take(rate, now),
                    full.take(rate, now),
                    "{rate:?} step {step}"
                );
                assert_eq!(unused, full, "{rate:?} step {step}");
            }
        }
        assert!(TokenBucket::UNUSED.is_full(Rate::per_min(1, 1_000), UnixMillis(0)));
    }
}
