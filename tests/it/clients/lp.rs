//! A long-poll client for `/v0/channels/lp`: raw HTTP/1.1 requests on fresh connections (as a
//! browser's XHRs land on any shard), a session created by an empty POST, sends answered by an
//! empty 200 and polls answered by the next message or, after the hold time, by nothing.

use base64::Engine as _;
use serde_json::{json, Value};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Server, API_KEY, RECV_TIMEOUT};

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends one raw request (a fresh connection each time) and reads the answer to the end.
pub async fn raw(port: u16, request: Vec<u8>) -> Resp {
    crate::record::save("lp", &request);
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(&request).await.expect("write request");
    let mut buf = Vec::new();
    tokio::time::timeout(RECV_TIMEOUT, s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .expect("read answer");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    Resp {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `POST /v0/channels/lp?apikey=KEY{query}` with `body` (a poll when empty).
pub async fn post(port: u16, query: &str, body: &[u8]) -> Resp {
    let mut req = format!(
        "POST /v0/channels/lp?apikey={API_KEY}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw(port, req).await
}

/// A long-poll client.
pub struct Lp {
    port: u16,
    pub sid: String,
    next_id: u32,
}

impl Lp {
    /// Creates a session (201 with `params.sid`, echoing the form `id`).
    pub async fn create(server: &Server) -> Lp {
        let r = post(server.port(), "&id=c1", b"").await;
        assert_eq!(r.status, 201, "create: {r:?}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let v = r.json();
        assert_eq!(v["ctrl"]["code"], 201, "{v}");
        assert_eq!(v["ctrl"]["text"], "created");
        assert_eq!(v["ctrl"]["id"], "c1");
        let sid = v["ctrl"]["params"]["sid"].as_str().expect("params.sid");
        // The session handle; a cluster node adds `.` and its name.
        assert!(sid.len() == 22 || sid.as_bytes()[22] == b'.', "{sid}");
        Lp {
            port: server.port(),
            sid: sid.to_owned(),
            next_id: 0,
        }
    }

    /// The same session, its requests sent to `server` (another cluster node).
    pub fn via(&self, server: &Server) -> Lp {
        Lp {
            port: server.port(),
            sid: self.sid.clone(),
            next_id: self.next_id + 1000,
        }
    }

    /// The shard the session lives on (the top 16 bits of its id).
    pub fn home(&self) -> usize {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.sid[..22])
            .expect("sid is base64url");
        let id = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        (id >> 48) as usize
    }

    pub fn id(&mut self) -> String {
        self.next_id += 1;
        format!("lp{}", self.next_id)
    }

    /// Sends one message; asserts 200 with an empty body.
    pub async fn send(&self, v: Value) {
        let r = self.send_raw(v.to_string().as_bytes()).await;
        assert_eq!(r.status, 200, "send {v}: {r:?}");
        assert_eq!(r.body, "", "a send answers an empty body");
    }

    pub async fn send_raw(&self, body: &[u8]) -> Resp {
        post(self.port, &format!("&sid={}", self.sid), body).await
    }

    /// One poll.
    pub async fn poll(&self) -> Resp {
        post(self.port, &format!("&sid={}", self.sid), b"").await
    }

    /// Polls until a message matching `pred` arrives; returns every message read, in order.
    pub async fn poll_until(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut got = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no {what} in {got:?}");
            let r = self.poll().await;
            assert_eq!(r.status, 200, "poll for {what}: {r:?} after {got:?}");
            if r.body.is_empty() {
                continue;
            }
            let v = r.json();
            let done = pred(&v);
            got.push(v);
            if done {
                return got;
            }
        }
    }

    /// Sends `msg` (with a fresh id) and polls until its `{ctrl}` arrives; returns it.
    pub async fn request(&mut self, mut msg: Value) -> Value {
        let id = self.id();
        let (_, body) = msg
            .as_object_mut()
            .and_then(|m| m.iter_mut().next())
            .expect("one payload");
        body["id"] = json!(id);
        self.send(msg).await;
        let got = self
            .poll_until(&format!("ctrl {id}"), |v| v["ctrl"]["id"] == json!(id))
            .await;
        got.last().expect("the ctrl")["ctrl"].clone()
    }
}

/// Polls without pause in a background task, as a browser does, so the session stays attached
/// however long the test is busy elsewhere; the messages come out in order.
pub struct LpFeed {
    name: String,
    rx: tokio::sync::mpsc::UnboundedReceiver<Resp>,
    task: tokio::task::JoinHandle<()>,
}

impl LpFeed {
    /// Starts polling session `lp`.
    pub fn start(lp: &Lp, name: &str) -> LpFeed {
        let (port, query) = (lp.port, format!("&sid={}", lp.sid));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let r = post(port, &query, b"").await;
                let last = r.status != 200;
                if (last || !r.body.is_empty()) && tx.send(r).is_err() {
                    return;
                }
                if last {
                    return;
                }
            }
        });
        LpFeed {
            name: name.to_owned(),
            rx,
            task,
        }
    }

    /// The next message; fails the test when none comes within [`RECV_TIMEOUT`] or the
    /// session ended (a poll answered other than 200).
    pub async fn next(&mut self) -> Value {
        let r = tokio::time::timeout(RECV_TIMEOUT, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: nothing polled within {RECV_TIMEOUT:?}", self.name))
            .unwrap_or_else(|| panic!("{}: the poller failed", self.name));
        assert_eq!(r.status, 200, "{}: poll answered {r:?}", self.name);
        r.json()
    }

    /// Stops polling (a poll in flight is dropped); the session expires
    /// `session.detached_idle_ms` after its last poll let go of it.
    pub fn stop(self) {
        self.task.abort();
    }
}
