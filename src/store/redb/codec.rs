//! The versioned binary record codec of [`RedbStore`](super::RedbStore): how every record is
//! turned into the value bytes of its table row and back.
//!
//! It owns the value layouts and their versions, and decodes any byte string to a record or a
//! [`StoreError::Backend`], never a panic. It does not own the keys (the table definitions in
//! [`tables`](super::tables) do, and keys are not repeated in values) and never parses the JSON
//! text it stores.
//!
//! The value encoding of every record: a format version byte, then the fields that the key does
//! not already hold, as LEB128 varints, length-prefixed byte strings and one-byte tags. JSON
//! text fields are stored as plain UTF-8 strings, byte for byte.
//!
//! Version 2 appended fields to version 1 layouts (user `creds`, topic `aux`, message
//! `deleted`) and added the delete record; version 1 records still decode, the missing fields
//! taking their defaults. Records are always written in the current version.

use crate::access::{AccessMode, AuthLevel, DefaultAccess};
use crate::ids::{UnixMillis, UserId};
use crate::store::{
    AuthRecord, CredRecord, DelRecord, JsonText, MessageRecord, StoreError, SubRecord, TopicRecord,
    UserRecord, UserState,
};

/// Bumped whenever a layout below changes; decoding rejects unknown versions.
const VERSION: u8 = 2;
/// The oldest version still decoded.
const MIN_VERSION: u8 = 1;

#[cfg(test)]
pub(super) fn version() -> u8 {
    VERSION
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt stored record: {what}"))
}

struct Enc(Vec<u8>);

impl Enc {
    fn new() -> Enc {
        let mut v = Vec::with_capacity(64);
        v.push(VERSION);
        Enc(v)
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: &Option<String>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
    fn strs(&mut self, v: &[String]) {
        self.u64(v.len() as u64);
        for s in v {
            self.str(s);
        }
    }
    fn access(&mut self, a: &DefaultAccess) {
        self.u8(a.auth.0);
        self.u8(a.anon.0);
    }
    fn bool(&mut self, b: bool) {
        self.u8(b as u8);
    }
    fn ranges(&mut self, v: &[(u64, u64)]) {
        self.u64(v.len() as u64);
        for &(low, hi) in v {
            self.u64(low);
            self.u64(hi);
        }
    }
    fn creds(&mut self, v: &[CredRecord]) {
        self.u64(v.len() as u64);
        for c in v {
            self.str(&c.method);
            self.str(&c.value);
            self.bool(c.done);
        }
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    /// The format version of the record being decoded.
    version: u8,
}

impl<'a> Dec<'a> {
    fn new(buf: &'a [u8]) -> Result<Dec<'a>, StoreError> {
        let mut d = Dec { buf, version: 0 };
        match d.u8()? {
            v @ MIN_VERSION..=VERSION => {
                d.version = v;
                Ok(d)
            }
            v => Err(corrupt(&format!("unknown format version {v}"))),
        }
    }
    /// Whether the record carries the fields added in format version `v`.
    fn has(&self, v: u8) -> bool {
        self.version >= v
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        let (&b, rest) = self.buf.split_first().ok_or_else(|| corrupt("truncated"))?;
        self.buf = rest;
        Ok(b)
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(corrupt("varint overflow"));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }
    fn len(&mut self) -> Result<usize, StoreError> {
        let n = self.u64()?;
        // Every counted item takes at least one byte: a larger count is corrupt, and this
        // bound keeps a bad count from driving a huge allocation.
        if n > self.buf.len() as u64 {
            return Err(corrupt("length past end"));
        }
        Ok(n as usize)
    }
    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.len()?;
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn str(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| corrupt("invalid UTF-8"))
    }
    fn tag(&mut self) -> Result<bool, StoreError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("bad option tag")),
        }
    }
    fn opt_str(&mut self) -> Result<Option<JsonText>, StoreError> {
        if self.tag()? {
            self.str().map(Some)
        } else {
            Ok(None)
        }
    }
    fn opt_u64(&mut self) -> Result<Option<u64>, StoreError> {
        if self.tag()? {
            self.u64().map(Some)
        } else {
            Ok(None)
        }
    }
    fn strs(&mut self) -> Result<Vec<String>, StoreError> {
        let n = self.len()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.str()?);
        }
        Ok(v)
    }
    fn access(&mut self) -> Result<DefaultAccess, StoreError> {
        Ok(DefaultAccess {
            auth: AccessMode(self.u8()?),
            anon: AccessMode(self.u8()?),
        })
    }
    fn millis(&mut self) -> Result<UnixMillis, StoreError> {
        self.u64().map(UnixMillis)
    }
    fn ranges(&mut self) -> Result<Vec<(u64, u64)>, StoreError> {
        let n = self.len()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push((self.u64()?, self.u64()?));
        }
        Ok(v)
    }
    fn creds(&mut self) -> Result<Vec<CredRecord>, StoreError> {
        let n = self.len()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(CredRecord {
                method: self.str()?,
                value: self.str()?,
                done: self.tag()?,
            });
        }
        Ok(v)
    }
    fn finish<T>(self, value: T) -> Result<T, StoreError> {
        if self.buf.is_empty() {
            Ok(value)
        } else {
            Err(corrupt("trailing bytes"))
        }
    }
}

fn state_to_u8(s: UserState) -> u8 {
    match s {
        UserState::Ok => 0,
        UserState::Suspended => 1,
        UserState::Deleted => 2,
    }
}

fn state_from_u8(v: u8) -> Result<UserState, StoreError> {
    match v {
        0 => Ok(UserState::Ok),
        1 => Ok(UserState::Suspended),
        2 => Ok(UserState::Deleted),
        _ => Err(corrupt("bad user state")),
    }
}

fn level_to_u8(l: AuthLevel) -> u8 {
    match l {
        AuthLevel::None => 0,
        AuthLevel::Anon => 1,
        AuthLevel::Auth => 2,
        AuthLevel::Root => 3,
    }
}

fn level_from_u8(v: u8) -> Result<AuthLevel, StoreError> {
    match v {
        0 => Ok(AuthLevel::None),
        1 => Ok(AuthLevel::Anon),
        2 => Ok(AuthLevel::Auth),
        3 => Ok(AuthLevel::Root),
        _ => Err(corrupt("bad auth level")),
    }
}

/// Key: the user id.
pub(super) fn encode_user(u: &UserRecord) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(u.created.0);
    e.u64(u.updated.0);
    e.u8(state_to_u8(u.state));
    e.access(&u.access);
    e.opt_str(&u.public);
    e.opt_str(&u.trusted);
    e.strs(&u.tags);
    match &u.last_seen {
        Some((ts, ua)) => {
            e.u8(1);
            e.u64(ts.0);
            e.str(ua);
        }
        None => e.u8(0),
    }
    e.creds(&u.creds);
    e.0
}

pub(super) fn decode_user(id: UserId, b: &[u8]) -> Result<UserRecord, StoreError> {
    let mut d = Dec::new(b)?;
    let rec = UserRecord {
        id,
        created: d.millis()?,
        updated: d.millis()?,
        state: state_from_u8(d.u8()?)?,
        access: d.access()?,
        public: d.opt_str()?,
        trusted: d.opt_str()?,
        tags: d.strs()?,
        last_seen: if d.tag()? {
            Some((d.millis()?, d.str()?))
        } else {
            None
        },
        creds: if d.has(2) { d.creds()? } else { Vec::new() },
    };
    d.finish(rec)
}

/// Key: the unique login.
pub(super) fn encode_auth(a: &AuthRecord) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(a.user.0);
    e.str(&a.scheme);
    e.u8(level_to_u8(a.level));
    e.bytes(&a.secret);
    e.opt_u64(a.expires.map(|t| t.0));
    e.0
}

pub(super) fn decode_auth(unique: &str, b: &[u8]) -> Result<AuthRecord, StoreError> {
    let mut d = Dec::new(b)?;
    let rec = AuthRecord {
        unique: unique.to_owned(),
        user: UserId(d.u64()?),
        scheme: d.str()?,
        level: level_from_u8(d.u8()?)?,
        secret: d.bytes()?.to_vec(),
        expires: d.opt_u64()?.map(UnixMillis),
    };
    d.finish(rec)
}

/// Key: the topic name.
pub(super) fn encode_topic(t: &TopicRecord) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(t.created.0);
    e.u64(t.updated.0);
    e.opt_u64(t.owner.map(|o| o.0));
    e.access(&t.access);
    e.opt_str(&t.public);
    e.opt_str(&t.trusted);
    e.strs(&t.tags);
    e.bool(t.is_chan);
    e.u64(t.del_id);
    e.opt_str(&t.aux);
    e.0
}

pub(super) fn decode_topic(name: &str, b: &[u8]) -> Result<TopicRecord, StoreError> {
    let mut d = Dec::new(b)?;
    let rec = TopicRecord {
        name: name.to_owned(),
        created: d.millis()?,
        updated: d.millis()?,
        owner: d.opt_u64()?.map(UserId),
        access: d.access()?,
        public: d.opt_str()?,
        trusted: d.opt_str()?,
        tags: d.strs()?,
        is_chan: d.tag()?,
        del_id: d.u64()?,
        aux: if d.has(2) { d.opt_str()? } else { None },
    };
    d.finish(rec)
}

/// Key: (topic, user id).
pub(super) fn encode_sub(s: &SubRecord) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(s.created.0);
    e.u64(s.updated.0);
    e.opt_u64(s.deleted.map(|t| t.0));
    e.u8(s.want.0);
    e.u8(s.given.0);
    e.u64(s.read);
    e.u64(s.recv);
    e.u64(s.del_id);
    e.opt_str(&s.private);
    e.0
}

pub(super) fn decode_sub(topic: &str, user: UserId, b: &[u8]) -> Result<SubRecord, StoreError> {
    let mut d = Dec::new(b)?;
    let rec = SubRecord {
        topic: topic.to_owned(),
        user,
        created: d.millis()?,
        updated: d.millis()?,
        deleted: d.opt_u64()?.map(UnixMillis),
        want: AccessMode(d.u8()?),
        given: AccessMode(d.u8()?),
        read: d.u64()?,
        recv: d.u64()?,
        del_id: d.u64()?,
        private: d.opt_str()?,
    };
    d.finish(rec)
}

/// Key: (topic, seq).
pub(super) fn encode_message(m: &MessageRecord) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(m.ts.0);
    e.u64(m.from.0);
    e.opt_str(&m.head);
    e.str(&m.content);
    e.bool(m.deleted);
    e.0
}

pub(super) fn decode_message(topic: &str, seq: u64, b: &[u8]) -> Result<MessageRecord, StoreError> {
    let mut d = Dec::new(b)?;
    let rec = MessageRecord {
        topic: topic.to_owned(),
        seq,
        ts: d.millis()?,
        from: UserId(d.u64()?),
        head: d.opt_str()?,
        content: d.str()?,
        deleted: d.has(2) && d.tag()?,
    };
    d.finish(rec)
}

/// Key: (topic, delete id). New in version 2.
pub(super) fn encode_del(r: &DelRecord) -> Vec<u8> {
    let mut e = Enc::new();
    e.opt_u64(r.user.map(|u| u.0));
    e.u64(r.ts.0);
    e.ranges(&r.ranges);
    e.0
}

pub(super) fn decode_del(topic: &str, del_id: u64, b: &[u8]) -> Result<DelRecord, StoreError> {
    let mut d = Dec::new(b)?;
    if !d.has(2) {
        return Err(corrupt("delete record older than its format"));
    }
    let rec = DelRecord {
        topic: topic.to_owned(),
        del_id,
        user: d.opt_u64()?.map(UserId),
        ts: d.millis()?,
        ranges: d.ranges()?,
    };
    d.finish(rec)
}

#[doc(hidden)]
pub(crate) mod fuzz;

#[cfg(test)]
mod tests;
