//! Protobuf decoding of client messages (`pbx.ClientMsg`, gRPC) into the same [`Decoded`] that
//! the JSON codec produces, so the session state machine cannot tell the transports apart.
//!
//! The mapping is the reference server's (`server/pbconverter.go`, `pbCliDeserialize`), field
//! by field: JSON-valued `bytes` (content, public, private, trusted, payload, head/aux/params
//! map values) must hold valid JSON and are kept verbatim as [`RawJson`]; empty means absent.
//! `secret` and `tmp_secret` are raw bytes on this wire and become the standard base64 that the
//! JSON wire carries; timestamps are milliseconds (`0` = absent) and become RFC 3339; enums
//! become the JSON words, the zero placeholders "absent". Like the reference, `desc`/`sub`
//! options keep only `if_modified_since` and `limit`, and `ClientAcc.token` is unused.
//! Deviations: `SetQuery.aux`, `GetOpts.ranges`, `ClientNote.unread/event/payload` and the
//! `ClientAcc` auth level and temporary scheme are read (the reference snapshot ignores them).
//! Invalid protobuf or invalid JSON in a JSON field is [`DecodeError::Malformed`], a message
//! with no payload [`DecodeError::Empty`].

use std::collections::BTreeMap;

use base64::Engine as _;
use prost::Message as _;
use serde_json::value::RawValue;

use super::pbx;
use crate::ids::UnixMillis;
use crate::proto::client::*;
use crate::proto::codec::{DecodeError, Decoded};
use crate::proto::time::rfc3339;

/// Decodes one `pbx.ClientMsg`.
pub fn decode_client(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let m = pbx::ClientMsg::decode(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    client_msg(m)
}

/// Converts a decoded `pbx.ClientMsg`.
pub fn client_msg(m: pbx::ClientMsg) -> Result<Decoded, DecodeError> {
    use pbx::client_msg::Message as M;
    let msg = match m.message.ok_or(DecodeError::Empty)? {
        M::Hi(h) => ClientMsg::Hi(MsgHi {
            id: opt(h.id),
            ver: opt(h.ver),
            ua: opt(h.user_agent),
            dev: opt(h.device_id),
            platf: opt(h.platform),
            lang: opt(h.lang),
            bkg: h.background,
        }),
        M::Acc(a) => ClientMsg::Acc(MsgAcc {
            id: opt(a.id),
            user: opt(a.user_id),
            scheme: opt(a.scheme),
            secret: secret(&a.secret),
            login: a.login,
            tags: list(a.tags),
            cred: creds(a.cred)?,
            desc: a.desc.map(set_desc).transpose()?.flatten(),
            status: opt(a.state),
            authlevel: auth_level(a.auth_level),
            tmpscheme: opt(a.tmp_scheme),
            tmpsecret: secret(&a.tmp_secret),
        }),
        M::Login(l) => ClientMsg::Login(MsgLogin {
            id: opt(l.id),
            scheme: opt(l.scheme),
            secret: secret(&l.secret),
            cred: creds(l.cred)?,
        }),
        M::Sub(s) => ClientMsg::Sub(MsgSub {
            id: opt(s.id),
            topic: s.topic,
            set: s.set_query.map(set_query).transpose()?.flatten(),
            get: s.get_query.map(get_query),
        }),
        M::Leave(l) => ClientMsg::Leave(MsgLeave {
            id: opt(l.id),
            topic: l.topic,
            unsub: l.unsub,
        }),
        M::Pub(p) => ClientMsg::Pub(MsgPub {
            id: opt(p.id),
            topic: p.topic,
            noecho: p.no_echo,
            head: head(p.head)?,
            content: json(p.content)?,
        }),
        M::Get(g) => {
            let q = g.query.map(get_query).unwrap_or_default();
            ClientMsg::Get(MsgGet {
                id: opt(g.id),
                topic: g.topic,
                what: q.what,
                desc: q.desc,
                sub: q.sub,
                data: q.data,
                del: q.del,
            })
        }
        M::Set(s) => {
            let q = s.query.map(set_query).transpose()?.flatten();
            let q = q.unwrap_or_default();
            ClientMsg::Set(MsgSet {
                id: opt(s.id),
                topic: s.topic,
                desc: q.desc,
                sub: q.sub,
                tags: q.tags,
                cred: q.cred,
                aux: q.aux,
            })
        }
        M::Del(d) => ClientMsg::Del(MsgDel {
            id: opt(d.id),
            topic: d.topic,
            what: del_what(d.what).to_owned(),
            delseq: (!d.del_seq.is_empty()).then(|| ranges(&d.del_seq)),
            user: opt(d.user_id),
            cred: d.cred.map(cred).transpose()?,
            hard: d.hard,
        }),
        M::Note(n) => ClientMsg::Note(MsgNote {
            topic: n.topic,
            what: note_what(n.what).to_owned(),
            seq: i64::from(n.seq_id),
            unread: i64::from(n.unread),
            event: call_event(n.event).map(str::to_owned),
            payload: json(n.payload)?,
        }),
    };
    let extra = m.extra.and_then(|e| {
        let x = Extra {
            attachments: list(e.attachments),
            obo: opt(e.on_behalf_of),
            authlevel: auth_level(e.auth_level),
        };
        (x.attachments.is_some() || x.obo.is_some() || x.authlevel.is_some()).then_some(x)
    });
    Ok(Decoded { msg, extra })
}

/// An empty string is absent.
fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// An empty list is absent.
fn list(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

/// Raw secret bytes as the standard base64 of the JSON wire; empty is absent.
fn secret(b: &[u8]) -> Option<String> {
    (!b.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(b))
}

/// A JSON value carried as bytes, verbatim; empty is absent, invalid JSON is malformed.
fn json(b: Vec<u8>) -> Result<Option<RawJson>, DecodeError> {
    if b.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8(b).map_err(|_| malformed("JSON field is not UTF-8"))?;
    RawValue::from_string(text)
        .map(Some)
        .map_err(|e| DecodeError::Malformed(format!("JSON field: {e}")))
}

/// A map of JSON texts as one JSON object, members verbatim; empty is absent.
fn json_object(m: BTreeMap<String, Vec<u8>>) -> Result<Option<RawJson>, DecodeError> {
    if m.is_empty() {
        return Ok(None);
    }
    let mut out = String::from("{");
    for (i, (k, v)) in m.into_iter().enumerate() {
        let Some(v) = json(v)? else { continue };
        if i > 0 && out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(&k).unwrap_or_default());
        out.push(':');
        out.push_str(v.get());
    }
    out.push('}');
    RawValue::from_string(out)
        .map(Some)
        .map_err(|e| DecodeError::Malformed(format!("JSON map: {e}")))
}

/// `pub.head`: each member parsed (the server edits it), empty members dropped.
fn head(
    m: BTreeMap<String, Vec<u8>>,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, DecodeError> {
    if m.is_empty() {
        return Ok(None);
    }
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        if v.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&v)
            .map_err(|e| DecodeError::Malformed(format!("head.{k}: {e}")))?;
        out.insert(k, v);
    }
    Ok(Some(out))
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::Malformed(why.to_owned())
}

fn creds(v: Vec<pbx::ClientCred>) -> Result<Option<Vec<Credential>>, DecodeError> {
    if v.is_empty() {
        return Ok(None);
    }
    v.into_iter().map(cred).collect::<Result<_, _>>().map(Some)
}

fn cred(c: pbx::ClientCred) -> Result<Credential, DecodeError> {
    Ok(Credential {
        meth: c.method,
        val: opt(c.value).map(serde_json::Value::String),
        resp: opt(c.response),
        params: json_object(c.params)?,
    })
}

/// `None` when nothing is set, as the reference's `pbSetDescDeserialize`.
fn set_desc(d: pbx::SetDesc) -> Result<Option<SetDesc>, DecodeError> {
    let defacs = d.default_acs.and_then(|a| {
        let x = DefAcsIn {
            auth: opt(a.auth),
            anon: opt(a.anon),
        };
        (x.auth.is_some() || x.anon.is_some()).then_some(x)
    });
    let out = SetDesc {
        defacs,
        public: json(d.public)?,
        trusted: json(d.trusted)?,
        private: json(d.private)?,
    };
    let any = out.defacs.is_some()
        || out.public.is_some()
        || out.trusted.is_some()
        || out.private.is_some();
    Ok(any.then_some(out))
}

/// `None` when nothing is set, as the reference's `pbSetQueryDeserialize`.
fn set_query(q: pbx::SetQuery) -> Result<Option<SetQuery>, DecodeError> {
    let out = SetQuery {
        desc: q.desc.map(set_desc).transpose()?.flatten(),
        sub: q.sub.and_then(|s| {
            let x = SetSub {
                user: opt(s.user_id),
                mode: opt(s.mode),
            };
            (x.user.is_some() || x.mode.is_some()).then_some(x)
        }),
        tags: list(q.tags),
        cred: q.cred.map(cred).transpose()?,
        aux: json_object(q.aux)?,
    };
    let any = out.desc.is_some()
        || out.sub.is_some()
        || out.tags.is_some()
        || out.cred.is_some()
        || out.aux.is_some();
    Ok(any.then_some(out))
}

fn get_query(q: pbx::GetQuery) -> GetQuery {
    let desc_opts = |o: pbx::GetOpts| GetOptsDesc {
        ims: ims(o.if_modified_since),
        limit: pos(o.limit),
        ..Default::default()
    };
    GetQuery {
        what: q.what,
        desc: q.desc.map(desc_opts),
        sub: q.sub.map(desc_opts),
        data: q.data.map(|o| GetOptsData {
            since: pos(o.since_id),
            before: pos(o.before_id),
            limit: pos(o.limit),
            ranges: (!o.ranges.is_empty()).then(|| ranges(&o.ranges)),
            ..Default::default()
        }),
        del: None,
    }
}

/// Milliseconds since the epoch as RFC 3339; 0 (or negative) is absent.
fn ims(ms: i64) -> Option<String> {
    u64::try_from(ms)
        .ok()
        .filter(|&v| v > 0)
        .map(|v| rfc3339(UnixMillis(v)))
}

/// 0 is absent; negative values are kept for the session to refuse.
fn pos(v: i32) -> Option<i64> {
    (v != 0).then_some(i64::from(v))
}

fn ranges(r: &[pbx::SeqRange]) -> Vec<SeqRange> {
    r.iter()
        .map(|r| SeqRange {
            low: i64::from(r.low),
            hi: i64::from(r.hi),
        })
        .collect()
}

fn auth_level(v: i32) -> Option<String> {
    let s = match pbx::AuthLevel::try_from(v).ok()? {
        pbx::AuthLevel::None => return None,
        pbx::AuthLevel::Anon => "anon",
        pbx::AuthLevel::Auth => "auth",
        pbx::AuthLevel::Root => "root",
    };
    Some(s.to_owned())
}

fn del_what(v: i32) -> &'static str {
    use pbx::client_del::What;
    match What::try_from(v) {
        Ok(What::Msg) => "msg",
        Ok(What::Topic) => "topic",
        Ok(What::Sub) => "sub",
        Ok(What::User) => "user",
        Ok(What::Cred) => "cred",
        Ok(What::X0) | Err(_) => "",
    }
}

fn note_what(v: i32) -> &'static str {
    use pbx::InfoNote;
    match InfoNote::try_from(v) {
        Ok(InfoNote::Read) => "read",
        Ok(InfoNote::Recv) => "recv",
        Ok(InfoNote::Kp) => "kp",
        Ok(InfoNote::Call) => "call",
        Ok(InfoNote::X1) | Err(_) => "",
    }
}

fn call_event(v: i32) -> Option<&'static str> {
    use pbx::CallEvent;
    Some(match CallEvent::try_from(v).ok()? {
        CallEvent::X2 => return None,
        CallEvent::Accept => "accept",
        CallEvent::Answer => "answer",
        CallEvent::HangUp => "hang-up",
        CallEvent::IceCandidate => "ice-candidate",
        CallEvent::Invite => "invite",
        CallEvent::Offer => "offer",
        CallEvent::Ringing => "ringing",
    })
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
