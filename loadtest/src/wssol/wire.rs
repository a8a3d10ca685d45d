//! The bytes of `ws-sol` (`wssol.rs`): WebSocket frame headers (parse a masked client frame's,
//! unmask in place, write an unmasked server text frame from slices), and the substring-level
//! readers and writers of the harness's Tinode frames (a string field, a request header,
//! decimal numbers, the 14-byte `usr`/`grp` names). Nothing here allocates.

use super::{Name, NAME};

/// The slices of one outgoing frame (no allocation).
#[derive(Default)]
pub struct Parts<'a> {
    p: [&'a [u8]; 20],
    n: usize,
}

impl<'a> Parts<'a> {
    pub fn push(&mut self, s: &'a [u8]) {
        self.p[self.n] = s;
        self.n += 1;
    }
    pub fn as_slice(&self) -> &[&'a [u8]] {
        &self.p[..self.n]
    }
}

/// Appends one unmasked FIN text frame made of `parts`.
pub fn push_frame(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(0x81);
    if len < 126 {
        out.push(len as u8);
    } else if len < 65_536 {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
}

pub struct Head {
    pub fin: bool,
    pub op: u8,
    pub masked: bool,
    /// Header bytes, the mask key included.
    pub hdr: usize,
    pub len: usize,
}

/// A frame's header, or `None` while incomplete.
pub fn frame_head(b: &[u8]) -> Option<Head> {
    if b.len() < 2 {
        return None;
    }
    let masked = b[1] & 0x80 != 0;
    let (len, mut hdr) = match b[1] & 0x7f {
        126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
        127 => {
            let x: [u8; 8] = b.get(2..10)?.try_into().ok()?;
            (
                usize::try_from(u64::from_be_bytes(x)).unwrap_or(usize::MAX),
                10,
            )
        }
        n => (n as usize, 2),
    };
    if masked {
        hdr += 4;
    }
    if b.len() < hdr {
        return None;
    }
    Some(Head {
        fin: b[0] & 0x80 != 0,
        op: b[0] & 0x0f,
        masked,
        hdr,
        len,
    })
}

pub fn unmask(p: &mut [u8], mask: [u8; 4]) {
    let m = u32::from_ne_bytes(mask);
    let mut chunks = p.chunks_exact_mut(4);
    for ch in &mut chunks {
        let v = u32::from_ne_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ m;
        ch.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

pub fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// The JSON string value after `key` (which ends with the opening quote), escapes kept.
pub fn string_at<'a>(m: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let rest = &m[find(m, key)? + key.len()..];
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 2,
            b'"' => return Some(&rest[..i]),
            _ => i += 1,
        }
    }
    None
}

/// A header's value in a request head (name matched without case).
pub fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name)
            .then(|| line[colon + 1..].trim_ascii())
    })
}

/// `n` in decimal, in `buf`.
pub fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// `prefix` + `n` in 11 zero-padded digits.
pub fn named(prefix: &[u8; 3], mut n: u32) -> Name {
    let mut out = [b'0'; NAME];
    out[..3].copy_from_slice(prefix);
    for i in (3..NAME).rev() {
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out
}

pub fn usr(n: u32) -> Name {
    named(b"usr", n)
}

/// The number in a 14-byte name with this prefix.
pub fn parse_name(s: &[u8], prefix: &[u8; 3]) -> Option<u32> {
    if s.len() != NAME || !s.starts_with(prefix) {
        return None;
    }
    std::str::from_utf8(&s[3..]).ok()?.parse().ok()
}
