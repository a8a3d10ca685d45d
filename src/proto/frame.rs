//! [`Frame`]: a server message as the core hands it to the runtime for delivery, independent
//! of any wire encoding, and shared by every recipient.
//!
//! A frame holds the codec-neutral [`ServerMsg`] and, per [`Encoding`], the bytes of that
//! encoding once some recipient needed them: each encoding is produced at most once per frame,
//! only for encodings actually used, and every recipient of that encoding gets the same
//! `Bytes` (a reference count, not a copy). Outboxes hold those bytes, never frames.
//!
//! Encoding happens on the thread that first asks for it. The runtime asks on the topic's home
//! shard, before a frame crosses to other shards ([`Frame::prepare`]), so receiving shards only
//! read what is already there and never wait for one another.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::proto::codec::encode;
use crate::proto::pb::encode_server;
use crate::proto::ServerMsg;

/// A wire encoding of server messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// JSON text (WebSocket, long polling).
    #[default]
    Json,
    /// Protobuf `pbx.ServerMsg` (gRPC).
    Protobuf,
}

impl Encoding {
    /// Every encoding, in [`EncodingSet`] bit order.
    pub const ALL: [Encoding; 2] = [Encoding::Json, Encoding::Protobuf];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A small set of encodings (the ones a group of recipients uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EncodingSet(u8);

impl EncodingSet {
    /// Adds `e`.
    pub fn insert(&mut self, e: Encoding) {
        self.0 |= e.bit();
    }

    /// True when `e` is in the set.
    pub fn contains(self, e: Encoding) -> bool {
        self.0 & e.bit() != 0
    }

    /// True when no encoding is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

#[derive(Debug)]
struct Inner {
    msg: ServerMsg,
    /// One slot per [`Encoding`], filled on first use.
    encoded: [OnceLock<Bytes>; Encoding::ALL.len()],
}

/// A shared, codec-neutral server message with its encodings cached.
#[derive(Clone, Debug)]
pub struct Frame(Arc<Inner>);

impl Frame {
    /// Wraps a message; nothing is encoded yet.
    pub fn new(msg: ServerMsg) -> Frame {
        Frame(Arc::new(Inner {
            msg,
            encoded: Default::default(),
        }))
    }

    /// A frame that crossed a node link as its JSON bytes, and its protobuf bytes when the
    /// sending node made them for protobuf sessions (`shard/proxy_wire.rs`): `stand_in` is
    /// what the runtime may inspect (a `{ctrl}`'s id and code), never encoded for a session
    /// when the bytes of its encoding came along.
    pub fn carried(json: Bytes, protobuf: Option<Bytes>, stand_in: ServerMsg) -> Frame {
        let f = Frame::new(stand_in);
        let _ = f.0.encoded[Encoding::Json as usize].set(json);
        if let Some(pb) = protobuf {
            let _ = f.0.encoded[Encoding::Protobuf as usize].set(pb);
        }
        f
    }

    /// The bytes of `enc` if they were made already (nothing is encoded).
    pub fn encoded_if_done(&self, enc: Encoding) -> Option<Bytes> {
        self.0.encoded[enc as usize].get().cloned()
    }

    /// The message.
    pub fn msg(&self) -> &ServerMsg {
        &self.0.msg
    }

    /// The bytes of `enc`, encoding them on first use. Every call for the same encoding
    /// returns the same shared bytes.
    pub fn encoded(&self, enc: Encoding) -> Bytes {
        self.0.encoded[enc as usize]
            .get_or_init(|| match enc {
                Encoding::Json => encode(&self.0.msg),
                Encoding::Protobuf => encode_server(&self.0.msg),
            })
            .clone()
    }

    /// Encodes every encoding in `set` now (before the frame is shared with other threads).
    pub fn prepare(&self, set: EncodingSet) {
        for enc in Encoding::ALL {
            if set.contains(enc) {
                self.encoded(enc);
            }
        }
    }

    /// How many encodings have been produced so far (tests: serialize-once per encoding).
    pub fn encodings_done(&self) -> usize {
        self.0.encoded.iter().filter(|c| c.get().is_some()).count()
    }

    /// The JSON text (tests and logs).
    pub fn json(&self) -> Bytes {
        self.encoded(Encoding::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UnixMillis;
    use crate::proto::Outcome;

    #[test]
    fn each_encoding_is_made_once_and_shared() {
        let f = Frame::new(Outcome::Ok.ctrl(Some("1"), None, UnixMillis(0)).msg());
        assert_eq!(f.encodings_done(), 0);
        let a = f.clone().encoded(Encoding::Json);
        let b = f.encoded(Encoding::Json);
        assert_eq!(a.as_ptr(), b.as_ptr(), "one buffer for every recipient");
        assert_eq!(f.encodings_done(), 1);
        assert!(std::str::from_utf8(&a).unwrap().contains("\"code\":200"));
        let p = f.encoded(Encoding::Protobuf);
        assert_eq!(p.as_ptr(), f.encoded(Encoding::Protobuf).as_ptr());
        assert_eq!(f.encodings_done(), 2);
        assert_ne!(&p[..], &a[..], "a different wire form");
    }

    #[test]
    fn prepare_makes_exactly_the_encodings_asked_for() {
        let f = Frame::new(Outcome::Ok.ctrl(None, None, UnixMillis(0)).msg());
        let mut set = EncodingSet::default();
        set.insert(Encoding::Protobuf);
        f.prepare(set);
        assert_eq!(f.encodings_done(), 1);
        assert!(f.0.encoded[Encoding::Json as usize].get().is_none());
    }

    #[test]
    fn frames_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Frame>();
    }
}
