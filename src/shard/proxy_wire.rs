//! Proxied topic requests between cluster nodes, in the forms that cross a node link: a
//! client's request for a topic mastered elsewhere ([`Forwarded`], with the requester's
//! snapshot), and what the master's topic sends back — events for one session ([`Event`]) and
//! broadcasts ([`Carried`] frames, once per origin node and shard).
//!
//! Pure conversions between these and the shard's `TopicRequest`/`SessionEvent`, and to and
//! from the opaque JSON payloads of `cluster::wire::NodeMsg` (the cluster layer never names
//! protocol types); `proxy.rs` decides when to forward and where answers go. Frames cross as
//! their JSON bytes, verbatim, plus the request id and code a `{ctrl}`/`{meta}` answers with (so the
//! origin can match answers to the requests it waits for), and their protobuf bytes (base64)
//! when a protobuf (gRPC) session of the origin is to get them: the master encodes each frame
//! once per encoding as for its own sessions, and the origin sends the bytes of each
//! session's encoding verbatim.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::access::AuthLevel;
use crate::ids::{SessionId, UserId};
use crate::proto::client::{Credential, GetQuery, SeqRange, SetQuery};
use crate::proto::server::{Ctrl, Info, Ts};
use crate::proto::{Encoding, Frame, ServerMsg};
use crate::routing::{CreateSpec, DelWhat, ReqHead, Requester, SessionEvent, TopicRequest};

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
    /// The session is a protobuf (gRPC) one: what the topic sends it crosses with its
    /// protobuf bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pb: bool,
    pub req: FwdReq,
}

/// What a forwarded `{del}` deletes (`DelWhat`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FwdDel {
    Msg { ranges: Vec<SeqRange>, hard: bool },
    Topic { hard: bool },
    Sub { user: String },
    Cred(Box<Credential>),
}

impl FwdDel {
    fn of(what: DelWhat) -> FwdDel {
        match what {
            DelWhat::Msg { ranges, hard } => FwdDel::Msg { ranges, hard },
            DelWhat::Topic { hard } => FwdDel::Topic { hard },
            DelWhat::Sub { user } => FwdDel::Sub { user },
            DelWhat::Cred(c) => FwdDel::Cred(c),
        }
    }

    fn into_what(self) -> DelWhat {
        match self {
            FwdDel::Msg { ranges, hard } => DelWhat::Msg { ranges, hard },
            FwdDel::Topic { hard } => DelWhat::Topic { hard },
            FwdDel::Sub { user } => DelWhat::Sub { user },
            FwdDel::Cred(c) => DelWhat::Cred(c),
        }
    }
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
    Set {
        query: Box<SetQuery>,
    },
    Del {
        what: FwdDel,
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
                | FwdReq::Set { .. }
                | FwdReq::Del { .. }
        )
    }
}

/// The forwarded form of `req` for `topic`; the request itself back when it is not forwarded
/// (the runtime's own requests but detach and foreground: presence for `me` crosses as
/// `proxy_me.rs` notes, and a topic's refresh stays with its master).
// The request goes back whole (boxing it would cost an allocation on every forward).
#[allow(clippy::result_large_err)]
pub fn forward(topic: &str, req: TopicRequest) -> Result<Forwarded, TopicRequest> {
    let plain = |sid: SessionId, req| Forwarded {
        topic: topic.to_owned(),
        sid: sid.0,
        uid: 0,
        level: String::new(),
        id: None,
        as_seen: topic.to_owned(),
        pb: false,
        req,
    };
    let with = |hdr: ReqHead, req| Forwarded {
        topic: topic.to_owned(),
        sid: hdr.req.sid.0,
        uid: hdr.req.uid.0,
        level: hdr.req.level.as_str().to_owned(),
        pb: hdr.req.enc == Encoding::Protobuf,
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
        TopicRequest::Set { hdr, query } => with(hdr, FwdReq::Set { query }),
        TopicRequest::Del { hdr, what } => with(
            hdr,
            FwdReq::Del {
                what: FwdDel::of(what),
            },
        ),
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
                enc: if self.pb {
                    Encoding::Protobuf
                } else {
                    Encoding::Json
                },
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
            FwdReq::Set { query } => TopicRequest::Set { hdr, query },
            FwdReq::Del { what } => TopicRequest::Del {
                hdr,
                what: what.into_what(),
            },
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

/// A frame as it crosses a node link: its JSON, its protobuf bytes (base64) when protobuf
/// sessions are to get it, and the request id (and `{ctrl}` code, 0 for other messages) it
/// answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Carried {
    pub json: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub code: u16,
}

impl Carried {
    /// `frame` as it crosses, with its protobuf bytes when `pb` (encoded now if no session of
    /// this node needed them yet).
    pub fn of(frame: &Frame, pb: bool) -> Carried {
        let pb = pb.then(|| STANDARD.encode(frame.encoded(Encoding::Protobuf)));
        let text = String::from_utf8_lossy(&frame.json()).into_owned();
        let json = RawValue::from_string(text).unwrap_or_else(|_| {
            RawValue::from_string("null".to_owned()).expect("null is valid JSON")
        });
        let (id, code) = match frame.msg() {
            ServerMsg::Ctrl(c) => (c.id.clone(), c.code),
            ServerMsg::Meta(m) => (m.id.clone(), 0),
            _ => (None, 0),
        };
        Carried { json, pb, id, code }
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
        let pb = self
            .pb
            .and_then(|b| STANDARD.decode(b).ok())
            .map(Bytes::from);
        Frame::carried(Bytes::from(self.json.get().to_owned()), pb, stand_in)
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
    /// `ev` as it crosses; `pb`: for a protobuf session.
    pub fn of(ev: &SessionEvent, pb: bool) -> Event {
        match ev {
            SessionEvent::Frames(fs) => {
                Event::Frames(fs.iter().map(|f| Carried::of(f, pb)).collect())
            }
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
            hdr: hdr.clone(),
            query: Box::default(),
        };
        let f = forward("grpX", set).unwrap();
        assert!(f.req.answered());
        let del = TopicRequest::Del {
            hdr: ReqHead {
                req: Requester {
                    enc: Encoding::Protobuf,
                    ..hdr.req.clone()
                },
                ..hdr
            },
            what: DelWhat::Msg {
                ranges: vec![SeqRange { low: 2, hi: 5 }],
                hard: true,
            },
        };
        let back: Forwarded = from_raw(&to_raw(&forward("grpX", del).unwrap())).unwrap();
        let (_, req) = back.into_request(stand_in);
        let TopicRequest::Del { hdr, what } = req else {
            panic!("not a del")
        };
        assert_eq!(hdr.req.enc, Encoding::Protobuf);
        assert!(matches!(what, DelWhat::Msg { ranges, hard: true } if ranges[0].hi == 5));
        let refresh = TopicRequest::Refresh;
        assert!(forward("grpX", refresh).is_err());
    }

    #[test]
    fn a_ctrl_crosses_verbatim_with_its_id_and_code() {
        let frame = Frame::new(
            Outcome::Accepted
                .ctrl(Some("5"), Some("grpX"), UnixMillis(1))
                .msg(),
        );
        let ev = Event::of(&SessionEvent::Frames(vec![frame.clone()]), false);
        let back: Event = from_raw(&to_raw(&ev)).unwrap();
        assert_eq!(back.answers().collect::<Vec<_>>(), ["5"]);
        let SessionEvent::Frames(fs) = back.into_event() else {
            panic!("not frames")
        };
        assert_eq!(fs[0].json(), frame.json());
        assert!(matches!(fs[0].msg(), ServerMsg::Ctrl(c) if c.code == 202));
        assert_eq!(fs[0].encoded_if_done(Encoding::Protobuf), None);
        let ev = Event::of(&SessionEvent::Frames(vec![frame.clone()]), true);
        let SessionEvent::Frames(fs) = from_raw::<Event>(&to_raw(&ev)).unwrap().into_event() else {
            panic!("not frames")
        };
        assert_eq!(
            fs[0].encoded_if_done(Encoding::Protobuf),
            Some(frame.encoded(Encoding::Protobuf)),
            "a protobuf session gets the master's protobuf bytes verbatim"
        );
    }
}
