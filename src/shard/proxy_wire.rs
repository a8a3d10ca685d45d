//! Proxied topic requests between cluster nodes, in the forms that cross a node link: a
//! client's request for a topic mastered elsewhere ([`Forwarded`], with the requester's
//! snapshot), and what the master's topic sends back — events for one session ([`Event`]) and
//! broadcasts ([`Carried`] frames, once per origin node and shard).
//!
//! Pure conversions between these and the shard's `TopicRequest`/`SessionEvent`, and to and
//! from the opaque JSON payloads of `cluster::wire::NodeMsg` (the cluster layer never names
//! protocol types); `proxy.rs` decides when to forward and where answers go. Frames cross as
//! their JSON bytes, verbatim, plus the request id and code a `{ctrl}`/`{meta}` answers with (so the
//! origin can match answers to the requests it waits for); protobuf sessions are not proxied.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::access::AuthLevel;
use crate::ids::{SessionId, UserId};
use crate::proto::client::{GetQuery, SetQuery};
use crate::proto::server::{Ctrl, Info, Ts};
use crate::proto::{Encoding, Frame, ServerMsg};
use crate::routing::{CreateSpec, ReqHead, Requester, SessionEvent, TopicRequest};

/// The opaque payload of a node message.
pub fn to_raw<T: Serialize>(v: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(v)
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is valid JSON"))
}

/// A node message's payload read back; `None` (logged by the caller) when it is not one.
pub fn from_raw<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Option<T> {
    serde_json::from_str(raw.get()).ok()
}

/// A client's request forwarded to the topic's master, with the requester's snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forwarded {
    /// The routing name of the topic.
    pub topic: String,
    /// The requesting session's id on its own (origin) node.
    pub sid: u64,
    pub uid: u64,
    /// The session's auth level (`AuthLevel::as_str`).
    pub level: String,
    /// The request id to echo, and the topic's name as the client wrote it.
    pub id: Option<String>,
    pub as_seen: String,
    pub req: FwdReq,
}

/// What is asked, the forwarded subset of `TopicRequest`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FwdReq {
    Join {
        create: Option<(String, bool)>,
        set: Option<Box<SetQuery>>,
        get: Option<Box<GetQuery>>,
        ua: String,
        bkg: bool,
    },
    Leave {
        unsub: bool,
    },
    Publish {
        noecho: bool,
        head: Option<serde_json::Map<String, serde_json::Value>>,
        content: Box<RawValue>,
    },
    Get {
        query: Box<GetQuery>,
    },
    Note {
        what: String,
        seq: u64,
        event: Option<String>,
        payload: Option<Box<RawValue>>,
    },
    /// The session ended (or was told it is not attached): detach it silently.
    Detach,
    Foreground {
        ua: String,
    },
}

impl FwdReq {
    /// Whether the origin waits for an answer (a `{ctrl}` or `{meta}` with the request id).
    pub fn answered(&self) -> bool {
        matches!(
            self,
            FwdReq::Join { .. }
                | FwdReq::Leave { .. }
                | FwdReq::Publish { .. }
                | FwdReq::Get { .. }
        )
    }
}

/// The forwarded form of `req` for `topic`; the request itself back when it is not forwarded
/// (`{set}`, `{del}`, the runtime's own requests but detach and foreground, a protobuf
/// session's requests).
// The request goes back whole (boxing it would cost an allocation on every forward).
#[allow(clippy::result_large_err)]
pub fn forward(topic: &str, req: TopicRequest) -> Result<Forwarded, TopicRequest> {
    if req.requester().is_some_and(|r| r.enc != Encoding::Json) {
        return Err(req);
    }
    let plain = |sid: SessionId, req| Forwarded {
        topic: topic.to_owned(),
        sid: sid.0,
        uid: 0,
        level: String::new(),
        id: None,
        as_seen: topic.to_owned(),
        req,
    };
    let with = |hdr: ReqHead, req| Forwarded {
        topic: topic.to_owned(),
        sid: hdr.req.sid.0,
        uid: hdr.req.uid.0,
        level: hdr.req.level.as_str().to_owned(),
        id: hdr.id,
        as_seen: hdr.as_seen,
        req,
    };
    Ok(match req {
        TopicRequest::Join {
            hdr,
            create,
            set,
            get,
            ua,
            bkg,
        } => {
            let create = create.map(|c| (c.tmpname, c.is_chan));
            with(
                hdr,
                FwdReq::Join {
                    create,
                    set,
                    get,
                    ua,
                    bkg,
                },
            )
        }
        TopicRequest::Leave { hdr, unsub } => with(hdr, FwdReq::Leave { unsub }),
        TopicRequest::Publish {
            hdr,
            noecho,
            head,
            content,
        } => with(
            hdr,
            FwdReq::Publish {
                noecho,
                head,
                content,
            },
        ),
        TopicRequest::Get { hdr, query } => with(hdr, FwdReq::Get { query }),
        TopicRequest::Note {
            hdr,
            what,
            seq,
            event,
            payload,
        } => with(
            hdr,
            FwdReq::Note {
                what,
                seq,
                event,
                payload,
            },
        ),
        TopicRequest::Detach { sid } => plain(sid, FwdReq::Detach),
        TopicRequest::Foreground { sid, ua } => plain(sid, FwdReq::Foreground { ua }),
        other => return Err(other),
    })
}

impl Forwarded {
    /// The request as the master's topic takes it, from `sid` (the origin session's
    /// stand-in, [`SessionId::remote`]); the routing name of the topic with it.
    pub fn into_request(self, sid: SessionId) -> (String, TopicRequest) {
        let hdr = ReqHead {
            req: Requester {
                sid,
                uid: UserId(self.uid),
                level: AuthLevel::parse(&self.level).unwrap_or_default(),
                enc: Encoding::Json,
            },
            id: self.id,
            as_seen: self.as_seen,
        };
        let req = match self.req {
            FwdReq::Join {
                create,
                set,
                get,
                ua,
                bkg,
            } => TopicRequest::Join {
                hdr,
                create: create.map(|(tmpname, is_chan)| CreateSpec { tmpname, is_chan }),
                set,
                get,
                ua,
                bkg,
            },
            FwdReq::Leave { unsub } => TopicRequest::Leave { hdr, unsub },
            FwdReq::Publish {
                noecho,
                head,
                content,
            } => TopicRequest::Publish {
                hdr,
                noecho,
                head,
                content,
            },
            FwdReq::Get { query } => TopicRequest::Get { hdr, query },
            FwdReq::Note {
                what,
                seq,
                event,
                payload,
            } => TopicRequest::Note {
                hdr,
                what,
                seq,
                event,
                payload,
            },
            FwdReq::Detach => TopicRequest::Detach { sid },
            FwdReq::Foreground { ua } => TopicRequest::Foreground { sid, ua },
        };
        (self.topic, req)
    }
}

/// A frame as it crosses a node link: its JSON, and the request id (and `{ctrl}` code, 0
/// for other messages) it answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Carried {
    pub json: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub code: u16,
}

impl Carried {
    pub fn of(frame: &Frame) -> Carried {
        let text = String::from_utf8_lossy(&frame.json()).into_owned();
        let json = RawValue::from_string(text).unwrap_or_else(|_| {
            RawValue::from_string("null".to_owned()).expect("null is valid JSON")
        });
        let (id, code) = match frame.msg() {
            ServerMsg::Ctrl(c) => (c.id.clone(), c.code),
            ServerMsg::Meta(m) => (m.id.clone(), 0),
            _ => (None, 0),
        };
        Carried { json, id, code }
    }

    /// The frame for the origin's sessions (its bytes verbatim).
    pub fn into_frame(self) -> Frame {
        let stand_in = if self.code != 0 {
            ServerMsg::Ctrl(Ctrl {
                id: self.id,
                topic: None,
                params: None,
                code: self.code,
                text: "",
                ts: Ts::default(),
            })
        } else {
            ServerMsg::Info(Info::default())
        };
        Frame::carried(Bytes::from(self.json.get().to_owned()), stand_in)
    }
}

/// What the master's topic tells one origin session.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Frames(Vec<Carried>),
    /// Attached, with the topic's settled seq then (`Topic::settled_seq`): the origin
    /// backfills from it should the master die.
    Attached {
        topic: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    Detached {
        topic: String,
    },
    End,
}

impl Event {
    pub fn of(ev: &SessionEvent) -> Event {
        match ev {
            SessionEvent::Frames(fs) => Event::Frames(fs.iter().map(Carried::of).collect()),
            SessionEvent::Attached { topic } => Event::Attached {
                topic: topic.clone(),
                seq: None,
            },
            SessionEvent::Detached { topic } => Event::Detached {
                topic: topic.clone(),
            },
            SessionEvent::End => Event::End,
        }
    }

    /// The request ids this event answers.
    pub fn answers(&self) -> impl Iterator<Item = &str> {
        let frames = match self {
            Event::Frames(fs) => &fs[..],
            _ => &[],
        };
        frames.iter().filter_map(|c| c.id.as_deref())
    }

    pub fn into_event(self) -> SessionEvent {
        match self {
            Event::Frames(fs) => {
                SessionEvent::Frames(fs.into_iter().map(Carried::into_frame).collect())
            }
            Event::Attached { topic, .. } => SessionEvent::Attached { topic },
            Event::Detached { topic } => SessionEvent::Detached { topic },
            Event::End => SessionEvent::End,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ShardId, UnixMillis};
    use crate::proto::Outcome;

    #[test]
    fn a_publish_crosses_and_comes_back_as_the_same_request() {
        let hdr = ReqHead {
            req: Requester {
                sid: SessionId::new(ShardId(0), 7),
                uid: UserId(9),
                level: AuthLevel::Auth,
                enc: Encoding::Json,
            },
            id: Some("3".into()),
            as_seen: "grpX".into(),
        };
        let req = TopicRequest::Publish {
            hdr: hdr.clone(),
            noecho: true,
            head: None,
            content: RawValue::from_string("\"hi\"".into()).unwrap(),
        };
        let f = forward("grpX", req).unwrap();
        assert!(f.req.answered());
        let back: Forwarded = from_raw(&to_raw(&f)).unwrap();
        let stand_in = SessionId::remote(1, hdr.req.sid).unwrap();
        let (topic, req) = back.into_request(stand_in);
        assert_eq!(topic, "grpX");
        let TopicRequest::Publish {
            hdr: got,
            noecho,
            content,
            ..
        } = req
        else {
            panic!("not a publish")
        };
        assert!(noecho);
        assert_eq!(content.get(), "\"hi\"");
        assert_eq!(got.req.uid, UserId(9));
        assert_eq!(got.req.level, AuthLevel::Auth);
        assert_eq!(got.req.sid, stand_in);
        assert_eq!(got.id.as_deref(), Some("3"));
        let set = TopicRequest::Set {
            hdr,
            query: Box::default(),
        };
        assert!(forward("grpX", set).is_err());
    }

    #[test]
    fn a_ctrl_crosses_verbatim_with_its_id_and_code() {
        let frame = Frame::new(
            Outcome::Accepted
                .ctrl(Some("5"), Some("grpX"), UnixMillis(1))
                .msg(),
        );
        let ev = Event::of(&SessionEvent::Frames(vec![frame.clone()]));
        let back: Event = from_raw(&to_raw(&ev)).unwrap();
        assert_eq!(back.answers().collect::<Vec<_>>(), ["5"]);
        let SessionEvent::Frames(fs) = back.into_event() else {
            panic!("not frames")
        };
        assert_eq!(fs[0].json(), frame.json());
        assert!(matches!(fs[0].msg(), ServerMsg::Ctrl(c) if c.code == 202));
    }
}
