//! Server → client messages: `{ctrl}`, `{data}`, `{meta}`, `{pres}`, `{info}` and the closed
//! [`ServerMsg`] enum, with the reference server's field names and order.
//!
//! Pure data: building a reply (which code, which params) is the protocol core's job, turning it
//! into bytes is [`crate::proto::codec`]'s.

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::ids::UnixMillis;
use crate::proto::time::{write_rfc3339, StampBuf};

/// A timestamp rendered as RFC 3339 with milliseconds (`…05.123Z`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ts(pub UnixMillis);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = StampBuf::default();
        write_rfc3339(self.0, &mut buf);
        s.serialize_str(buf.as_str())
    }
}

/// Raw JSON embedded verbatim (content, head, public, private).
pub type Raw = Box<RawValue>;

/// Builds a raw JSON value from stored JSON text; invalid text becomes `null` rather than
/// corrupting the output frame.
pub fn raw(text: &str) -> Raw {
    RawValue::from_string(text.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is valid JSON"))
}

/// One server message.
// Transient: built and serialized at once, never queued (queues hold the encoded bytes).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerMsg {
    Ctrl(Ctrl),
    Data(Data),
    Meta(Meta),
    Pres(Pres),
    Info(Info),
}

/// `{ctrl}`: the reply to a request.
#[derive(Debug, Serialize)]
pub struct Ctrl {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    pub code: u16,
    pub text: &'static str,
    pub ts: Ts,
}

/// `{data}`: one message of a topic's history.
#[derive(Debug, Serialize)]
pub struct Data {
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub ts: Ts,
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<Raw>,
    pub content: Raw,
}

/// `{want, given, mode}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccessOut {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub want: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub given: String,
    pub mode: String,
}

/// `{auth, anon}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DefAcsOut {
    pub auth: String,
    pub anon: String,
}

/// `{when, ua}` of a peer last seen online.
#[derive(Debug, Clone, Serialize)]
pub struct SeenOut {
    pub when: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ua: Option<String>,
}

/// A topic description in `{meta desc}`.
#[derive(Debug, Default, Serialize)]
pub struct DescOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub touched: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub online: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub chan: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defacs: Option<DefAcsOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acs: Option<AccessOut>,
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub read: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub recv: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub clear: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<SeenOut>,
    #[serde(skip_serializing_if = "is_zero")]
    pub subcnt: u64,
}

/// One item of `{meta sub}`.
#[derive(Debug, Default, Serialize)]
pub struct SubOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub touched: Option<Ts>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub online: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acs: Option<AccessOut>,
    #[serde(skip_serializing_if = "is_zero")]
    pub read: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub recv: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub clear: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<SeenOut>,
    #[serde(skip_serializing_if = "is_zero")]
    pub subcnt: u64,
}

/// A `[low, hi)` range in `{meta del}` and `{pres del}`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RangeOut {
    pub low: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub hi: u64,
}

/// `{meta del}` body.
#[derive(Debug, Serialize)]
pub struct DelOut {
    pub clear: u64,
    pub delseq: Vec<RangeOut>,
}

/// One credential in `{meta cred}`.
#[derive(Debug, Serialize)]
pub struct CredOut {
    pub meth: String,
    pub val: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
}

/// `{meta}`: one section per message.
#[derive(Debug, Default, Serialize)]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub topic: String,
    pub ts: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Option<DescOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Vec<SubOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub del: Option<DelOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cred: Option<Vec<CredOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<Raw>,
}

/// `{want, given}` delta in `{pres acs}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeltaAcs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub want: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
}

/// `{pres}`: presence and change notifications (no id, no ts).
#[derive(Debug, Default, Serialize)]
pub struct Pres {
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    pub what: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ua: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub clear: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delseq: Option<Vec<RangeOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tgt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dacs: Option<DeltaAcs>,
}

/// `{info}`: a forwarded note (typing, read/recv receipts).
#[derive(Debug, Default, Serialize)]
pub struct Info {
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    pub from: String,
    pub what: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Raw>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
