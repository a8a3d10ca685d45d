//! The message payload every adapter carries: a stamp (sender, per-sender sequence number,
//! scheduled send time on the shared clock) padded to the requested size with `x`.
//!
//! Text is `T<sender>.<seq>.<sched_ns>.xxxx…`: ASCII letters, digits and dots only, so it is a
//! valid JSON string with no escapes (the Tinode adapter finds it with a substring search) and
//! a valid MQTT/NATS payload.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub sender: u32,
    pub seq: u64,
    pub sched_ns: u64,
}

/// Writes the payload for `st`, at least `size` bytes (longer only if the stamp itself is).
pub fn encode(st: Stamp, size: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(size.max(48));
    let _ = write!(s, "T{}.{}.{}.", st.sender, st.seq, st.sched_ns);
    while s.len() < size {
        s.push('x');
    }
    s
}

/// Reads the stamp at the start of a payload.
pub fn decode(b: &[u8]) -> Option<Stamp> {
    let b = b.strip_prefix(b"T")?;
    let mut it = b.split(|c| *c == b'.');
    let num = |x: Option<&[u8]>| -> Option<u64> {
        let x = x?;
        if x.is_empty() || x.len() > 20 {
            return None;
        }
        let mut v: u64 = 0;
        for c in x {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
        }
        Some(v)
    };
    let sender = num(it.next())? as u32;
    let seq = num(it.next())?;
    let sched_ns = num(it.next())?;
    Some(Stamp {
        sender,
        seq,
        sched_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let st = Stamp {
            sender: 7,
            seq: 42,
            sched_ns: 123_456_789_012,
        };
        let p = encode(st, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(decode(p.as_bytes()), Some(st));
        let short = encode(st, 0);
        assert_eq!(decode(short.as_bytes()), Some(st));
        assert_eq!(decode(b"hello"), None);
        assert_eq!(decode(b"T1.2"), None);
    }
}
