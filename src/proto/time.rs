//! RFC 3339 timestamps as the reference server writes them: UTC, millisecond precision,
//! trailing zero fraction digits trimmed (`2025-01-02T03:04:05.12Z`, `…05Z`).
//!
//! Formatting and parsing only; the clock is read elsewhere.

use crate::ids::UnixMillis;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u64;
    let m = m as u64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as u64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

/// Appends the RFC 3339 form of `t` to `out` (no allocation of its own).
pub fn write_rfc3339(t: UnixMillis, out: &mut impl std::fmt::Write) {
    let ms = t.0;
    let secs = (ms / 1000) as i64;
    let frac = (ms % 1000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    if (0..=9999).contains(&y) {
        // The common case without the formatting machinery (once per `{ctrl}` and `{data}`).
        let y = y as u32;
        let mut b = *b"0000-00-00T00:00:00";
        let digits = |b: &mut [u8], v: u32| {
            let mut v = v;
            for slot in b.iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        digits(&mut b[0..4], y);
        digits(&mut b[5..7], mo);
        digits(&mut b[8..10], d);
        digits(&mut b[11..13], h as u32);
        digits(&mut b[14..16], mi as u32);
        digits(&mut b[17..19], s as u32);
        let _ = out.write_str(std::str::from_utf8(&b).unwrap_or_default());
    } else {
        let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    }
    if frac != 0 {
        let digits = [frac / 100, frac / 10 % 10, frac % 10];
        let keep = if digits[2] != 0 {
            3
        } else if digits[1] != 0 {
            2
        } else {
            1
        };
        let _ = out.write_char('.');
        for &digit in &digits[..keep] {
            let _ = out.write_char(char::from(b'0' + digit as u8));
        }
    }
    let _ = out.write_char('Z');
}

/// A timestamp's RFC 3339 text on the stack: `Ts` serializes through it, once per `{ctrl}`
/// and `{data}`.
#[derive(Default)]
pub struct StampBuf {
    buf: [u8; 32],
    len: usize,
}

impl StampBuf {
    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only `write_str` fills the buffer, with whole `&str`s.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StampBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The RFC 3339 form of `t`.
pub fn rfc3339(t: UnixMillis) -> String {
    let mut s = String::with_capacity(24);
    write_rfc3339(t, &mut s);
    s
}

/// Parses an RFC 3339 timestamp (any offset, any fraction length) to milliseconds, UTC.
pub fn parse_rfc3339(s: &str) -> Option<UnixMillis> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let v = oh * 3600 + om * 60;
            if *sign == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    let total = secs.checked_mul(1000)?.checked_add(millis)?;
    (total >= 0).then_some(UnixMillis(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_rfc3339_nano_at_millisecond_precision() {
        assert_eq!(rfc3339(UnixMillis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UnixMillis(1_735_787_045_120)),
            "2025-01-02T03:04:05.12Z"
        );
        assert_eq!(
            rfc3339(UnixMillis(1_735_787_045_123)),
            "2025-01-02T03:04:05.123Z"
        );
        assert_eq!(
            rfc3339(UnixMillis(1_735_787_045_000)),
            "2025-01-02T03:04:05Z"
        );
        assert_eq!(rfc3339(UnixMillis(951_782_400_000)), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(UnixMillis(1_735_787_045_100)),
            "2025-01-02T03:04:05.1Z"
        );
        assert_eq!(
            rfc3339(UnixMillis(1_735_787_045_007)),
            "2025-01-02T03:04:05.007Z"
        );
        // The stack buffer holds the widest value there is, and gives the same text.
        for ms in [0, 1_735_787_045_123, 1_735_787_045_010, u64::MAX] {
            let mut buf = StampBuf::default();
            write_rfc3339(UnixMillis(ms), &mut buf);
            assert_eq!(buf.as_str(), rfc3339(UnixMillis(ms)));
            assert!(buf.as_str().ends_with('Z'));
        }
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for ms in [0u64, 1_735_787_045_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(
                parse_rfc3339(&rfc3339(UnixMillis(ms))),
                Some(UnixMillis(ms))
            );
        }
        assert_eq!(
            parse_rfc3339("2025-01-02T04:04:05.123456+01:00"),
            Some(UnixMillis(1_735_787_045_123))
        );
        assert_eq!(parse_rfc3339("2025-13-02T04:04:05Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
