//! Identifier newtypes and their wire encodings: user ids (`usr…`), session ids (which carry
//! their home shard), shard ids and millisecond timestamps.
//!
//! This module is a leaf: parsing and formatting only, no protocol logic and no I/O.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Milliseconds since the Unix epoch, UTC. The protocol core receives time only as this value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// Adds a number of milliseconds, saturating.
    pub fn plus_ms(self, ms: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(ms))
    }
}

/// A user id: 64-bit number, shown as `usr` + base64url(8 bytes little-endian), 11 characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(pub u64);

impl UserId {
    /// The 11-character base64url body (without the `usr` prefix).
    pub fn encode_body(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_le_bytes())
    }

    /// Writes the 11-character base64url body into `out` (exactly 11 bytes), allocating nothing.
    pub fn encode_body_into(self, out: &mut [u8]) {
        let n = URL_SAFE_NO_PAD
            .encode_slice(self.0.to_le_bytes(), out)
            .unwrap_or(0);
        debug_assert_eq!(n, 11);
    }

    /// Parses an 11-character base64url body (without prefix). Zero is not a valid user id.
    pub fn decode_body(body: &str) -> Option<UserId> {
        if body.len() != 11 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        let arr: [u8; 8] = bytes.try_into().ok()?;
        let v = u64::from_le_bytes(arr);
        (v != 0).then_some(UserId(v))
    }

    /// Parses `usrXXXXXXXXXXX`.
    pub fn parse_usr(s: &str) -> Option<UserId> {
        s.strip_prefix("usr").and_then(UserId::decode_body)
    }

    /// The `usr…` form used on the wire. One allocation of its exact size: it names `me`
    /// topics and P2P peers several times per message.
    pub fn usr(self) -> String {
        self.prefixed("usr")
    }

    /// `prefix` followed by the 11-character body, in one allocation.
    pub fn prefixed(self, prefix: &str) -> String {
        let mut s = String::with_capacity(prefix.len() + 11);
        s.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(self.0.to_le_bytes(), &mut s);
        s
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = [0u8; 11];
        let n = URL_SAFE_NO_PAD
            .encode_slice(self.0.to_le_bytes(), &mut body)
            .map_err(|_| fmt::Error)?;
        let body = std::str::from_utf8(&body[..n]).map_err(|_| fmt::Error)?;
        write!(f, "usr{body}")
    }
}

/// Index of a shard (one pinned executor). Shards are numbered 0..n.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u16);

impl ShardId {
    /// The shard's position as a slice index.
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

/// A session id. The top 16 bits are the home shard, so any shard can tell in O(1) where a
/// session lives (long-poll requests landing on another core); the other 48 bits are random,
/// drawn by the home shard. Internal: clients hold a [`SessionHandle`], never a bare id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl SessionId {
    const SHARD_SHIFT: u32 = 48;

    /// Builds the id of a session of `shard` from 48 bits of `serial` (random in the server).
    pub fn new(shard: ShardId, serial: u64) -> SessionId {
        SessionId(
            ((shard.0 as u64) << Self::SHARD_SHIFT) | (serial & ((1 << Self::SHARD_SHIFT) - 1)),
        )
    }

    /// The shard that owns this session.
    pub fn shard(self) -> ShardId {
        ShardId((self.0 >> Self::SHARD_SHIFT) as u16)
    }

    /// The stand-in, on a topic's master, for session `origin` of the cluster node numbered
    /// `slot` (its proxied requests and what the topic sends it): the top bit set, 7 bits of
    /// node slot, 8 of the origin's shard, its 48 random bits. Its [`SessionId::shard`] is
    /// beyond every local shard, so the routing sends what is addressed to it over the node
    /// link (`shard/proxy.rs`). `None` when the slot or the origin's shard does not fit.
    pub fn remote(slot: u8, origin: SessionId) -> Option<SessionId> {
        let shard = origin.shard().0;
        (slot < 0x80 && shard < 0x100).then_some(SessionId(
            (1 << 63)
                | ((slot as u64) << 56)
                | ((shard as u64) << Self::SHARD_SHIFT)
                | (origin.0 & ((1 << Self::SHARD_SHIFT) - 1)),
        ))
    }

    /// The node slot and the origin's session id of a [`SessionId::remote`] id.
    pub fn remote_parts(self) -> Option<(u8, SessionId)> {
        (self.0 >> 63 == 1).then(|| {
            let slot = ((self.0 >> 56) & 0x7f) as u8;
            let shard = ((self.0 >> Self::SHARD_SHIFT) & 0xff) as u16;
            (slot, SessionId::new(ShardId(shard), self.0))
        })
    }

    /// The 11-character wire form (base64url of 8 bytes little-endian).
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_le_bytes())
    }

    /// Parses the wire form.
    pub fn decode(s: &str) -> Option<SessionId> {
        if s.len() != 11 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        let arr: [u8; 8] = bytes.try_into().ok()?;
        Some(SessionId(u64::from_le_bytes(arr)))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// What a client holds to find its session again (the long-poll `sid`): the session id and a
/// 64-bit random secret, 22 base64url characters. The id says which shard to ask; the secret
/// makes the handle unguessable (128 bits, 112 of them random), and is compared in constant
/// time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionHandle {
    pub sid: SessionId,
    pub secret: u64,
}

impl SessionHandle {
    /// The 22-character wire form.
    pub fn encode(self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.sid.0.to_le_bytes());
        b[8..].copy_from_slice(&self.secret.to_le_bytes());
        URL_SAFE_NO_PAD.encode(b)
    }

    /// Parses the wire form; `None` for anything else.
    pub fn decode(s: &str) -> Option<SessionHandle> {
        if s.len() != 22 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        let arr: [u8; 16] = bytes.try_into().ok()?;
        let (sid, secret) = arr.split_at(8);
        Some(SessionHandle {
            sid: SessionId(u64::from_le_bytes(sid.try_into().ok()?)),
            secret: u64::from_le_bytes(secret.try_into().ok()?),
        })
    }

    /// True when `secret` matches, compared without an early exit.
    pub fn secret_matches(self, secret: u64) -> bool {
        let diff = self.secret ^ secret;
        // Fold every bit into one without branching on the value.
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never log the secret.
        write!(f, "SessionHandle({})", self.sid)
    }
}

/// Encodes 8 random bytes as an 11-character base64url body, the shape of group names.
pub fn random_body(bytes: [u8; 8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_round_trips_through_usr_form() {
        let uid = UserId(0x0123_4567_89ab_cdef);
        let s = uid.usr();
        assert_eq!(s.len(), 14);
        assert_eq!(s, format!("usr{}", uid.encode_body()));
        assert_eq!(uid.to_string(), s);
        assert_eq!(uid.prefixed("fnd"), format!("fnd{}", uid.encode_body()));
        assert_eq!(UserId(u64::MAX).to_string(), "usr__________8");
        assert_eq!(UserId::parse_usr(&s), Some(uid));
        assert_eq!(UserId::parse_usr("usrshort"), None);
        assert_eq!(UserId::parse_usr("grpAAAAAAAAAAA"), None);
    }

    #[test]
    fn session_handles_round_trip_and_reject_other_shapes() {
        let h = SessionHandle {
            sid: SessionId::new(ShardId(5), 0xdead_beef_cafe),
            secret: 0x0123_4567_89ab_cdef,
        };
        let s = h.encode();
        assert_eq!(s.len(), 22);
        assert_eq!(SessionHandle::decode(&s), Some(h));
        assert_eq!(SessionHandle::decode(&s).unwrap().sid.shard(), ShardId(5));
        assert!(SessionHandle::decode(&s[..21]).is_none());
        assert!(SessionHandle::decode("!!!!!!!!!!!!!!!!!!!!!!").is_none());
        assert!(h.secret_matches(0x0123_4567_89ab_cdef));
        assert!(!h.secret_matches(0x0123_4567_89ab_cdee));
        let dbg = format!("{h:?}");
        assert!(!dbg.contains(&s), "debug output hides the handle: {dbg}");
        assert!(!dbg.contains(&h.secret.to_string()));
    }

    #[test]
    fn remote_session_ids_carry_node_slot_and_origin() {
        let origin = SessionId::new(ShardId(3), 0xdead_beef_cafe);
        let r = SessionId::remote(5, origin).unwrap();
        assert_eq!(r.remote_parts(), Some((5, origin)));
        assert!(r.shard().idx() >= 0x8000);
        assert_eq!(origin.remote_parts(), None);
        assert_eq!(SessionId::remote(0x80, origin), None);
    }

    #[test]
    fn session_id_carries_its_shard() {
        let sid = SessionId::new(ShardId(3), 77);
        assert_eq!(sid.shard(), ShardId(3));
        assert_eq!(SessionId::decode(&sid.encode()), Some(sid));
    }
}
