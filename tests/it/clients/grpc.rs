//! A gRPC client for `pbx.Node/MessageLoop`: a raw HTTP/2 client (h2 on tokio) speaking the
//! gRPC length-prefixed framing with the `pbx` prost types, one stream per connection, plus
//! helpers to read ctrl params and match `{data}`/`{pres}` messages.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use coretalk::proto::pb::pbx;
use pbx::client_msg::Message as C;
use pbx::server_msg::Message as S;
use prost::Message as _;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::support::{Server, RECV_TIMEOUT};

/// One gRPC session: one `MessageLoop` stream on its own HTTP/2 connection.
pub struct Grpc {
    pub name: String,
    _conn: h2::client::SendRequest<Bytes>,
    send: h2::SendStream<Bytes>,
    pub recv: h2::RecvStream,
    buf: BytesMut,
    pending: VecDeque<S>,
    next: u64,
    pub uid: String,
    pub token: String,
}

impl Grpc {
    pub async fn connect(server: &Server, name: &str) -> Grpc {
        let port = server.grpc_port();
        assert_ne!(port, 0, "the server announced no gRPC port");
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the gRPC port");
        let (conn, driver) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(async move {
            let _ = driver.await;
        });
        let mut conn = conn.ready().await.expect("h2 ready");
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://127.0.0.1:{port}/pbx.Node/MessageLoop"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("request");
        let (resp, send) = conn.send_request(req, false).expect("send request");
        let resp = tokio::time::timeout(RECV_TIMEOUT, resp)
            .await
            .expect("response headers in time")
            .expect("response headers");
        assert_eq!(resp.status(), 200, "{name}: {resp:?}");
        Grpc {
            name: name.to_owned(),
            _conn: conn,
            send,
            recv: resp.into_body(),
            buf: BytesMut::new(),
            pending: VecDeque::new(),
            next: 0,
            uid: String::new(),
            token: String::new(),
        }
    }

    pub fn id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.name, self.next)
    }

    /// Sends one length-prefixed gRPC message with these bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        crate::record::save("pb", bytes);
        let mut frame = Vec::with_capacity(5 + bytes.len());
        frame.push(0);
        frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        frame.extend_from_slice(bytes);
        self.send
            .send_data(Bytes::from(frame), false)
            .expect("send a gRPC message");
    }

    pub fn send(&mut self, m: C) {
        let bytes = pbx::ClientMsg {
            message: Some(m),
            extra: None,
        }
        .encode_to_vec();
        self.send_raw(&bytes);
    }

    /// The next server message; `None` once the stream ended (its trailers are checked by
    /// the caller if it cares).
    pub async fn next_msg(&mut self) -> Option<S> {
        if let Some(m) = self.pending.pop_front() {
            return Some(m);
        }
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() >= 5 + len {
                    self.buf.advance(5);
                    let body = self.buf.split_to(len);
                    let msg = pbx::ServerMsg::decode(&body[..])
                        .unwrap_or_else(|e| panic!("{}: not a pbx.ServerMsg: {e}", self.name));
                    return Some(msg.message.expect("a payload"));
                }
            }
            let chunk = tokio::time::timeout(RECV_TIMEOUT, self.recv.data())
                .await
                .unwrap_or_else(|_| panic!("{}: nothing within {RECV_TIMEOUT:?}", self.name));
            match chunk {
                Some(Ok(b)) => {
                    let _ = self.recv.flow_control().release_capacity(b.len());
                    self.buf.extend_from_slice(&b);
                }
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn recv(&mut self) -> S {
        match self.next_msg().await {
            Some(m) => m,
            None => panic!("{}: stream ended while waiting", self.name),
        }
    }

    pub async fn recv_until(&mut self, what: &str, pred: impl Fn(&S) -> bool) -> S {
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let m = self.recv().await;
            if pred(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "{}: no {what}", self.name);
        }
    }

    pub async fn ctrl_for(&mut self, id: &str) -> pbx::ServerCtrl {
        let m = self
            .recv_until(
                &format!("ctrl {id}"),
                |m| matches!(m, S::Ctrl(c) if c.id == id),
            )
            .await;
        let S::Ctrl(c) = m else { unreachable!() };
        c
    }

    pub async fn hi(&mut self) {
        let id = self.id();
        self.send(C::Hi(pbx::ClientHi {
            id: id.clone(),
            user_agent: "coretalk-it-grpc/1.0".into(),
            ver: "0.22.3".into(),
            ..Default::default()
        }));
        let c = self.ctrl_for(&id).await;
        assert_eq!(c.code, 201, "{}: hi answered {c:?}", self.name);
        assert!(c.params.contains_key("ver"), "{c:?}");
    }

    /// Creates an account (`login`, password `login`-pw) and logs in.
    pub async fn sign_up(&mut self, login: &str) {
        let id = self.id();
        self.send(C::Acc(pbx::ClientAcc {
            id: id.clone(),
            user_id: "new".into(),
            scheme: "basic".into(),
            secret: format!("{login}:{login}-pw").into_bytes(),
            login: true,
            desc: Some(pbx::SetDesc {
                public: json!({ "fn": login }).to_string().into_bytes(),
                ..Default::default()
            }),
            ..Default::default()
        }));
        let c = self.ctrl_for(&id).await;
        assert_eq!(c.code, 200, "{}: sign-up answered {c:?}", self.name);
        self.uid = param_str(&c, "user");
        self.token = param_str(&c, "token");
    }

    /// Logs in with a token as the JSON wire hands it out (standard base64): over gRPC the
    /// secret is its raw bytes.
    pub async fn login_token(&mut self, token: &str) {
        use base64::Engine as _;
        let id = self.id();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(token)
            .expect("tokens are base64");
        self.send(C::Login(pbx::ClientLogin {
            id: id.clone(),
            scheme: "token".into(),
            secret: raw,
            cred: Vec::new(),
        }));
        let c = self.ctrl_for(&id).await;
        assert_eq!(c.code, 200, "{}: token login answered {c:?}", self.name);
        self.uid = param_str(&c, "user");
    }

    /// `{sub}` (with `get what` when given); returns the sub's ctrl.
    pub async fn sub(&mut self, topic: &str, what: Option<&str>) -> pbx::ServerCtrl {
        let id = self.id();
        self.send(C::Sub(pbx::ClientSub {
            id: id.clone(),
            topic: topic.into(),
            set_query: None,
            get_query: what.map(|w| pbx::GetQuery {
                what: w.into(),
                ..Default::default()
            }),
        }));
        let c = self.ctrl_for(&id).await;
        assert_eq!(c.code, 200, "{}: sub {topic} answered {c:?}", self.name);
        c
    }

    /// Publishes JSON content and waits for the 202; returns the seq.
    pub async fn publish(&mut self, topic: &str, content: Value) -> i64 {
        let id = self.id();
        self.send(C::Pub(pbx::ClientPub {
            id: id.clone(),
            topic: topic.into(),
            content: content.to_string().into_bytes(),
            ..Default::default()
        }));
        let c = self.ctrl_for(&id).await;
        assert_eq!(c.code, 202, "{}: pub answered {c:?}", self.name);
        param(&c, "seq").as_i64().expect("params.seq")
    }

    /// `{leave}`; asserts 200.
    pub async fn leave(&mut self, topic: &str) {
        let id = self.id();
        self.send(C::Leave(pbx::ClientLeave {
            id: id.clone(),
            topic: topic.into(),
            unsub: false,
        }));
        let c = self.ctrl_for(&id).await;
        assert_eq!(c.code, 200, "{}: leave answered {c:?}", self.name);
    }

    /// Half-closes the client's side, as a client ending its session does.
    pub fn end(&mut self) {
        self.send.send_data(Bytes::new(), true).expect("half-close");
    }

    /// Resets the stream mid-session.
    pub fn reset(&mut self) {
        self.send.send_reset(h2::Reason::CANCEL);
    }
}

/// A ctrl param: JSON bytes on this wire.
pub fn param(c: &pbx::ServerCtrl, key: &str) -> Value {
    let b = c
        .params
        .get(key)
        .unwrap_or_else(|| panic!("no params.{key} in {c:?}"));
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("params.{key} is not JSON ({e}): {c:?}"))
}

/// A ctrl param that is a string.
pub fn param_str(c: &pbx::ServerCtrl, key: &str) -> String {
    param(c, key)
        .as_str()
        .unwrap_or_else(|| panic!("params.{key} is not a string: {c:?}"))
        .to_owned()
}

/// JSON content bytes as a value.
pub fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b:?}"))
}

/// A `{data}` with this content.
pub fn is_data_with(m: &S, content: &Value) -> bool {
    matches!(m, S::Data(d) if json_of(&d.content) == *content)
}

/// A `{pres}` of this kind about `src`.
pub fn is_pres(m: &S, what: pbx::server_pres::What, src: &str) -> bool {
    matches!(m, S::Pres(p) if p.what == what as i32 && p.src == src)
}
