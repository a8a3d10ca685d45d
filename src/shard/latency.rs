//! Request latency as the reference measures it: from a request's receipt on the session's
//! shard to the `{ctrl}` reply that carries its id, recorded into the shard's
//! `request_latency` histogram (`monitor.histograms`).
//!
//! Each session remembers the receipt time of its last few requests with an id, by a hash of
//! the id, in a box that exists only while some are unanswered (an idle session pays one
//! pointer). A request answered without a `{ctrl}` (a `{get}` answered by `{meta}`) is
//! forgotten when newer ones push it out.

use std::time::Instant;

/// How many unanswered requests a session remembers.
const SLOTS: usize = 8;

/// The unanswered requests of one session.
#[derive(Debug)]
pub(super) struct Inflight {
    ids: [u64; SLOTS],
    at: [Instant; SLOTS],
    len: usize,
}

/// FNV-1a of a request id: equal ids hash equal, and a collision only mis-times one sample.
pub(super) fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Notes that request `id` was received `at`.
pub(super) fn start(slot: &mut Option<Box<Inflight>>, id: u64, at: Instant) {
    let f = slot.get_or_insert_with(|| {
        Box::new(Inflight {
            ids: [0; SLOTS],
            at: [at; SLOTS],
            len: 0,
        })
    });
    if f.len < SLOTS {
        f.ids[f.len] = id;
        f.at[f.len] = at;
        f.len += 1;
        return;
    }
    // Full: the oldest gives way.
    let oldest = (0..SLOTS).min_by_key(|&i| f.at[i]).unwrap_or(0);
    f.ids[oldest] = id;
    f.at[oldest] = at;
}

/// The receipt time of request `id`, forgotten now that it is answered.
pub(super) fn finish(slot: &mut Option<Box<Inflight>>, id: u64) -> Option<Instant> {
    let f = slot.as_mut()?;
    let i = f.ids[..f.len].iter().position(|&x| x == id)?;
    let at = f.at[i];
    f.len -= 1;
    f.ids[i] = f.ids[f.len];
    f.at[i] = f.at[f.len];
    if f.len == 0 {
        *slot = None;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answered_requests_are_timed_once_and_the_box_goes_when_empty() {
        let t0 = Instant::now();
        let mut s = None;
        start(&mut s, id_hash("1"), t0);
        start(&mut s, id_hash("2"), t0 + Duration::from_millis(1));
        assert_eq!(finish(&mut s, id_hash("1")), Some(t0));
        assert_eq!(finish(&mut s, id_hash("1")), None, "only once");
        assert!(s.is_some());
        assert!(finish(&mut s, id_hash("2")).is_some());
        assert!(s.is_none(), "freed when nothing is unanswered");
        assert_eq!(finish(&mut s, id_hash("3")), None);
    }

    #[test]
    fn the_oldest_gives_way_when_full() {
        let t0 = Instant::now();
        let mut s = None;
        for i in 0..SLOTS as u64 + 1 {
            start(&mut s, i, t0 + Duration::from_millis(i));
        }
        assert_eq!(finish(&mut s, 0), None, "pushed out");
        assert_eq!(
            finish(&mut s, SLOTS as u64),
            Some(t0 + Duration::from_millis(SLOTS as u64))
        );
    }
}
