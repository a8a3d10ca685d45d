//! Test harness: talks to the real `coretalk` binary (the process itself is `process.rs`)
//! over real sockets (WebSocket clients, plain HTTP for `/debug/vars`; the long-poll and gRPC
//! clients are in `clients/`), with bounded waits only.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use crate::names::{b64, home_shard, unique_login};
pub use crate::process::Server;
pub use crate::stores::{create_database, embedded_store, postgres_base};

/// The demo API key every official client uses; valid under the default salt.
pub const API_KEY: &str = "AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K";

/// Longest wait for one expected frame before the test fails (debug builds on a busy box).
pub const RECV_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends one raw HTTP request and reads the response until the server closes.
pub fn http_raw(port: u16, request: &str) -> (u16, String) {
    crate::record::save("http", request.as_bytes());
    let mut s = StdTcpStream::connect(("127.0.0.1", port)).expect("connect for HTTP");
    s.set_read_timeout(Some(RECV_TIMEOUT))
        .expect("read timeout");
    s.write_all(request.as_bytes()).expect("write HTTP request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read HTTP response");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, body.to_owned())
}

// ---- frame inspection ----

/// The `{ctrl}` body, if this is one.
pub fn ctrl(v: &Value) -> Option<&Value> {
    v.get("ctrl")
}

/// The ctrl code, if this is a ctrl.
pub fn code(v: &Value) -> Option<u64> {
    ctrl(v).and_then(|c| c["code"].as_u64())
}

/// True for a `{ctrl}` with this id.
pub fn is_ctrl_for(v: &Value, id: &str) -> bool {
    ctrl(v).is_some_and(|c| c["id"] == id)
}

/// The kind of a server message (`ctrl`, `data`, `meta`, `pres`, `info`).
pub fn kind(v: &Value) -> &str {
    v.as_object()
        .and_then(|o| o.keys().next())
        .map(String::as_str)
        .unwrap_or("")
}

/// The `{data}` body, if this is one.
pub fn data(v: &Value) -> Option<&Value> {
    v.get("data")
}

/// Whether a frame carries the request id `id` (ctrl or meta).
pub fn carries_id(v: &Value, id: &str) -> bool {
    ["ctrl", "meta"]
        .iter()
        .any(|k| v.get(*k).is_some_and(|b| b["id"] == id))
}

/// Number of reply frames carrying the id that the `what` words of a get produce.
pub fn parts_of(what: &str) -> usize {
    what.split_whitespace()
        .filter(|w| {
            matches!(
                *w,
                "desc" | "sub" | "data" | "del" | "tags" | "cred" | "aux"
            )
        })
        .count()
}

/// A WebSocket client session.
pub struct Client {
    pub(crate) ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub name: String,
    next: u64,
    /// Frames read ahead and not yet consumed.
    pending: VecDeque<Value>,
    pub uid: String,
    pub token: String,
}

impl Client {
    /// Opens a WebSocket to the server (no `{hi}` yet).
    pub async fn connect(server: &Server, name: &str) -> Client {
        Client::connect_url(&server.ws_url(), name).await
    }

    /// Opens a WebSocket to `url`.
    pub async fn connect_url(url: &str, name: &str) -> Client {
        let (ws, _) = tokio::time::timeout(RECV_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap_or_else(|_| panic!("{name}: WebSocket connect timed out"))
            .unwrap_or_else(|e| panic!("{name}: WebSocket connect failed: {e}"));
        Client::from_ws(ws, name)
    }

    /// Wraps an open WebSocket (one made over a socket with the test's own options).
    pub fn from_ws(ws: WebSocketStream<MaybeTlsStream<TcpStream>>, name: &str) -> Client {
        let (next, pending, uid, token) = (0, VecDeque::new(), String::new(), String::new());
        let name = name.to_owned();
        Client {
            ws,
            name,
            next,
            pending,
            uid,
            token,
        }
    }

    /// Connects, says hi and logs in with a token.
    pub async fn login(server: &Server, name: &str, token: &str) -> Client {
        Client::login_url(&server.ws_url(), name, token).await
    }

    /// Connects to `url`, says hi and logs in with a token.
    pub async fn login_url(url: &str, name: &str, token: &str) -> Client {
        let mut c = Client::connect_url(url, name).await;
        c.hi().await;
        c.login_token(token).await;
        c
    }

    /// A fresh request id.
    pub fn id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.name, self.next)
    }

    /// Sends one JSON message as a text frame.
    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Sends a raw text frame (recorded for the fuzz corpus when asked, `record.rs`).
    pub async fn send_text(&mut self, text: &str) {
        crate::record::save("json", text.as_bytes());
        let name = self.name.clone();
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("{name}: send failed: {e}"));
    }

    /// Sends a raw binary frame; `Err` when the connection is gone.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        self.ws
            .send(Message::binary(bytes))
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends a text frame; `Err` when the connection is gone.
    pub async fn try_send_text(&mut self, text: &str) -> Result<(), String> {
        crate::record::save("json", text.as_bytes());
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next text/binary frame, `None` when the connection closed (close frame, EOF or
    /// error). Fails the test when nothing arrives within [`RECV_TIMEOUT`].
    pub async fn next_frame(&mut self) -> Option<String> {
        loop {
            let next = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("{}: nothing received within {RECV_TIMEOUT:?}", self.name)
                });
            match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(Message::Text(t))) => return Some(t.as_str().to_owned()),
                Some(Ok(Message::Binary(b))) => {
                    return Some(String::from_utf8_lossy(&b).into_owned())
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next raw text frame (not parsed); fails the test on close or timeout.
    pub async fn recv_text(&mut self) -> String {
        if let Some(v) = self.pending.pop_front() {
            return v.to_string();
        }
        match self.next_frame().await {
            Some(t) => t,
            None => panic!("{}: connection closed while waiting for a frame", self.name),
        }
    }

    /// The next JSON message; fails the test on close, timeout or non-JSON.
    pub async fn recv(&mut self) -> Value {
        if let Some(v) = self.pending.pop_front() {
            return v;
        }
        let t = self.recv_text().await;
        serde_json::from_str(&t)
            .unwrap_or_else(|e| panic!("{}: frame is not JSON ({e}): {t:?}", self.name))
    }

    /// Reads until `pred` matches; returns the match (earlier frames are dropped).
    pub async fn recv_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let v = self.recv().await;
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no frame matching {what} within {RECV_TIMEOUT:?}",
                self.name
            );
        }
    }

    /// Reads until `pred` matches; returns every frame read, the match last.
    pub async fn collect_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut out = Vec::new();
        loop {
            let v = self.recv().await;
            let done = pred(&v);
            out.push(v);
            if done {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no frame matching {what} within {RECV_TIMEOUT:?}",
                self.name
            );
        }
    }

    /// Waits for the `{ctrl}` with this id.
    pub async fn ctrl_for(&mut self, id: &str) -> Value {
        let v = self
            .recv_until(&format!("ctrl id {id}"), |v| is_ctrl_for(v, id))
            .await;
        v["ctrl"].clone()
    }

    /// Reads until the connection closes; fails the test if it stays open past the timeout.
    /// Returns the frames that came before the close.
    pub async fn expect_closed(&mut self) -> Vec<String> {
        let mut before = Vec::new();
        while let Some(t) = self.next_frame().await {
            before.push(t);
        }
        before
    }

    /// `{hi}`; asserts `ctrl 201`.
    pub async fn hi(&mut self) -> Value {
        let id = self.id();
        self.send(json!({"hi": {"id": id, "ver": "0.25.3", "ua": "coretalk-it/1.0"}}))
            .await;
        let c = self.ctrl_for(&id).await;
        assert_eq!(c["code"], 201, "{}: hi answered {c}", self.name);
        c
    }

    /// Creates an account with `login` (password `login`-pw) and logs in; returns (uid, token).
    pub async fn sign_up(&mut self, login: &str) -> (String, String) {
        let id = self.id();
        let secret = b64(&format!("{login}:{login}-pw"));
        self.send(json!({"acc": {"id": id, "user": "new", "scheme": "basic", "secret": secret, "login": true,
            "desc": {"public": {"fn": login}}}}))
            .await;
        let c = self.ctrl_for(&id).await;
        assert_eq!(
            c["code"], 200,
            "{}: sign-up of {login} answered {c}",
            self.name
        );
        self.uid = c["params"]["user"]
            .as_str()
            .expect("params.user")
            .to_owned();
        self.token = c["params"]["token"]
            .as_str()
            .expect("params.token")
            .to_owned();
        (self.uid.clone(), self.token.clone())
    }

    /// `{login scheme:token}`; asserts 200 and returns the uid.
    pub async fn login_token(&mut self, token: &str) -> String {
        let id = self.id();
        self.send(json!({"login": {"id": id, "scheme": "token", "secret": token}}))
            .await;
        let c = self.ctrl_for(&id).await;
        assert_eq!(c["code"], 200, "{}: token login answered {c}", self.name);
        self.uid = c["params"]["user"]
            .as_str()
            .expect("params.user")
            .to_owned();
        self.token = token.to_owned();
        self.uid.clone()
    }

    /// Sends a request carrying `id` and collects frames until `parts` frames carrying that id
    /// have arrived (or an error ctrl with it). Every frame read is returned, in order.
    pub async fn request(&mut self, msg: Value, id: &str, parts: usize) -> Vec<Value> {
        self.send(msg).await;
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut out = Vec::new();
        let mut seen = 0;
        loop {
            let v = self.recv().await;
            let mine = carries_id(&v, id);
            let error = mine && code(&v).is_some_and(|c| c >= 300);
            out.push(v);
            if mine {
                seen += 1;
                if error || seen >= parts {
                    return out;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: incomplete reply to {id} within {RECV_TIMEOUT:?}",
                self.name
            );
        }
    }

    /// `{sub}` with an optional `get` (what words and `data` options); returns every frame up
    /// to the last part of the reply.
    pub async fn sub_get(
        &mut self,
        topic: &str,
        what: Option<&str>,
        data_opts: Option<Value>,
    ) -> Vec<Value> {
        let id = self.id();
        let mut sub = json!({"id": id, "topic": topic});
        if let Some(w) = what {
            sub["get"] = json!({"what": w});
            if let Some(d) = data_opts {
                sub["get"]["data"] = d;
            }
        }
        self.request(
            json!({ "sub": sub }),
            &id,
            1 + what.map(parts_of).unwrap_or(0),
        )
        .await
    }

    /// `{sub}` without get; asserts 200 and returns the ctrl.
    pub async fn sub(&mut self, topic: &str) -> Value {
        let frames = self.sub_get(topic, None, None).await;
        let c = frames.last().expect("reply")["ctrl"].clone();
        assert_eq!(c["code"], 200, "{}: sub {topic} answered {c}", self.name);
        c
    }

    /// `{sub topic:"new"}`; returns the new group's name.
    pub async fn create_group(&mut self) -> String {
        let c = self.sub("new").await;
        assert_eq!(
            c["params"]["tmpname"], "new",
            "{}: creation reply {c}",
            self.name
        );
        c["topic"]
            .as_str()
            .expect("topic of the creation reply")
            .to_owned()
    }

    /// `{get}`; returns every frame up to the last part of the reply.
    pub async fn get(&mut self, topic: &str, what: &str, data_opts: Option<Value>) -> Vec<Value> {
        let id = self.id();
        let mut get = json!({"id": id, "topic": topic, "what": what});
        if let Some(d) = data_opts {
            get["data"] = d;
        }
        self.request(json!({ "get": get }), &id, parts_of(what).max(1))
            .await
    }

    /// `{leave}`; asserts 200.
    pub async fn leave(&mut self, topic: &str) {
        let id = self.id();
        self.send(json!({"leave": {"id": id, "topic": topic}}))
            .await;
        let c = self.ctrl_for(&id).await;
        assert_eq!(c["code"], 200, "{}: leave {topic} answered {c}", self.name);
    }

    /// Sends `{pub}` with an id and returns the id (the ack is not awaited).
    pub async fn publish_nowait(&mut self, topic: &str, content: Value, noecho: bool) -> String {
        let id = self.id();
        let mut p = json!({"id": id, "topic": topic, "content": content});
        if noecho {
            p["noecho"] = json!(true);
        }
        self.send(json!({ "pub": p })).await;
        id
    }

    /// Publishes and waits for `ctrl 202`; returns the seq. Frames before the ack are dropped.
    pub async fn publish(&mut self, topic: &str, content: Value) -> u64 {
        let id = self.publish_nowait(topic, content, false).await;
        let c = self.ctrl_for(&id).await;
        assert_eq!(c["code"], 202, "{}: pub answered {c}", self.name);
        c["params"]["seq"].as_u64().expect("params.seq")
    }

    /// Sends `{note}`.
    pub async fn note(&mut self, topic: &str, what: &str, seq: u64) {
        self.send(json!({"note": {"topic": topic, "what": what, "seq": seq}}))
            .await;
    }

    /// Closes the WebSocket politely and waits for the server's close (bounded).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(RECV_TIMEOUT, async {
            while self.ws.next().await.is_some() {}
        })
        .await;
    }

    /// Drops the TCP connection without a close handshake.
    pub fn drop_abruptly(self) {
        drop(self);
    }
}
