//! JSON decoding of client frames and encoding of server messages; the only place that turns
//! bytes into protocol values and back.
//!
//! Decoding follows the reference server: one payload per envelope chosen by priority
//! (`pub > sub > leave > hi > login > get > set > del > acc > note`), unknown fields ignored,
//! any syntax or type error is [`DecodeError::Malformed`].

use bytes::Bytes;
use serde::Deserialize;

use crate::proto::client::*;
use crate::proto::server::ServerMsg;

/// Why a frame could not be decoded. Both map to `{ctrl 400 "malformed"}` without id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, wrong field types, or not an object.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A JSON object with none of the known payloads.
    #[error("message has no known payload")]
    Empty,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope {
    hi: Option<MsgHi>,
    acc: Option<MsgAcc>,
    login: Option<MsgLogin>,
    sub: Option<MsgSub>,
    leave: Option<MsgLeave>,
    #[serde(rename = "pub")]
    publish: Option<MsgPub>,
    get: Option<MsgGet>,
    set: Option<MsgSet>,
    del: Option<MsgDel>,
    note: Option<MsgNote>,
    extra: Option<Extra>,
}

/// A decoded frame: the message and its envelope-level `extra`.
#[derive(Debug)]
pub struct Decoded {
    pub msg: ClientMsg,
    pub extra: Option<Extra>,
}

/// Decodes one client frame.
pub fn decode(frame: &[u8]) -> Result<Decoded, DecodeError> {
    let env: Envelope =
        serde_json::from_slice(frame).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let extra = env.extra;
    let msg = if let Some(m) = env.publish {
        ClientMsg::Pub(m)
    } else if let Some(m) = env.sub {
        ClientMsg::Sub(m)
    } else if let Some(m) = env.leave {
        ClientMsg::Leave(m)
    } else if let Some(m) = env.hi {
        ClientMsg::Hi(m)
    } else if let Some(m) = env.login {
        ClientMsg::Login(m)
    } else if let Some(m) = env.get {
        ClientMsg::Get(m)
    } else if let Some(m) = env.set {
        ClientMsg::Set(m)
    } else if let Some(m) = env.del {
        ClientMsg::Del(m)
    } else if let Some(m) = env.acc {
        ClientMsg::Acc(m)
    } else if let Some(m) = env.note {
        ClientMsg::Note(m)
    } else {
        return Err(DecodeError::Empty);
    };
    Ok(Decoded { msg, extra })
}

/// Encodes one server message into shared bytes (serialized once, sent to many sessions).
pub fn encode(msg: &ServerMsg) -> Bytes {
    // Serializing plain structs with string keys cannot fail.
    Bytes::from(serde_json::to_vec(msg).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UnixMillis;
    use crate::proto::ctrl::Outcome;
    use crate::proto::server::{raw, Data, Ts};

    #[test]
    fn picks_the_payload_by_reference_priority() {
        let d =
            decode(br#"{"note":{"topic":"x","what":"kp"},"pub":{"topic":"grpA","content":"hi"}}"#)
                .unwrap();
        assert!(matches!(d.msg, ClientMsg::Pub(_)));
        let d =
            decode(br#"{"acc":{"id":"1"},"get":{"id":"2","topic":"me","what":"desc"}}"#).unwrap();
        assert!(matches!(d.msg, ClientMsg::Get(_)));
    }

    #[test]
    fn rejects_bad_json_type_mismatch_and_empty_envelopes() {
        assert!(matches!(decode(b"{"), Err(DecodeError::Malformed(_))));
        assert!(matches!(decode(b"[1,2]"), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode(br#"{"note":{"topic":"t","what":"read","seq":"5"}}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(decode(br#"{"foo":{}}"#).unwrap_err(), DecodeError::Empty);
    }

    #[test]
    fn keeps_content_verbatim() {
        let d =
            decode(br#"{"pub":{"id":"5","topic":"grpA","content":{"txt":"a","fmt":[{"at":0}]}}}"#)
                .unwrap();
        let ClientMsg::Pub(p) = d.msg else {
            panic!("not a pub")
        };
        assert_eq!(p.content.unwrap().get(), r#"{"txt":"a","fmt":[{"at":0}]}"#);
    }

    #[test]
    fn encodes_fields_in_reference_order() {
        let m = Outcome::Accepted
            .ctrl(Some("5"), Some("grpA"), UnixMillis(1_735_787_045_123))
            .param("seq", 18)
            .msg();
        assert_eq!(
            &encode(&m)[..],
            br#"{"ctrl":{"id":"5","topic":"grpA","params":{"seq":18},"code":202,"text":"accepted","ts":"2025-01-02T03:04:05.123Z"}}"#
        );
        let d = ServerMsg::Data(Data {
            topic: "grpA".into(),
            from: Some("usrAAAAAAAAAAA".into()),
            ts: Ts(UnixMillis(1_735_787_045_000)),
            seq: 1,
            head: None,
            content: raw("\"hello\""),
        });
        assert_eq!(
            &encode(&d)[..],
            br#"{"data":{"topic":"grpA","from":"usrAAAAAAAAAAA","ts":"2025-01-02T03:04:05Z","seq":1,"content":"hello"}}"#
        );
    }
}
