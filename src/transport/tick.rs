//! One coarse timer per shard for every WebSocket connection's ping and pong deadlines.
//!
//! A connection with its own reactor timer re-arms it on every wake-up and wakes the shard once
//! per ping: ~200 separate wake-ups a second at 10,000 idle sessions. Here a connection files
//! its task's waker under the tick (a whole number of `resolution`s) its next deadline falls
//! in, once per deadline; one driver task per shard sleeps until the earliest filed tick and
//! wakes every connection filed up to it in one pass, so their pings leave in one reactor
//! round. Deadlines fire late by less than one resolution, never early. An idle shard with no
//! filed deadline is never woken by it.
//!
//! A connection whose deadline moved later (a pong arrived) keeps its earlier filing: it is
//! woken then, finds nothing due, and files its new deadline. A connection files through its
//! [`Filing`], a small cell the wheel shares: when the connection ends, dropping it lets go of
//! the task's waker at once, so a closed connection's task (and its memory) is not held until
//! its tick; only the empty cell waits there.

use std::cell::{Cell as Flag, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// The shard's deadlines, by tick.
pub struct Wheel {
    origin: Instant,
    resolution: Duration,
    /// Every tick at or before this one has fired.
    fired: Flag<u64>,
    filed: RefCell<BTreeMap<u64, Vec<Cell>>>,
    /// The driver's waker while it waits, to wake when an earlier tick is filed.
    driver: RefCell<Option<Waker>>,
    /// The tick the driver sleeps until (`u64::MAX`: none filed).
    sleeping_until: Flag<u64>,
    /// Emptied vectors kept for the next filings (a tick's list is reused, not reallocated).
    spare: RefCell<Vec<Vec<Cell>>>,
}

/// Where a connection's waker waits for its tick (shared with the wheel). A `Cell`, not a
/// `RefCell`: 32 bytes with the `Rc` where a `RefCell` makes 40, one per connection (W1).
type Cell = Rc<std::cell::Cell<Option<Waker>>>;

/// A connection's place on the wheel: holds its task's waker while filed; dropping it (the
/// connection ended) releases the waker, and with it the task, before the tick comes.
#[derive(Default)]
pub struct Filing {
    waker: Cell,
    /// The tick of its last filing (waiting until that tick fires).
    /// 0 before the first: tick 0 is due from the wheel's start, so it is never filed. (A
    /// plain `u64`, not an `Option`: every connection holds its filing for its life, W1.)
    tick: Flag<u64>,
}

impl Drop for Filing {
    fn drop(&mut self) {
        self.waker.take();
    }
}

impl Wheel {
    /// A wheel whose ticks are `resolution` long (at least 1 ms).
    pub fn new(resolution: Duration) -> Wheel {
        Wheel {
            origin: Instant::now(),
            resolution: resolution.max(Duration::from_millis(1)),
            fired: Flag::new(0),
            filed: RefCell::new(BTreeMap::new()),
            driver: RefCell::new(None),
            sleeping_until: Flag::new(u64::MAX),
            spare: RefCell::new(Vec::new()),
        }
    }

    /// The resolution for connections pinging every `ping_every` and dropped `pong_timeout`
    /// after their last pong: a sixteenth of the shorter, between 10 ms and 1 s.
    pub fn resolution_for(ping_every: Duration, pong_timeout: Duration) -> Duration {
        (ping_every.min(pong_timeout) / 16).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// The tick `at` falls in, rounded up (a deadline is never reported due early).
    pub fn tick_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let res = self.resolution.as_nanos();
        u64::try_from(since.div_ceil(res)).unwrap_or(u64::MAX)
    }

    /// Whole seconds from the wheel's start to `at` (a connection's compact clock for counting
    /// per second: W1).
    pub fn second_of(&self, at: Instant) -> u32 {
        let secs = at.saturating_duration_since(self.origin).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// Whether `tick` has fired.
    pub fn is_due(&self, tick: u64) -> bool {
        tick <= self.fired.get()
    }

    /// Wakes `waker` once `tick` fires (at once if it has), unless `filing` is dropped first.
    /// A filing still waiting for this tick or an earlier one is kept, not repeated: it wakes
    /// `waker` then, and the caller, finding nothing due yet, files again. So a task may call
    /// this on every poll that leaves it waiting.
    pub fn file(&self, tick: u64, filing: &Filing, waker: &Waker) {
        if self.is_due(tick) {
            waker.wake_by_ref();
            return;
        }
        {
            let held = filing.waker.take();
            match held {
                Some(w) if w.will_wake(waker) => filing.waker.set(Some(w)),
                _ => filing.waker.set(Some(waker.clone())),
            }
        }
        let f = filing.tick.get();
        if f <= tick && !self.is_due(f) {
            return;
        }
        filing.tick.set(tick);
        let mut filed = self.filed.borrow_mut();
        filed
            .entry(tick)
            .or_insert_with(|| self.spare.borrow_mut().pop().unwrap_or_default())
            .push(filing.waker.clone());
        if tick < self.sleeping_until.get() {
            if let Some(d) = self.driver.borrow_mut().take() {
                d.wake();
            }
        }
    }

    /// Number of filings waiting (stale ones and those of ended connections included).
    pub fn filed(&self) -> usize {
        self.filed.borrow().values().map(Vec::len).sum()
    }

    /// Fires every tick up to `now`'s: wakes what was filed there (by connections still open).
    /// Returns how many woke.
    pub fn fire(&self, now: Instant) -> usize {
        let now_tick = {
            let since = now.saturating_duration_since(self.origin).as_nanos();
            u64::try_from(since / self.resolution.as_nanos()).unwrap_or(u64::MAX)
        };
        if now_tick > self.fired.get() {
            self.fired.set(now_tick);
        }
        let mut woke = 0;
        loop {
            let due = {
                let mut filed = self.filed.borrow_mut();
                match filed.first_key_value() {
                    Some((&t, _)) if t <= now_tick => filed.pop_first().map(|(_, v)| v),
                    _ => None,
                }
            };
            let Some(mut cells) = due else {
                return woke;
            };
            for cell in cells.drain(..) {
                let waker = cell.take();
                if let Some(w) = waker {
                    w.wake();
                    woke += 1;
                }
            }
            let mut spare = self.spare.borrow_mut();
            if spare.len() < 64 {
                spare.push(cells);
            }
        }
    }

    /// When the earliest filed tick fires, if any is filed.
    fn next_deadline(&self) -> Option<(u64, Instant)> {
        let tick = *self.filed.borrow().keys().next()?;
        let nanos = u128::from(tick) * self.resolution.as_nanos();
        let since = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // Past `Instant`'s range (centuries): fire at once rather than never.
        let at = self.origin.checked_add(since).unwrap_or_else(Instant::now);
        Some((tick, at))
    }

    /// The driver: sleeps until the earliest filed tick (or until an earlier one is filed),
    /// fires, and again. Never wakes while nothing is filed. Runs for the shard's life.
    pub async fn drive(self: Rc<Self>) {
        loop {
            match self.next_deadline() {
                None => {
                    self.sleeping_until.set(u64::MAX);
                    self.wait_for_filing().await;
                }
                Some((tick, at)) => {
                    self.sleeping_until.set(tick);
                    let left = at.saturating_duration_since(Instant::now());
                    if !left.is_zero() {
                        futures_lite::future::or(
                            glommio::timer::sleep(left),
                            self.wait_for_filing(),
                        )
                        .await;
                    }
                }
            }
            self.fire(Instant::now());
        }
    }

    /// Pending until `file` wakes the driver (an earlier tick than the one slept for).
    async fn wait_for_filing(&self) {
        let mut registered = false;
        poll_fn(|cx| {
            if registered && self.driver.borrow().is_none() {
                return Poll::Ready(());
            }
            registered = true;
            *self.driver.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_deadline_fires_in_its_tick_never_before() {
        let w = Wheel::new(Duration::from_millis(100));
        let (c, waker) = counter();
        let filing = Filing::default();
        let at = w.origin + Duration::from_millis(250);
        let tick = w.tick_of(at);
        assert_eq!(tick, 3, "rounded up");
        w.file(tick, &filing, &waker);
        w.file(tick, &filing, &waker);
        w.file(tick + 2, &filing, &waker);
        assert_eq!(w.filed(), 1, "a waiting filing is not repeated");
        assert_eq!(w.fire(w.origin + Duration::from_millis(299)), 0);
        assert!(!w.is_due(tick));
        assert_eq!(c.0.load(Ordering::SeqCst), 0);
        assert_eq!(w.fire(w.origin + Duration::from_millis(300)), 1);
        assert!(w.is_due(tick));
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert_eq!(w.filed(), 0);
    }

    #[test]
    fn one_pass_wakes_every_tick_passed_and_filing_a_passed_tick_wakes_at_once() {
        let w = Wheel::new(Duration::from_millis(10));
        let (c, waker) = counter();
        let filings: Vec<Filing> = (0..5).map(|_| Filing::default()).collect();
        for (t, f) in [1, 2, 2, 5, 9].into_iter().zip(&filings) {
            w.file(t, f, &waker);
        }
        assert_eq!(w.fire(w.origin + Duration::from_millis(55)), 4);
        assert_eq!(w.filed(), 1);
        w.file(3, &filings[0], &waker);
        assert_eq!(c.0.load(Ordering::SeqCst), 5, "tick 3 already fired");
        assert_eq!(w.filed(), 1);
    }

    #[test]
    fn an_ended_connection_lets_go_of_its_waker_before_its_tick() {
        let w = Wheel::new(Duration::from_millis(10));
        let (c, waker) = counter();
        let filing = Filing::default();
        w.file(7, &filing, &waker);
        assert_eq!(Arc::strong_count(&c), 3, "the test, its waker, the filing");
        drop(filing);
        assert_eq!(Arc::strong_count(&c), 2, "released at once");
        assert_eq!(w.fire(w.origin + Duration::from_millis(100)), 0);
        assert_eq!(w.filed(), 0);
        assert_eq!(c.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn resolution_follows_the_ping_interval() {
        let r = Wheel::resolution_for(Duration::from_millis(49_500), Duration::from_secs(55));
        assert_eq!(r, Duration::from_secs(1));
        let r = Wheel::resolution_for(Duration::from_millis(320), Duration::from_millis(640));
        assert_eq!(r, Duration::from_millis(20));
        let r = Wheel::resolution_for(Duration::from_millis(50), Duration::from_millis(100));
        assert_eq!(r, Duration::from_millis(10));
    }

    #[test]
    fn the_driver_wakes_a_filed_task_on_time() {
        let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
        ex.run(async {
            let w = Rc::new(Wheel::new(Duration::from_millis(10)));
            glommio::spawn_local(w.clone().drive()).detach();
            glommio::timer::sleep(Duration::from_millis(5)).await;
            let start = Instant::now();
            let deadline = start + Duration::from_millis(40);
            let tick = w.tick_of(deadline);
            let filing = Filing::default();
            poll_fn(|cx| {
                if w.is_due(tick) {
                    return Poll::Ready(());
                }
                w.file(tick, &filing, cx.waker());
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            assert!(now >= deadline, "never early");
            assert!(now < deadline + Duration::from_secs(1), "{:?}", now - start);
        });
    }
}
