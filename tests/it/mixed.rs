//! One user on all three transports at once (a WebSocket, a long-poll and a gRPC session,
//! logged in by sign-up, basic and token), with a second user watching: the three join one
//! group, each one's messages reach the other two and the second user with the same seq and
//! content, the user's own `me` sessions see `pres acs` and `pres msg`, and the second user
//! sees the first `on` once and `off` only after the last of the three sessions ended (WebSocket
//! closed, long-poll session expired, gRPC stream ended), both in the group and on `me`.

use std::time::{Duration, Instant};

use coretalk::proto::pb::pbx;
use pbx::client_msg::Message as C;
use pbx::server_msg::Message as S;
use serde_json::{json, Map, Value};

use crate::clients::grpc::{json_of, Grpc};
use crate::clients::lp::{Lp, LpFeed};
use crate::support::{b64, unique_login, Client, Server, RECV_TIMEOUT};

/// Short timeouts so that expiry and presence linger take a second or so: a long-poll session
/// expires 3 s after its last poll, a poll is held 1 s, `me` lingers 1 s after its last session.
const CONFIG: &str = "[session]\ndetached_idle_ms = 3000\n\n[longpoll]\nhold_ms = 1000\n\n\
                      [topic]\nidle_unload_ms = 1000\n";

/// `topic.idle_unload_ms` above: how long a user stays online after its last `me` session.
const LINGER: Duration = Duration::from_millis(1000);

/// How one session talks to the server.
enum Transport {
    Ws(Box<Client>),
    Lp(Lp, LpFeed),
    Grpc(Grpc),
}

/// One session of any transport. Server messages come out as JSON in the WebSocket shape (gRPC
/// ones converted), and every one is kept, so that one assertion covers all three transports
/// and counts can be checked over the whole test.
struct Side {
    name: &'static str,
    t: Transport,
    log: Vec<Value>,
    next_id: u32,
}

impl Side {
    fn new(name: &'static str, t: Transport) -> Side {
        Side {
            name,
            t,
            log: Vec::new(),
            next_id: 0,
        }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.name, self.next_id)
    }

    /// Reads the next server message into the log.
    async fn read(&mut self) -> Value {
        let v = match &mut self.t {
            Transport::Ws(c) => c.recv().await,
            Transport::Lp(_, feed) => feed.next().await,
            Transport::Grpc(g) => grpc_json(&g.recv().await),
        };
        self.log.push(v.clone());
        v
    }

    /// The first message ever received that matches `pred`, reading more (bounded) until one
    /// does.
    async fn find(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.log.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let v = self.read().await;
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {what} within {RECV_TIMEOUT:?}; got {:?}",
                self.name,
                self.log
            );
        }
    }

    /// How many messages received so far match `pred`.
    fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.log.iter().filter(|v| pred(v)).count()
    }

    /// Sends `{sub}` or `{pub}` (JSON shape, with `id`) on any transport.
    async fn send(&mut self, msg: &Value) {
        match &mut self.t {
            Transport::Ws(c) => c.send(msg.clone()).await,
            Transport::Lp(lp, _) => lp.send(msg.clone()).await,
            Transport::Grpc(g) => {
                let (kind, b) = msg.as_object().and_then(|o| o.iter().next()).expect("one");
                let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
                g.send(match kind.as_str() {
                    "sub" => C::Sub(pbx::ClientSub {
                        id: s("id"),
                        topic: s("topic"),
                        ..Default::default()
                    }),
                    "pub" => C::Pub(pbx::ClientPub {
                        id: s("id"),
                        topic: s("topic"),
                        content: b["content"].to_string().into_bytes(),
                        ..Default::default()
                    }),
                    other => panic!("no gRPC form for {other}"),
                });
            }
        }
    }

    /// Sends a request and waits for its `{ctrl}`; asserts the code.
    async fn request(&mut self, kind: &str, mut body: Value, want: u64) -> Value {
        let id = self.id();
        body["id"] = json!(id);
        self.send(&json!({ kind: body })).await;
        let c = self
            .find(&format!("ctrl {id}"), |v| v["ctrl"]["id"] == id.as_str())
            .await;
        assert_eq!(
            c["ctrl"]["code"], want,
            "{}: {kind} answered {c}",
            self.name
        );
        c["ctrl"].clone()
    }

    async fn sub(&mut self, topic: &str) {
        self.request("sub", json!({ "topic": topic }), 200).await;
    }

    /// Publishes and returns the seq of the ack.
    async fn publish(&mut self, topic: &str, content: &Value) -> u64 {
        let c = self
            .request("pub", json!({"topic": topic, "content": content}), 202)
            .await;
        c["params"]["seq"].as_u64().expect("params.seq")
    }

    /// Ends the session the way its transport does: the WebSocket is closed, the long-poll
    /// session stops polling (and expires), the gRPC stream is half-closed and runs out.
    async fn end(self) {
        match self.t {
            Transport::Ws(c) => (*c).close().await,
            Transport::Lp(_, feed) => feed.stop(),
            Transport::Grpc(mut g) => {
                g.end();
                let deadline = Instant::now() + RECV_TIMEOUT;
                while g.next_msg().await.is_some() {
                    assert!(Instant::now() < deadline, "the ended stream keeps going");
                }
            }
        }
    }
}

/// A gRPC server message in the JSON shape of the other transports (the fields compared here).
fn grpc_json(m: &S) -> Value {
    match m {
        S::Ctrl(c) => {
            let params: Map<String, Value> = c
                .params
                .iter()
                .map(|(k, v)| (k.clone(), json_of(v)))
                .collect();
            json!({"ctrl": {"id": c.id, "topic": c.topic, "code": c.code, "text": c.text,
                "params": params}})
        }
        S::Data(d) => json!({"data": {"topic": d.topic, "from": d.from_user_id, "seq": d.seq_id,
            "content": json_of(&d.content)}}),
        S::Pres(p) => {
            let what = pbx::server_pres::What::try_from(p.what)
                .map(|w| w.as_str_name().to_lowercase())
                .unwrap_or_else(|_| p.what.to_string());
            let mut v = json!({"pres": {"topic": p.topic, "src": p.src, "what": what}});
            if p.seq_id != 0 {
                v["pres"]["seq"] = json!(p.seq_id);
            }
            v
        }
        S::Meta(m) => json!({"meta": {"id": m.id, "topic": m.topic}}),
        S::Info(i) => json!({"info": {"topic": i.topic, "from": i.from_user_id, "seq": i.seq_id}}),
    }
}

/// A `{pres}` on `topic` about `src` saying `what`.
fn is_pres(v: &Value, topic: &str, src: &str, what: &str) -> bool {
    let p = &v["pres"];
    p["topic"] == topic && p["src"] == src && p["what"] == what
}

/// A `{data}` on `topic` with this content.
fn is_data(v: &Value, topic: &str, content: &Value) -> bool {
    v["data"]["topic"] == topic && v["data"]["content"] == *content
}

/// Waits (bounded) until `/debug/vars` shows `sessions` live sessions and, since attachments
/// are counted by the topics (refreshed within a second), `attached` attachments.
async fn wait_sessions(server: &Server, sessions: u64, attached: u64, why: &str) {
    let (v, ok) = server
        .wait_vars(Duration::from_secs(30), |v| {
            v["LiveSessions"] == sessions && v["Attachments"] == attached
        })
        .await;
    assert!(
        ok,
        "{why}: want {sessions} sessions, {attached} attachments: {v}"
    );
}

/// The second user publishes and waits for the echo: every `{pres}` the group sent before it
/// processed this message is then in `b`'s log. Each of `others` receives it with the same seq.
async fn barrier(b: &mut Side, others: &mut [&mut Side], grp: &str, content: Value) {
    let seq = b.publish(grp, &content).await;
    for s in std::iter::once(b).chain(others.iter_mut().map(|s| &mut **s)) {
        let d = s
            .find("the barrier message", |v| is_data(v, grp, &content))
            .await;
        assert_eq!(d["data"]["seq"], seq, "{}: {d}", s.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_on_websocket_long_polling_and_grpc_at_once() {
    let t0 = Instant::now();
    let server = Server::start(2, CONFIG);

    // The user signs up over the WebSocket; the second user makes a P2P conversation with it
    // (so each is the other's contact on `me`) and a group, and lists its contacts (a contact
    // it has not listed yet shows no first `on`).
    let login = unique_login("mix");
    let mut ws = Client::connect(&server, "ws").await;
    ws.hi().await;
    let (uid, token) = ws.sign_up(&login).await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.hi().await;
    bob.sign_up(&unique_login("bob")).await;
    bob.sub("me").await;
    bob.sub(&uid).await;
    bob.leave(&uid).await;
    let grp = bob.create_group().await;
    bob.get("me", "sub", None).await;
    let mut b = Side::new("bob", Transport::Ws(Box::new(bob)));
    let mut ws = Side::new("ws", Transport::Ws(Box::new(ws)));

    // The long-poll session logs in with the password, the gRPC one with the token.
    let mut lp = Lp::create(&server).await;
    let hi = lp
        .request(json!({"hi": {"ver": "0.25.3", "ua": "it-lp/1.0"}}))
        .await;
    assert_eq!(hi["code"], 200, "{hi}");
    let secret = b64(&format!("{login}:{login}-pw"));
    let c = lp
        .request(json!({"login": {"scheme": "basic", "secret": secret}}))
        .await;
    assert_eq!(
        (c["code"].as_u64(), c["params"]["user"].as_str()),
        (Some(200), Some(uid.as_str())),
        "{c}"
    );
    let feed = LpFeed::start(&lp, "lp");
    let mut lp = Side::new("lp", Transport::Lp(lp, feed));
    let mut g = Grpc::connect(&server, "grpc").await;
    g.hi().await;
    g.login_token(&token).await;
    assert_eq!(g.uid, uid);
    let mut g = Side::new("grpc", Transport::Grpc(g));

    // All three attach to `me`: the second user sees the first `on` (counted at the end).
    for s in [&mut ws, &mut lp, &mut g] {
        s.sub("me").await;
    }
    b.find("the user on", |v| is_pres(v, "me", &uid, "on"))
        .await;

    // Invited to the group, every `me` session of the user hears of it; a message there
    // reaches them as `pres msg` while none of them is attached to the group.
    b.request(
        "set",
        json!({"topic": grp, "sub": {"user": uid, "mode": "JRWPS"}}),
        200,
    )
    .await;
    let first = json!("before they join");
    let seq1 = b.publish(&grp, &first).await;
    for s in [&mut ws, &mut lp, &mut g] {
        s.find("pres acs for the invitation", |v| {
            is_pres(v, "me", &grp, "acs")
        })
        .await;
        let m = s.find("pres msg", |v| is_pres(v, "me", &grp, "msg")).await;
        assert_eq!(m["pres"]["seq"], seq1, "{}: {m}", s.name);
    }

    // They join one by one; the second user sees the user `on` in the group.
    ws.sub(&grp).await;
    b.find("the user on in the group", |v| is_pres(v, &grp, &uid, "on"))
        .await;
    lp.sub(&grp).await;
    g.sub(&grp).await;

    // A message from each transport reaches the other two and the second user, with the seq
    // of its ack and the same content everywhere (the publisher gets its echo too).
    let contents = [
        ("ws", json!("from the WebSocket")),
        ("lp", json!({"txt": "from long polling", "n": 2})),
        (
            "grpc",
            json!({"txt": "from gRPC", "fmt": [{"at": 0, "len": 4, "tp": "ST"}]}),
        ),
    ];
    for (from, content) in &contents {
        let sides = [&mut ws, &mut lp, &mut g];
        let (mut publisher, rest): (Vec<_>, Vec<_>) =
            sides.into_iter().partition(|s| s.name == *from);
        let p = publisher.pop().expect("the publisher");
        let seq = p.publish(&grp, content).await;
        for s in std::iter::once(p)
            .chain(rest)
            .chain(std::iter::once(&mut b))
        {
            let d = s
                .find(&format!("the message from {from}"), |v| {
                    is_data(v, &grp, content)
                })
                .await;
            assert_eq!(d["data"]["seq"], seq, "{}: {d}", s.name);
            assert_eq!(d["data"]["from"], uid.as_str(), "{}: {d}", s.name);
        }
    }
    // The second user's message reaches all three too.
    barrier(
        &mut b,
        &mut [&mut ws, &mut lp, &mut g],
        &grp,
        json!("to all three"),
    )
    .await;
    // Attached sessions get `{data}`, not another `pres msg`.
    for s in [&ws, &lp, &g] {
        assert_eq!(
            s.count(|v| is_pres(v, "me", &grp, "msg")),
            1,
            "{}: {:?}",
            s.name,
            s.log
        );
    }

    // Sessions: bob, ws, lp, grpc; attachments: bob's me and group, three me and three group.
    wait_sessions(&server, 4, 8, "all attached").await;

    // End them one by one; each time the others still talk, and nobody sees the user go.
    ws.end().await;
    wait_sessions(&server, 3, 6, "the WebSocket closed").await;
    barrier(
        &mut b,
        &mut [&mut lp, &mut g],
        &grp,
        json!("after the WebSocket"),
    )
    .await;
    lp.end().await;
    wait_sessions(&server, 2, 4, "the long-poll session expired").await;
    barrier(&mut b, &mut [&mut g], &grp, json!("after long polling")).await;
    // A wrong `off` on `me` would come a linger after the session that wrongly caused it: give
    // it twice that to arrive (a window for something that must not happen, not a wait for
    // something that must), then flush the second user's stream with a message.
    tokio::time::sleep(2 * LINGER).await;
    barrier(&mut b, &mut [&mut g], &grp, json!("still one session")).await;
    let early_off = |v: &Value| v["pres"]["what"] == "off" && v["pres"]["src"] == uid.as_str();
    assert_eq!(b.count(early_off), 0, "off too early: {:?}", b.log);

    let ended = Instant::now();
    g.end().await;
    b.find("the user off in the group", |v| {
        is_pres(v, &grp, &uid, "off")
    })
    .await;
    b.find("the user off on me", |v| is_pres(v, "me", &uid, "off"))
        .await;
    let off_after = ended.elapsed();
    assert!(
        off_after >= LINGER * 9 / 10,
        "off on me after {off_after:?}, before the linger"
    );
    wait_sessions(&server, 1, 2, "the gRPC stream ended").await;

    // The second user saw the user `on` once and `off` once, in the group and on `me`.
    for topic in [grp.as_str(), "me"] {
        for what in ["on", "off"] {
            let n = b.count(|v| is_pres(v, topic, &uid, what));
            assert_eq!(n, 1, "{what} on {topic}: {:?}", b.log);
        }
    }
    eprintln!("mixed transports: {:?}", t0.elapsed());
}
