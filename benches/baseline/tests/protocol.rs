//! The baseline against real sockets: the harness's Tinode subset (hi, acc, login by basic and
//! token, sub me / new / grp / usr, pub with and without noecho, leave, malformed) and `/echo`.
//!
//! Starts the built binary on 127.0.0.1:0, reads the port from its first stdout line, and kills
//! it at the end. Every wait is bounded.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coretalk-baseline"))
            .args(["--listen", "127.0.0.1:0", "--threads", "2"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start coretalk-baseline");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("coretalk-baseline listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, addr }
    }

    async fn ws(&self, path: &str) -> Ws {
        let url = format!("ws://{}{path}", self.addr);
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .expect("connect in time")
        .expect("connect");
        ws
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).expect("json");
        }
    }
}

/// Nothing arrives within a short wait.
async fn silent(ws: &mut Ws) {
    let r = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
    assert!(r.is_err(), "unexpected frame {r:?}");
}

/// hi + acc (new user, login) on a fresh connection; returns (ws, user, token).
async fn signed_up(srv: &Server, login: &str) -> (Ws, String, String) {
    let mut ws = srv.ws("/v0/channels?apikey=ignored").await;
    send(&mut ws, json!({"hi": {"id": "1", "ver": "0.25"}})).await;
    let hi = recv(&mut ws).await;
    assert_eq!(hi["ctrl"]["code"], 201);
    assert_eq!(hi["ctrl"]["params"]["ver"], "0.25");
    assert_eq!(hi["ctrl"]["id"], "1");
    let secret = base64_std(&format!("{login}:secret"));
    send(
        &mut ws,
        json!({"acc": {"id": "2", "user": "new1", "scheme": "basic", "secret": secret, "login": true}}),
    )
    .await;
    let acc = recv(&mut ws).await;
    assert_eq!(acc["ctrl"]["code"], 200, "{acc}");
    let p = &acc["ctrl"]["params"];
    let user = p["user"].as_str().expect("user").to_owned();
    assert!(user.starts_with("usr") && user.len() == 14, "{user}");
    assert_eq!(p["authlvl"], "auth");
    assert!(p["expires"].as_str().expect("expires").ends_with('Z'));
    let token = p["token"].as_str().expect("token").to_owned();
    send(&mut ws, json!({"sub": {"id": "3", "topic": "me"}})).await;
    let me = recv(&mut ws).await;
    assert_eq!(
        (me["ctrl"]["code"].clone(), me["ctrl"]["topic"].clone()),
        (json!(200), json!("me"))
    );
    (ws, user, token)
}

fn base64_std(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn group_fanout_with_and_without_noecho() {
    let srv = Server::start();
    let (mut a, _ua, _) = signed_up(&srv, "alice").await;
    let (mut b, ub, _) = signed_up(&srv, "bob").await;
    send(&mut a, json!({"sub": {"id": "4", "topic": "newG1"}})).await;
    let created = recv(&mut a).await;
    assert_eq!(created["ctrl"]["code"], 200);
    assert_eq!(created["ctrl"]["params"]["tmpname"], "newG1");
    let grp = created["ctrl"]["topic"].as_str().expect("topic").to_owned();
    assert!(grp.starts_with("grp") && grp.len() == 14, "{grp}");
    send(&mut b, json!({"sub": {"id": "5", "topic": grp}})).await;
    assert_eq!(recv(&mut b).await["ctrl"]["code"], 200);

    send(&mut b, json!({"pub": {"id": "6", "topic": grp, "noecho": true, "content": {"txt": "hi", "n": [1, 2]}}})).await;
    let ack = recv(&mut b).await;
    assert_eq!(
        (
            ack["ctrl"]["code"].clone(),
            ack["ctrl"]["params"]["seq"].clone()
        ),
        (json!(202), json!(1))
    );
    let d = recv(&mut a).await;
    assert_eq!(d["data"]["topic"], grp.as_str());
    assert_eq!(d["data"]["from"], ub.as_str());
    assert_eq!(d["data"]["seq"], 1);
    assert_eq!(d["data"]["content"], json!({"txt": "hi", "n": [1, 2]}));
    silent(&mut b).await;

    // Without noecho the publisher gets its ack, then its own copy.
    send(
        &mut a,
        json!({"pub": {"id": "7", "topic": grp, "content": "x"}}),
    )
    .await;
    assert_eq!(recv(&mut a).await["ctrl"]["code"], 202);
    assert_eq!(recv(&mut a).await["data"]["seq"], 2);
    assert_eq!(recv(&mut b).await["data"]["seq"], 2);

    send(&mut b, json!({"leave": {"id": "8", "topic": grp}})).await;
    let left = recv(&mut b).await;
    assert_eq!(
        (left["ctrl"]["code"].clone(), left["ctrl"]["topic"].clone()),
        (json!(200), json!(grp))
    );
    send(
        &mut a,
        json!({"pub": {"id": "9", "topic": grp, "noecho": true, "content": "y"}}),
    )
    .await;
    assert_eq!(recv(&mut a).await["ctrl"]["code"], 202);
    silent(&mut b).await;
    // Publishing to a topic one is not attached to is refused.
    send(
        &mut b,
        json!({"pub": {"id": "10", "topic": grp, "content": "z"}}),
    )
    .await;
    assert_eq!(recv(&mut b).await["ctrl"]["code"], 409);
}

#[tokio::test]
async fn p2p_readers_see_the_other_user_and_tokens_log_in_again() {
    let srv = Server::start();
    let (mut a, ua, token_a) = signed_up(&srv, "carol").await;
    let (mut b, ub, _) = signed_up(&srv, "dave").await;
    send(&mut a, json!({"sub": {"id": "4", "topic": ub}})).await;
    let c = recv(&mut a).await;
    assert_eq!(
        (c["ctrl"]["code"].clone(), c["ctrl"]["topic"].clone()),
        (json!(200), json!(ub))
    );
    send(&mut b, json!({"sub": {"id": "5", "topic": ua}})).await;
    assert_eq!(recv(&mut b).await["ctrl"]["code"], 200);
    send(
        &mut a,
        json!({"pub": {"id": "6", "topic": ub, "content": "hello"}}),
    )
    .await;
    let ack = recv(&mut a).await;
    assert_eq!(
        (ack["ctrl"]["code"].clone(), ack["ctrl"]["topic"].clone()),
        (json!(202), json!(ub))
    );
    let echo = recv(&mut a).await;
    assert_eq!(echo["data"]["topic"], ub.as_str());
    let got = recv(&mut b).await;
    assert_eq!(got["data"]["topic"], ua.as_str());
    assert_eq!(got["data"]["from"], ua.as_str());

    // A token names the same user on a new connection; a bad one is refused.
    let mut a2 = srv.ws("/v0/channels").await;
    send(
        &mut a2,
        json!({"login": {"id": "1", "scheme": "token", "secret": token_a}}),
    )
    .await;
    let l = recv(&mut a2).await;
    assert_eq!(
        (
            l["ctrl"]["code"].clone(),
            l["ctrl"]["params"]["user"].clone()
        ),
        (json!(200), json!(ua))
    );
    send(
        &mut a2,
        json!({"login": {"id": "2", "scheme": "token", "secret": "AAAA"}}),
    )
    .await;
    assert_eq!(recv(&mut a2).await["ctrl"]["code"], 401);
    // basic login for an existing login gives the same user.
    let secret = base64_std("carol:whatever");
    send(
        &mut a2,
        json!({"login": {"id": "3", "scheme": "basic", "secret": secret}}),
    )
    .await;
    assert_eq!(recv(&mut a2).await["ctrl"]["params"]["user"], ua.as_str());
}

#[tokio::test]
async fn malformed_unknown_and_unauthenticated_requests() {
    let srv = Server::start();
    let mut ws = srv.ws("/v0/channels").await;
    send(&mut ws, json!({"note": {"topic": "x", "what": "kp"}})).await;
    assert_eq!(recv(&mut ws).await["ctrl"]["code"], 400);
    ws.send(Message::Text("not json".into()))
        .await
        .expect("send");
    let r = recv(&mut ws).await;
    assert_eq!(
        (r["ctrl"]["code"].clone(), r["ctrl"]["text"].clone()),
        (json!(400), json!("malformed"))
    );
    send(&mut ws, json!({"sub": {"id": "1", "topic": "me"}})).await;
    assert_eq!(recv(&mut ws).await["ctrl"]["code"], 401);
    send(
        &mut ws,
        json!({"sub": {"id": "2", "topic": "grpNoSuchTopic"}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["ctrl"]["code"], 401);
}

#[tokio::test]
async fn echo_returns_every_frame() {
    let srv = Server::start();
    let mut ws = srv.ws("/echo").await;
    let big = "x".repeat(1024);
    for i in 0..50 {
        ws.feed(Message::Text(format!("{i}").into()))
            .await
            .expect("feed");
    }
    ws.feed(Message::Binary(big.clone().into_bytes().into()))
        .await
        .expect("feed");
    ws.flush().await.expect("flush");
    for i in 0..50 {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("in time");
        assert_eq!(
            m.expect("open").expect("frame"),
            Message::Text(format!("{i}").into())
        );
    }
    let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("in time");
    assert_eq!(
        m.expect("open").expect("frame"),
        Message::Binary(big.into_bytes().into())
    );
    // Other paths are refused at the handshake.
    let url = format!("ws://{}/nope", srv.addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}
