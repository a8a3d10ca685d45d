//! Tinode JSON over WebSocket (coretalk and the baseline): the client frames the harness sends
//! (`hi`, `acc`, `login`, `sub`, `pub`, `leave`) and a parser for what comes back (`ctrl`,
//! `data`; everything else is ignored).
//!
//! `{data}` frames take a fast path: the payload stamp is found with a substring search for
//! `"content":"` (the harness's payloads are plain ASCII strings without escapes).

use base64::Engine as _;
use serde::Deserialize;

/// The demo API key every official client uses (validates under the sample salt).
pub const API_KEY: &str = "AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K";

/// Path and query of the WebSocket endpoint.
pub fn ws_path() -> String {
    format!("/v0/channels?apikey={API_KEY}")
}

/// Path and query of the long-polling endpoint (optionally with a session id).
pub fn lp_path(sid: Option<&str>) -> String {
    match sid {
        Some(s) => format!("/v0/channels/lp?apikey={API_KEY}&sid={s}"),
        None => format!("/v0/channels/lp?apikey={API_KEY}"),
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

pub fn hi(id: &str) -> String {
    format!(
        r#"{{"hi":{{"id":{},"ver":"0.25.3","ua":"coretalk-load/0.1"}}}}"#,
        q(id)
    )
}

/// `{acc}` creating a basic-auth account and logging this session in.
pub fn acc_new(id: &str, login: &str, password: &str) -> String {
    let secret =
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}").as_bytes());
    format!(
        r#"{{"acc":{{"id":{},"user":"new","scheme":"basic","secret":{},"login":true,"desc":{{"public":{{"fn":{}}}}}}}}}"#,
        q(id),
        q(&secret),
        q(login)
    )
}

/// `{login}` with the basic scheme (`login:password`, base64).
pub fn login_basic(id: &str, login: &str, password: &str) -> String {
    let secret =
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}").as_bytes());
    format!(
        r#"{{"login":{{"id":{},"scheme":"basic","secret":{}}}}}"#,
        q(id),
        q(&secret)
    )
}

pub fn login_token(id: &str, token: &str) -> String {
    format!(
        r#"{{"login":{{"id":{},"scheme":"token","secret":{}}}}}"#,
        q(id),
        q(token)
    )
}

pub fn sub(id: &str, topic: &str) -> String {
    format!(r#"{{"sub":{{"id":{},"topic":{}}}}}"#, q(id), q(topic))
}

pub fn leave(id: &str, topic: &str) -> String {
    format!(r#"{{"leave":{{"id":{},"topic":{}}}}}"#, q(id), q(topic))
}

/// `{pub}` with `noecho`; `id` carries the scheduled time so the `{ctrl 202}` gives the ack
/// latency without any bookkeeping.
pub fn publish(topic: &str, sched_ns: u64, content: &str) -> String {
    format!(
        r#"{{"pub":{{"id":"p{sched_ns}","topic":{},"noecho":true,"content":"{content}"}}}}"#,
        q(topic)
    )
}

/// A set-up request, whatever the wire (JSON here, protobuf in `grpc.rs`).
#[derive(Clone, Copy, Debug)]
pub enum Req<'a> {
    Hi,
    /// `{acc}` creating a basic-auth account and logging this session in.
    AccNew {
        login: &'a str,
        password: &'a str,
    },
    LoginToken(&'a str),
    LoginBasic {
        login: &'a str,
        password: &'a str,
    },
    Sub(&'a str),
    Leave(&'a str),
}

impl Req<'_> {
    pub fn json(&self, id: &str) -> String {
        match *self {
            Req::Hi => hi(id),
            Req::AccNew { login, password } => acc_new(id, login, password),
            Req::LoginToken(t) => login_token(id, t),
            Req::LoginBasic { login, password } => login_basic(id, login, password),
            Req::Sub(t) => sub(id, t),
            Req::Leave(t) => leave(id, t),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Ctrl {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    pub code: u16,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub params: Option<serde_json::Value>,
}

impl Ctrl {
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params.as_ref()?.get(k)?.as_str()
    }
}

#[derive(Deserialize)]
struct Env {
    #[serde(default)]
    ctrl: Option<Ctrl>,
}

/// One server frame, classified.
#[derive(Debug)]
pub enum In<'a> {
    /// A `{data}` frame's content.
    Data(&'a [u8]),
    Ctrl(Ctrl),
    /// `{pres}`, `{meta}`, `{info}`: not measured.
    Other,
    /// Not JSON the harness understands.
    Bad,
}

pub fn parse(frame: &[u8]) -> In<'_> {
    if frame.starts_with(br#"{"data":"#) {
        const KEY: &[u8] = br#""content":""#;
        if let Some(p) = frame.windows(KEY.len()).position(|w| w == KEY) {
            let rest = &frame[p + KEY.len()..];
            if let Some(e) = rest.iter().position(|c| *c == b'"') {
                return In::Data(&rest[..e]);
            }
        }
        return In::Bad;
    }
    if frame.starts_with(br#"{"ctrl":"#) {
        return match serde_json::from_slice::<Env>(frame) {
            Ok(Env { ctrl: Some(c) }) => In::Ctrl(c),
            _ => In::Bad,
        };
    }
    if frame.first() == Some(&b'{') {
        In::Other
    } else {
        In::Bad
    }
}

/// The scheduled time in a `{pub}` id (`p<ns>`).
pub fn pub_id_sched(id: &str) -> Option<u64> {
    id.strip_prefix('p')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_json() {
        for f in [
            hi("1"),
            acc_new("2", "alice", "pw"),
            login_token("3", "AbC="),
            sub("4", "me"),
            publish("grpX", 5, "T1.2.3.xx"),
        ] {
            serde_json::from_str::<serde_json::Value>(&f).unwrap();
        }
    }

    #[test]
    fn parses_data_and_ctrl() {
        let d = br#"{"data":{"topic":"grpA","from":"usrB","ts":"2025-01-01T00:00:00Z","seq":3,"content":"T1.2.3.xx"}}"#;
        assert!(matches!(parse(d), In::Data(b"T1.2.3.xx")));
        let c = br#"{"ctrl":{"id":"p77","topic":"grpA","params":{"seq":3},"code":202,"text":"accepted","ts":"x"}}"#;
        match parse(c) {
            In::Ctrl(c) => {
                assert_eq!(c.code, 202);
                assert_eq!(pub_id_sched(c.id.as_deref().unwrap()), Some(77));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(br#"{"pres":{}}"#), In::Other));
    }
}
