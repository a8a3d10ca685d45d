//! The node-to-node wire format: every frame is a 4-byte big-endian length followed by that
//! many bytes of JSON, one [`Frame`]: the sender's membership version and one [`NodeMsg`].
//!
//! `NodeMsg` is the closed list of what one node may say to another (the cross-node
//! counterpart of the shard `Envelope`): the link's `Hello` and pings, and proxied topic
//! traffic (forwarded client requests, events for one session, broadcasts; their payloads
//! are made and read by `shard/proxy_wire.rs`), and long-poll requests for a session of
//! another node with their answers (`shard/lp_remote.rs`). JSON,
//! not a binary format, because it needs no new dependency, reads in a packet capture, and
//! what will cross most is client JSON already; the frame function is the one place to change.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The largest frame accepted (a forwarded request is at most a client message plus a small
/// envelope; 16 MiB leaves room and still bounds what a bad peer can make us allocate).
pub const MAX_FRAME: usize = 16 << 20;

/// One frame on a node link.
#[derive(Debug, Serialize, Deserialize)]
pub struct Frame {
    /// The sender's membership (ring) version when it sent the frame. A receiver on another
    /// version knows the two may place topics differently (and will answer a forwarded request
    /// "retry"); pings only count the mismatch.
    pub version: i64,
    pub msg: NodeMsg,
}

/// What one node says to another.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeMsg {
    /// The first frame of every connection, from the dialling node.
    Hello {
        node: String,
        epoch: i64,
    },
    /// Round-trip measurement: `sent_us` is the sender's own clock, echoed back in the pong.
    Ping {
        sent_us: u64,
    },
    Pong {
        sent_us: u64,
    },
    /// A client's request for `topic`, which the receiver masters. The payloads of this and
    /// the next two are JSON the shards make and read (`shard/proxy_wire.rs`): the cluster
    /// layer routes them by the fields beside them and never looks inside.
    Forward {
        topic: String,
        req: Box<RawValue>,
    },
    /// An event for one session of the receiver (its own id there), from a topic the sender
    /// masters.
    ToSession {
        sid: u64,
        ev: Box<RawValue>,
    },
    /// One broadcast frame for sessions of the receiver (all of one shard), sent once.
    Deliver {
        sids: Vec<u64>,
        frame: Box<RawValue>,
    },
    /// Per-user notifications for the `me` topics loaded on the receiver (presence, contact
    /// events), from topics the sender masters: sent to every node, read by any one shard
    /// (`shard/proxy_me.rs`).
    ToMe {
        notes: Box<RawValue>,
    },
    /// A long-poll request for a session of the receiver, from a client whose HTTP request
    /// reached the sender: `shard` is the receiver's shard that holds the session, `reply` and
    /// `ticket` where the sender waits for the answer. The request and the answer are JSON the
    /// shards make and read (`shard/lp_remote.rs`).
    LpRequest {
        shard: u16,
        reply: u16,
        ticket: u64,
        req: Box<RawValue>,
    },
    /// The answer to an `LpRequest`, for the sender's shard `reply` and its `ticket`.
    LpAnswer {
        reply: u16,
        ticket: u64,
        answer: Box<RawValue>,
    },
    /// The client of an `LpRequest` still waiting went away: stop holding its poll.
    LpCancel {
        shard: u16,
        reply: u16,
        ticket: u64,
    },
}

/// Writes one frame (not flushed: the caller writes a whole batch, then flushes).
pub fn write_frame(w: &mut impl Write, f: &Frame) -> io::Result<()> {
    let body = serde_json::to_vec(f).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("node frame of {} bytes is over {MAX_FRAME}", body.len()),
        ));
    }
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(&body)
}

/// Reads one frame; `UnexpectedEof` when the peer closed between frames.
pub fn read_frame(r: &mut impl Read) -> io::Result<Frame> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("node frame of {len} bytes is over {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_back_to_back_and_oversized_ones_are_refused() {
        let frames = [
            Frame {
                version: 7,
                msg: NodeMsg::Hello {
                    node: "n1".into(),
                    epoch: 3,
                },
            },
            Frame {
                version: 8,
                msg: NodeMsg::Ping { sent_us: 42 },
            },
            Frame {
                version: 8,
                msg: NodeMsg::Deliver {
                    sids: vec![1, 2],
                    frame: RawValue::from_string(r#"{"json":{"data":{}}}"#.into()).unwrap(),
                },
            },
        ];
        let mut buf = Vec::new();
        for f in &frames {
            write_frame(&mut buf, f).unwrap();
        }
        let mut r = &buf[..];
        for f in &frames {
            assert_eq!(
                format!("{:?}", read_frame(&mut r).unwrap()),
                format!("{f:?}")
            );
        }
        assert_eq!(
            read_frame(&mut r).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let err = read_frame(&mut &huge[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let garbage = [0, 0, 0, 2, b'{', b'}'];
        assert!(read_frame(&mut &garbage[..]).is_err());
    }
}
