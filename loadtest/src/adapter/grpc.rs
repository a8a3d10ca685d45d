//! Tinode over gRPC (coretalk's `pbx.Node/MessageLoop`): one bidirectional stream per session
//! on its own HTTP/2 connection (raw h2 on tokio, the gRPC framing by hand: a 0 flag byte, a
//! 4-byte big-endian length, one protobuf message), with the `pbx` prost types generated from
//! the server's `proto/pbx/model.proto` by `build.rs`.
//!
//! The mapping of the JSON frames the harness sends: opaque JSON (`content`, ctrl `params`)
//! travels as JSON text in bytes fields; a token login's secret is the token's raw bytes (the
//! JSON wire's base64 decoded); a basic secret is `login:password` as is.

use std::net::{IpAddr, SocketAddr};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use prost::Message as _;

use super::tinode::{self, Req};
use crate::net::tcp_connect;

/// The types of `proto/pbx/model.proto` (package `pbx`).
#[allow(clippy::all, dead_code)]
pub mod pbx {
    include!(concat!(env!("OUT_DIR"), "/pbx.rs"));
}

use pbx::client_msg::Message as C;
use pbx::server_msg::Message as S;

/// The sending half: the stream's request body.
pub struct GrpcSink {
    send: h2::SendStream<Bytes>,
    /// Holds the connection open while the session lives.
    _conn: h2::client::SendRequest<Bytes>,
}

/// The receiving half: the stream's response body, split into messages.
pub struct GrpcRecv {
    recv: h2::RecvStream,
    buf: BytesMut,
}

/// One session: a `MessageLoop` stream with its own HTTP/2 connection.
pub struct GrpcConn {
    sink: GrpcSink,
    recv: GrpcRecv,
}

impl GrpcConn {
    pub async fn connect(dst: SocketAddr, src: Option<IpAddr>) -> Result<GrpcConn> {
        let tcp = tcp_connect(dst, src).await?;
        let (conn, driver) = h2::client::handshake(tcp)
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            let _ = driver.await;
        });
        let mut conn = conn.ready().await.context("HTTP/2 connection")?;
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{dst}/pbx.Node/MessageLoop"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let (resp, send) = conn.send_request(req, false)?;
        let resp = resp.await.context("MessageLoop response headers")?;
        if resp.status() != 200 {
            return Err(anyhow::Error::new(crate::net::HttpStatus(
                resp.status().as_u16(),
            )))
            .context("pbx.Node/MessageLoop");
        }
        Ok(GrpcConn {
            sink: GrpcSink { send, _conn: conn },
            recv: GrpcRecv {
                recv: resp.into_body(),
                buf: BytesMut::new(),
            },
        })
    }

    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.sink.send(msg)
    }

    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        self.recv.next().await
    }

    /// Ends the request stream (the server then ends the session).
    pub fn close(&mut self) {
        let _ = self.sink.send.send_data(Bytes::new(), true);
    }

    pub fn split(self) -> (GrpcSink, GrpcRecv) {
        (self.sink, self.recv)
    }
}

impl GrpcSink {
    /// Queues one message (`msg` is an encoded `pbx.ClientMsg`) on the stream. h2 buffers what
    /// the peer's flow-control window does not take yet.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        let mut f = BytesMut::with_capacity(5 + msg.len());
        f.extend_from_slice(&[0]);
        f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        f.extend_from_slice(msg);
        self.send
            .send_data(f.freeze(), false)
            .map_err(|e| anyhow!("gRPC send: {e}"))
    }
}

impl GrpcRecv {
    /// The next message's bytes (an encoded `pbx.ServerMsg`); `None` when the stream ended.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf[0] != 0 {
                    bail!("compressed gRPC message (flag {})", self.buf[0]);
                }
                if self.buf.len() >= 5 + len {
                    self.buf.advance(5);
                    return Ok(Some(self.buf.split_to(len).freeze()));
                }
            }
            match self.recv.data().await {
                Some(Ok(b)) => {
                    let _ = self.recv.flow_control().release_capacity(b.len());
                    self.buf.extend_from_slice(&b);
                }
                Some(Err(e)) => return Err(anyhow!("gRPC stream: {e}")),
                None => {
                    // Trailers carry grpc-status; anything but 0 is an error.
                    if let Ok(Some(t)) = self.recv.trailers().await {
                        let status = t
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("0");
                        if status != "0" {
                            let msg = t
                                .get("grpc-message")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            bail!("gRPC stream ended with status {status} {msg}");
                        }
                    }
                    return Ok(None);
                }
            }
        }
    }
}

fn encode(m: C) -> Vec<u8> {
    pbx::ClientMsg {
        message: Some(m),
        extra: None,
    }
    .encode_to_vec()
}

/// The protobuf form of a set-up request.
pub fn request(r: &Req<'_>, id: &str) -> Result<Vec<u8>> {
    let id = id.to_owned();
    Ok(encode(match *r {
        Req::Hi => C::Hi(pbx::ClientHi {
            id,
            user_agent: "coretalk-load/0.1".into(),
            ver: "0.25.3".into(),
            ..Default::default()
        }),
        Req::AccNew { login, password } => C::Acc(pbx::ClientAcc {
            id,
            user_id: "new".into(),
            scheme: "basic".into(),
            secret: format!("{login}:{password}").into_bytes(),
            login: true,
            desc: Some(pbx::SetDesc {
                public: serde_json::json!({ "fn": login }).to_string().into_bytes(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        Req::LoginToken(token) => C::Login(pbx::ClientLogin {
            id,
            scheme: "token".into(),
            secret: base64::engine::general_purpose::STANDARD
                .decode(token)
                .context("token is not base64")?,
            ..Default::default()
        }),
        Req::LoginBasic { login, password } => C::Login(pbx::ClientLogin {
            id,
            scheme: "basic".into(),
            secret: format!("{login}:{password}").into_bytes(),
            ..Default::default()
        }),
        Req::Sub(topic) => C::Sub(pbx::ClientSub {
            id,
            topic: topic.into(),
            ..Default::default()
        }),
        Req::Leave(topic) => C::Leave(pbx::ClientLeave {
            id,
            topic: topic.into(),
            unsub: false,
        }),
    }))
}

/// `{pub}` with `noecho`, its id carrying the scheduled time (as the JSON frame does); the
/// content is the payload as a JSON string.
pub fn publish(topic: &str, sched_ns: u64, content: &str) -> Vec<u8> {
    let mut json = Vec::with_capacity(content.len() + 2);
    json.push(b'"');
    json.extend_from_slice(content.as_bytes());
    json.push(b'"');
    encode(C::Pub(pbx::ClientPub {
        id: format!("p{sched_ns}"),
        topic: topic.into(),
        no_echo: true,
        content: json,
        ..Default::default()
    }))
}

/// A server message, classified as [`tinode::parse`] does for JSON.
pub enum In {
    /// A `{data}`'s content with the JSON string quotes taken off (the stamped payload).
    Data(Vec<u8>),
    Ctrl(tinode::Ctrl),
    Other,
    Bad(String),
}

pub fn parse(msg: &[u8]) -> In {
    let m = match pbx::ServerMsg::decode(msg) {
        Ok(m) => m,
        Err(e) => return In::Bad(format!("not a pbx.ServerMsg: {e}")),
    };
    match m.message {
        Some(S::Data(d)) => {
            let c = d.content;
            if c.len() >= 2 && c[0] == b'"' && c[c.len() - 1] == b'"' {
                In::Data(c[1..c.len() - 1].to_vec())
            } else {
                In::Data(c)
            }
        }
        Some(S::Ctrl(c)) => In::Ctrl(ctrl(c)),
        Some(_) => In::Other,
        None => In::Bad("pbx.ServerMsg without a message".into()),
    }
}

/// A `pbx.ServerCtrl` as the JSON wire's `{ctrl}` (params: each value's JSON text parsed).
fn ctrl(c: pbx::ServerCtrl) -> tinode::Ctrl {
    let params = (!c.params.is_empty()).then(|| {
        serde_json::Value::Object(
            c.params
                .iter()
                .map(|(k, v)| {
                    let v = serde_json::from_slice(v)
                        .unwrap_or_else(|_| String::from_utf8_lossy(v).into_owned().into());
                    (k.clone(), v)
                })
                .collect(),
        )
    });
    tinode::Ctrl {
        id: (!c.id.is_empty()).then_some(c.id),
        topic: (!c.topic.is_empty()).then_some(c.topic),
        code: c.code.clamp(0, u16::MAX as i32) as u16,
        text: c.text,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_through_the_pbx_types() {
        let b = publish("grpX", 77, "T1.2.3.xx");
        let m = pbx::ClientMsg::decode(&b[..]).unwrap();
        let Some(C::Pub(p)) = m.message else {
            panic!("a pub")
        };
        assert_eq!(p.id, "p77");
        assert!(p.no_echo);
        assert_eq!(p.content, b"\"T1.2.3.xx\"");
    }

    #[test]
    fn parses_data_and_ctrl() {
        let d = pbx::ServerMsg {
            message: Some(S::Data(pbx::ServerData {
                topic: "grpA".into(),
                content: b"\"T1.2.3.xx\"".to_vec(),
                ..Default::default()
            })),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(matches!(parse(&d), In::Data(p) if p == b"T1.2.3.xx"));
        let mut params = std::collections::HashMap::new();
        params.insert("token".to_owned(), b"\"AbC=\"".to_vec());
        let c = pbx::ServerMsg {
            message: Some(S::Ctrl(pbx::ServerCtrl {
                id: "7".into(),
                code: 200,
                params,
                ..Default::default()
            })),
            ..Default::default()
        }
        .encode_to_vec();
        match parse(&c) {
            In::Ctrl(c) => {
                assert_eq!(c.code, 200);
                assert_eq!(c.id.as_deref(), Some("7"));
                assert_eq!(c.param("token"), Some("AbC="));
            }
            _ => panic!("a ctrl"),
        }
    }

    #[test]
    fn token_login_sends_raw_bytes() {
        let b = request(&Req::LoginToken("AQID"), "1").unwrap();
        let m = pbx::ClientMsg::decode(&b[..]).unwrap();
        let Some(C::Login(l)) = m.message else {
            panic!("a login")
        };
        assert_eq!(l.secret, vec![1, 2, 3]);
    }
}
