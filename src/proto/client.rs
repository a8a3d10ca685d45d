//! Client → server messages: one payload type per message kind and the closed [`ClientMsg`] enum.
//!
//! Field names are the reference server's JSON names. Absent and `false`/`0`/`""` mean the same
//! thing (the official SDK strips falsy fields). Opaque application JSON (`content`, `head`,
//! `public`, `private`) is kept verbatim as [`RawJson`] and never re-parsed.
//! The query parts a topic request carries (`GetQuery`, `SetQuery`) also serialise, so a
//! cluster node can forward them to the topic's master (`shard/proxy_wire.rs`).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Application JSON carried through untouched.
pub type RawJson = Box<RawValue>;

/// One decoded client message.
// Transient: decoded and consumed within one step, never queued, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ClientMsg {
    Hi(MsgHi),
    Acc(MsgAcc),
    Login(MsgLogin),
    Sub(MsgSub),
    Leave(MsgLeave),
    Pub(MsgPub),
    Get(MsgGet),
    Set(MsgSet),
    Del(MsgDel),
    Note(MsgNote),
}

impl ClientMsg {
    /// The request id, echoed in replies (`{note}` has none).
    pub fn id(&self) -> Option<&str> {
        let id = match self {
            ClientMsg::Hi(m) => &m.id,
            ClientMsg::Acc(m) => &m.id,
            ClientMsg::Login(m) => &m.id,
            ClientMsg::Sub(m) => &m.id,
            ClientMsg::Leave(m) => &m.id,
            ClientMsg::Pub(m) => &m.id,
            ClientMsg::Get(m) => &m.id,
            ClientMsg::Set(m) => &m.id,
            ClientMsg::Del(m) => &m.id,
            ClientMsg::Note(_) => return None,
        };
        id.as_deref().filter(|s| !s.is_empty())
    }

    /// The topic the message addresses, if the kind has one.
    pub fn topic(&self) -> Option<&str> {
        match self {
            ClientMsg::Sub(m) => Some(&m.topic),
            ClientMsg::Leave(m) => Some(&m.topic),
            ClientMsg::Pub(m) => Some(&m.topic),
            ClientMsg::Get(m) => Some(&m.topic),
            ClientMsg::Set(m) => Some(&m.topic),
            ClientMsg::Del(m) => Some(&m.topic),
            ClientMsg::Note(m) => Some(&m.topic),
            ClientMsg::Hi(_) | ClientMsg::Acc(_) | ClientMsg::Login(_) => None,
        }
    }
}

/// `{hi}`: handshake and later device/language updates.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgHi {
    pub id: Option<String>,
    pub ver: Option<String>,
    pub ua: Option<String>,
    pub dev: Option<String>,
    pub platf: Option<String>,
    pub lang: Option<String>,
    pub bkg: bool,
}

/// A credential in `{acc}`/`{login}`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Credential {
    pub meth: String,
    pub val: Option<serde_json::Value>,
    pub resp: Option<String>,
    pub params: Option<RawJson>,
}

/// Default access in `desc.defacs`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DefAcsIn {
    pub auth: Option<String>,
    pub anon: Option<String>,
}

/// `desc` in `{set}`, `{sub set}` and `{acc}`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SetDesc {
    pub defacs: Option<DefAcsIn>,
    pub public: Option<RawJson>,
    pub trusted: Option<RawJson>,
    pub private: Option<RawJson>,
}

/// `sub` in `{set}` and `{sub set}`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SetSub {
    pub user: Option<String>,
    pub mode: Option<String>,
}

/// `{acc}`: create or update an account.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgAcc {
    pub id: Option<String>,
    pub user: Option<String>,
    pub scheme: Option<String>,
    /// Standard base64.
    pub secret: Option<String>,
    pub login: bool,
    pub tags: Option<Vec<String>>,
    pub cred: Option<Vec<Credential>>,
    pub desc: Option<SetDesc>,
    pub status: Option<String>,
    pub authlevel: Option<String>,
    pub tmpscheme: Option<String>,
    pub tmpsecret: Option<String>,
}

/// `{login}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgLogin {
    pub id: Option<String>,
    pub scheme: Option<String>,
    /// Standard base64.
    pub secret: Option<String>,
    pub cred: Option<Vec<Credential>>,
}

/// Options of `get.desc`.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub struct GetOptsDesc {
    pub ims: Option<String>,
    pub user: Option<String>,
    pub topic: Option<String>,
    pub limit: Option<i64>,
    /// Not valid for `desc`/`sub` queries (400), accepted only to be refused.
    pub since: Option<i64>,
    pub before: Option<i64>,
}

/// Options of `get.data` and `get.del`.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub struct GetOptsData {
    pub since: Option<i64>,
    pub before: Option<i64>,
    pub limit: Option<i64>,
    pub ims: Option<String>,
    pub user: Option<String>,
    pub topic: Option<String>,
    pub ranges: Option<Vec<SeqRange>>,
}

/// A `[low, hi)` range of seq ids; `hi` absent or 0 means the single id `low`.
#[derive(Debug, Default, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(default)]
pub struct SeqRange {
    pub low: i64,
    pub hi: i64,
}

/// The query part of `{get}` and `{sub get}`.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub struct GetQuery {
    pub what: String,
    pub desc: Option<GetOptsDesc>,
    pub sub: Option<GetOptsDesc>,
    pub data: Option<GetOptsData>,
    pub del: Option<GetOptsData>,
}

/// The set part of `{set}` and `{sub set}`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SetQuery {
    pub desc: Option<SetDesc>,
    pub sub: Option<SetSub>,
    pub tags: Option<Vec<String>>,
    pub cred: Option<Credential>,
    pub aux: Option<RawJson>,
}

/// `{sub}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgSub {
    pub id: Option<String>,
    pub topic: String,
    pub set: Option<SetQuery>,
    pub get: Option<GetQuery>,
}

/// `{leave}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgLeave {
    pub id: Option<String>,
    pub topic: String,
    pub unsub: bool,
}

/// `{pub}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgPub {
    pub id: Option<String>,
    pub topic: String,
    pub noecho: bool,
    pub head: Option<serde_json::Map<String, serde_json::Value>>,
    pub content: Option<RawJson>,
}

/// `{get}`: the same fields as [`GetQuery`] plus id and topic (serde's `flatten` cannot carry
/// raw JSON, so the fields are spelled out and [`MsgGet::into_query`] regroups them).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgGet {
    pub id: Option<String>,
    pub topic: String,
    pub what: String,
    pub desc: Option<GetOptsDesc>,
    pub sub: Option<GetOptsDesc>,
    pub data: Option<GetOptsData>,
    pub del: Option<GetOptsData>,
}

impl MsgGet {
    /// The query part.
    pub fn into_query(self) -> GetQuery {
        GetQuery {
            what: self.what,
            desc: self.desc,
            sub: self.sub,
            data: self.data,
            del: self.del,
        }
    }
}

/// `{set}`: the fields of [`SetQuery`] plus id and topic.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgSet {
    pub id: Option<String>,
    pub topic: String,
    pub desc: Option<SetDesc>,
    pub sub: Option<SetSub>,
    pub tags: Option<Vec<String>>,
    pub cred: Option<Credential>,
    pub aux: Option<RawJson>,
}

impl MsgSet {
    /// The set part.
    pub fn into_query(self) -> SetQuery {
        SetQuery {
            desc: self.desc,
            sub: self.sub,
            tags: self.tags,
            cred: self.cred,
            aux: self.aux,
        }
    }
}

/// `{del}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgDel {
    pub id: Option<String>,
    pub topic: String,
    pub what: String,
    pub delseq: Option<Vec<SeqRange>>,
    pub user: Option<String>,
    pub cred: Option<Credential>,
    pub hard: bool,
}

/// `{note}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgNote {
    pub topic: String,
    pub what: String,
    pub seq: i64,
    pub unread: i64,
    pub event: Option<String>,
    pub payload: Option<RawJson>,
}

/// Envelope-level `extra`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Extra {
    pub attachments: Option<Vec<String>>,
    pub obo: Option<String>,
    pub authlevel: Option<String>,
}

/// Bits of the space-separated `what` words of `{get}`.
pub mod what {
    pub const DESC: u8 = 0x01;
    pub const SUB: u8 = 0x02;
    pub const DATA: u8 = 0x04;
    pub const DEL: u8 = 0x08;
    pub const TAGS: u8 = 0x10;
    pub const CRED: u8 = 0x20;
    pub const AUX: u8 = 0x40;

    /// Parses `"desc sub data"` into bits; unknown words are ignored, so 0 means "nothing known".
    pub fn parse(s: &str) -> u8 {
        s.split_whitespace().fold(0, |acc, w| {
            acc | match w {
                "desc" => DESC,
                "sub" => SUB,
                "data" => DATA,
                "del" => DEL,
                "tags" => TAGS,
                "cred" => CRED,
                "aux" => AUX,
                _ => 0,
            }
        })
    }
}
