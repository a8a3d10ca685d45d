//! One client session against any target, whatever its protocol: open it (connect, handshake,
//! authenticate, personal subscription), join or create a topic, build a publish frame, and
//! read what arrives as protocol-neutral events (a delivery's payload, a publish ack, an
//! error). The workloads only speak to this module; the wire formats live in the submodules.

pub mod echo;
pub mod grpc;
pub mod lp;
pub mod mqtt;
pub mod nats;
pub mod tinode;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::cli::TargetKind;
use crate::msg::{Account, TargetSpec};
use crate::net::{resolve, ws_connect, Ws};
use tinode::Req;

/// A session's connection: a WebSocket, or a gRPC `MessageLoop` stream.
// One per long-lived session, never moved in bulk: the WebSocket variant stays unboxed.
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    Ws(Ws),
    Grpc(grpc::GrpcConn),
}

impl Conn {
    /// Sends one frame (gRPC: the frame's bytes are one encoded `pbx.ClientMsg`).
    pub async fn send(&mut self, m: Message) -> Result<()> {
        match self {
            Conn::Ws(w) => Ok(w.send(m).await?),
            Conn::Grpc(g) => g.send(&m.into_data()),
        }
    }

    /// Closes the session's connection (WebSocket close, or the end of the gRPC stream).
    pub async fn close(&mut self) {
        match self {
            Conn::Ws(w) => {
                let _ = w.close(None).await;
            }
            Conn::Grpc(g) => g.close(),
        }
    }
}

/// The sending half of a session during a measurement.
pub enum Sink {
    Ws(SplitSink<Ws, Message>),
    Grpc(grpc::GrpcSink),
}

impl Sink {
    pub async fn send(&mut self, m: Message) -> Result<()> {
        match self {
            Sink::Ws(w) => Ok(w.send(m).await?),
            Sink::Grpc(g) => g.send(&m.into_data()),
        }
    }
}

/// How long one set-up step may take before the session counts as failed.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// Tinode JSON over WebSocket.
    Tinode,
    /// Tinode protobuf over gRPC (`pbx.Node/MessageLoop`).
    TinodeGrpc,
    Nats,
    Mqtt,
    Echo,
}

impl Proto {
    /// Speaks Tinode (topics, `{sub}`, acks), whatever the wire.
    pub fn is_tinode(self) -> bool {
        matches!(self, Proto::Tinode | Proto::TinodeGrpc)
    }
}

/// What a reader reports.
pub enum Event<'a> {
    /// A delivered message's payload (stamp first).
    Delivery(&'a [u8]),
    /// A publish acknowledgement for the send scheduled at this time.
    Ack(u64),
    /// A frame that means something went wrong (kept verbatim for the report).
    Error(String),
    /// A frame the session must send back (NATS `PONG`).
    Reply(Message),
}

/// A connected, authenticated session before it is split for the measurement.
pub struct Session {
    pub conn: Conn,
    pub proto: Proto,
    pub run_id: String,
    /// The Tinode user id, or the login for NATS/MQTT.
    pub user: String,
    next_id: u64,
    nats: nats::Parser,
    mqtt: mqtt::Parser,
}

/// NATS subject / MQTT topic of a login's personal inbox.
pub fn personal(proto: Proto, run_id: &str, login: &str) -> String {
    match proto {
        Proto::Mqtt => format!("u/{run_id}/{login}"),
        _ => format!("u.{run_id}.{login}"),
    }
}

fn proto_of(t: &TargetSpec) -> Proto {
    match t.kind {
        TargetKind::Coretalk | TargetKind::Baseline if t.grpc_addr.is_some() => Proto::TinodeGrpc,
        TargetKind::Coretalk | TargetKind::Baseline | TargetKind::WsSol => Proto::Tinode,
        TargetKind::Nats => Proto::Nats,
        TargetKind::Mosquitto => Proto::Mqtt,
        TargetKind::HttpSol => Proto::Echo,
    }
}

fn bin(v: Vec<u8>) -> Message {
    Message::binary(v)
}

impl Session {
    /// Connects and does the protocol handshake only (Tinode `{hi}`, NATS `CONNECT`, MQTT
    /// `CONNECT` with `login` as client id).
    pub async fn connect(
        t: &TargetSpec,
        dst: SocketAddr,
        src: Option<IpAddr>,
        login: &str,
    ) -> Result<Session> {
        let proto = proto_of(t);
        let (path, subp) = match proto {
            Proto::Tinode | Proto::TinodeGrpc => (tinode::ws_path(), None),
            Proto::Nats => ("/".to_owned(), None),
            Proto::Mqtt => ("/".to_owned(), Some("mqtt")),
            Proto::Echo => ("/".to_owned(), None),
        };
        let conn = match (proto, &t.grpc_addr) {
            (Proto::TinodeGrpc, Some(g)) => {
                let g = resolve(g)?;
                Conn::Grpc(
                    tokio::time::timeout(STEP_TIMEOUT, grpc::GrpcConn::connect(g, src))
                        .await
                        .map_err(|_| anyhow!("gRPC connect timed out"))??,
                )
            }
            _ => Conn::Ws(
                tokio::time::timeout(STEP_TIMEOUT, ws_connect(dst, src, &path, subp))
                    .await
                    .map_err(|_| anyhow!("connect timed out"))??,
            ),
        };
        let mut s = Session {
            conn,
            proto,
            run_id: t.run_id.clone(),
            user: login.to_owned(),
            next_id: 0,
            nats: nats::Parser::default(),
            mqtt: mqtt::Parser::default(),
        };
        match proto {
            Proto::Tinode | Proto::TinodeGrpc => {
                let c = s.tinode_req(Req::Hi).await?;
                if c.code != 201 && c.code != 200 {
                    bail!("hi answered {} {}", c.code, c.text);
                }
            }
            Proto::Nats => {
                s.conn.send(bin(nats::connect())).await?;
                s.nats_wait_pong().await.context("NATS CONNECT")?;
            }
            Proto::Mqtt => {
                // Unique per connection: a reused client id makes the broker drop the older
                // connection (session takeover), and W2 logs in as the same account often.
                static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = format!("{login}-{}-{n}", std::process::id());
                s.conn.send(bin(mqtt::connect(&id))).await?;
                s.mqtt_wait(|e| matches!(e, mqtt::In::ConnAck(_)))
                    .await
                    .context("MQTT CONNECT")?;
            }
            Proto::Echo => {}
        }
        Ok(s)
    }

    /// Opens a raw echo connection at `path` (W0).
    pub async fn echo(dst: SocketAddr, src: Option<IpAddr>, path: &str) -> Result<Session> {
        let ws = tokio::time::timeout(STEP_TIMEOUT, ws_connect(dst, src, path, None))
            .await
            .map_err(|_| anyhow!("connect timed out"))??;
        Ok(Session {
            conn: Conn::Ws(ws),
            proto: Proto::Echo,
            run_id: String::new(),
            user: String::new(),
            next_id: 0,
            nats: nats::Parser::default(),
            mqtt: mqtt::Parser::default(),
        })
    }

    /// Connect, handshake, authenticate and subscribe to the personal topic: Tinode
    /// `{hi}` + token `{login}` + `{sub me}`; NATS/MQTT subscribe to the login's inbox.
    pub async fn open(
        t: &TargetSpec,
        dst: SocketAddr,
        src: Option<IpAddr>,
        acct: &Account,
    ) -> Result<Session> {
        let mut s = Session::connect(t, dst, src, &acct.login).await?;
        match s.proto {
            Proto::Tinode | Proto::TinodeGrpc => {
                s.login(acct).await?;
                s.join("me").await?;
            }
            Proto::Nats | Proto::Mqtt => {
                let p = personal(s.proto, &s.run_id, &acct.login);
                s.join(&p).await?;
            }
            Proto::Echo => {}
        }
        Ok(s)
    }

    /// Tinode token `{login}`, waiting for its `{ctrl 200}`.
    pub async fn login(&mut self, acct: &Account) -> Result<()> {
        let c = self.tinode_req(Req::LoginToken(&acct.token)).await?;
        if c.code != 200 {
            bail!("token login answered {} {}", c.code, c.text);
        }
        self.user = c.param("user").unwrap_or(&acct.user).to_owned();
        Ok(())
    }

    /// Drops the connection abruptly, without a goodbye: a TCP reset (SO_LINGER 0) when
    /// `reset`, else a plain close (FIN) with no WebSocket close frame.
    pub fn abort(self, reset: bool) {
        if let Conn::Ws(ws) = &self.conn {
            if reset {
                crate::net::set_reset_on_close(ws.get_ref());
            }
        }
    }

    /// Like [`Session::open`], but logs in with the account's login and password (the
    /// password every harness account is created with), so the server runs a bcrypt check.
    pub async fn open_basic(
        t: &TargetSpec,
        dst: SocketAddr,
        src: Option<IpAddr>,
        acct: &Account,
    ) -> Result<Session> {
        let mut s = Session::connect(t, dst, src, &acct.login).await?;
        if !matches!(s.proto, Proto::Tinode | Proto::TinodeGrpc) {
            bail!("basic login needs a Tinode target");
        }
        let req = Req::LoginBasic {
            login: &acct.login,
            password: crate::accounts::PASSWORD,
        };
        let c = s.tinode_req(req).await?;
        if c.code != 200 {
            bail!("basic login answered {} {}", c.code, c.text);
        }
        s.user = c.param("user").unwrap_or(&acct.user).to_owned();
        s.join("me").await?;
        Ok(s)
    }

    /// Creates an account with `{acc login:true}` on a fresh Tinode session; returns it with
    /// its user id and token.
    pub async fn create_account(
        t: &TargetSpec,
        dst: SocketAddr,
        src: Option<IpAddr>,
        login: &str,
        password: &str,
    ) -> Result<Account> {
        let mut s = Session::connect(t, dst, src, login).await?;
        let c = s.tinode_req(Req::AccNew { login, password }).await?;
        if c.code != 200 {
            bail!("acc answered {} {}", c.code, c.text);
        }
        let acct = Account {
            login: login.to_owned(),
            user: c
                .param("user")
                .ok_or_else(|| anyhow!("acc reply without params.user"))?
                .to_owned(),
            token: c
                .param("token")
                .ok_or_else(|| anyhow!("acc reply without params.token"))?
                .to_owned(),
        };
        s.conn.close().await;
        Ok(acct)
    }

    /// Subscribes to `topic` and waits until the server confirms; returns the topic's name
    /// as the server reports it.
    pub async fn join(&mut self, topic: &str) -> Result<String> {
        match self.proto {
            Proto::Tinode | Proto::TinodeGrpc => {
                let c = self.tinode_req(Req::Sub(topic)).await?;
                if c.code >= 300 && c.code != 304 {
                    bail!("sub {topic} answered {} {}", c.code, c.text);
                }
                Ok(c.topic.unwrap_or_else(|| topic.to_owned()))
            }
            Proto::Nats => {
                self.next_id += 1;
                self.conn.send(bin(nats::sub(topic, self.next_id))).await?;
                self.nats_wait_pong().await.context("NATS SUB")?;
                Ok(topic.to_owned())
            }
            Proto::Mqtt => {
                self.next_id += 1;
                let pid = (self.next_id % 65535 + 1) as u16;
                self.conn.send(bin(mqtt::subscribe(pid, topic))).await?;
                self.mqtt_wait(|e| matches!(e, mqtt::In::SubAck(p, _) if *p == pid))
                    .await
                    .context("MQTT SUBSCRIBE")?;
                Ok(topic.to_owned())
            }
            Proto::Echo => Ok(topic.to_owned()),
        }
    }

    /// Creates a group topic (Tinode `{sub new…}`); NATS/MQTT just name a subject.
    pub async fn create_group(&mut self) -> Result<String> {
        match self.proto {
            Proto::Tinode | Proto::TinodeGrpc => {
                let c = self.tinode_req(Req::Sub("newload")).await?;
                if c.code >= 300 {
                    bail!("sub new answered {} {}", c.code, c.text);
                }
                c.topic
                    .filter(|t| t.starts_with("grp"))
                    .ok_or_else(|| anyhow!("sub new: ctrl without a grp topic"))
            }
            Proto::Nats => Ok(format!("g.{}.{}", self.run_id, self.user)),
            Proto::Mqtt => Ok(format!("g/{}/{}", self.run_id, self.user)),
            Proto::Echo => Ok(String::new()),
        }
    }

    /// Leaves a topic without unsubscribing (Tinode); no-op elsewhere.
    pub async fn leave(&mut self, topic: &str) -> Result<()> {
        if self.proto.is_tinode() {
            let _ = self.tinode_req(Req::Leave(topic)).await?;
        }
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&mut self) {
        self.conn.close().await;
    }

    pub fn split(self) -> (Sink, Reader) {
        let (sink, stream) = match self.conn {
            Conn::Ws(ws) => {
                let (sink, stream) = ws.split();
                (Sink::Ws(sink), Stream::Ws(stream))
            }
            Conn::Grpc(g) => {
                let (sink, recv) = g.split();
                (Sink::Grpc(sink), Stream::Grpc(recv))
            }
        };
        (
            sink,
            Reader {
                stream,
                proto: self.proto,
                nats: self.nats,
                mqtt: self.mqtt,
            },
        )
    }

    async fn recv_frame(&mut self) -> Result<Vec<u8>> {
        let ws = match &mut self.conn {
            Conn::Ws(ws) => ws,
            Conn::Grpc(g) => {
                return tokio::time::timeout(STEP_TIMEOUT, g.next())
                    .await
                    .map_err(|_| anyhow!("no answer within {STEP_TIMEOUT:?}"))??
                    .map(|b| b.to_vec())
                    .ok_or_else(|| anyhow!("gRPC stream ended"));
            }
        };
        loop {
            let m = tokio::time::timeout(STEP_TIMEOUT, ws.next())
                .await
                .map_err(|_| anyhow!("no answer within {STEP_TIMEOUT:?}"))?
                .ok_or_else(|| anyhow!("connection closed"))??;
            match m {
                Message::Text(t) => return Ok(t.as_bytes().to_vec()),
                Message::Binary(b) => return Ok(b.to_vec()),
                Message::Close(c) => bail!("closed by server: {c:?}"),
                _ => {}
            }
        }
    }

    async fn tinode_req(&mut self, req: Req<'_>) -> Result<tinode::Ctrl> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let grpc = self.proto == Proto::TinodeGrpc;
        let m = if grpc {
            bin(grpc::request(&req, &id)?)
        } else {
            Message::text(req.json(&id))
        };
        self.conn.send(m).await?;
        loop {
            let raw = self.recv_frame().await?;
            let ctrl = if grpc {
                match grpc::parse(&raw) {
                    grpc::In::Ctrl(c) => Some(c),
                    _ => None,
                }
            } else {
                match tinode::parse(&raw) {
                    tinode::In::Ctrl(c) => Some(c),
                    _ => None,
                }
            };
            if let Some(c) = ctrl {
                if c.id.as_deref() == Some(id.as_str()) {
                    return Ok(c);
                }
                if c.id.is_none() && c.code >= 400 {
                    bail!("server error frame: {}", String::from_utf8_lossy(&raw));
                }
            }
        }
    }

    async fn nats_wait_pong(&mut self) -> Result<()> {
        loop {
            let raw = self.recv_frame().await?;
            let (mut pong, mut ping, mut err) = (false, false, None);
            self.nats
                .feed(&raw, |e| match e {
                    nats::In::Pong => pong = true,
                    nats::In::Ping => ping = true,
                    nats::In::Err(s) => err = Some(s),
                    _ => {}
                })
                .map_err(|e| anyhow!(e))?;
            if ping {
                self.conn.send(bin(nats::pong())).await?;
            }
            if let Some(e) = err {
                bail!("{e}");
            }
            if pong {
                return Ok(());
            }
        }
    }

    async fn mqtt_wait(&mut self, want: impl Fn(&mqtt::In<'_>) -> bool) -> Result<()> {
        loop {
            let raw = self.recv_frame().await?;
            let (mut hit, mut bad) = (false, None);
            self.mqtt
                .feed(&raw, |e| {
                    match &e {
                        mqtt::In::ConnAck(rc) if *rc != 0 => bad = Some(format!("CONNACK {rc}")),
                        mqtt::In::SubAck(_, rc) if *rc >= 0x80 => {
                            bad = Some(format!("SUBACK {rc}"))
                        }
                        _ => {}
                    }
                    if want(&e) {
                        hit = true;
                    }
                })
                .map_err(|e| anyhow!(e))?;
            if let Some(b) = bad {
                bail!("{b}");
            }
            if hit {
                return Ok(());
            }
        }
    }
}

/// A publish frame for this protocol.
pub fn publish_frame(proto: Proto, topic: &str, sched_ns: u64, payload: String) -> Message {
    match proto {
        Proto::Tinode => Message::text(tinode::publish(topic, sched_ns, &payload)),
        Proto::TinodeGrpc => bin(grpc::publish(topic, sched_ns, &payload)),
        Proto::Nats => bin(nats::publish(topic, &payload)),
        Proto::Mqtt => bin(mqtt::publish(topic, payload.as_bytes())),
        Proto::Echo => echo::frame(payload),
    }
}

enum Stream {
    Ws(SplitStream<Ws>),
    Grpc(grpc::GrpcRecv),
}

/// The receiving half of a session during a measurement.
pub struct Reader {
    stream: Stream,
    proto: Proto,
    nats: nats::Parser,
    mqtt: mqtt::Parser,
}

impl Reader {
    /// Waits for the next frame and reports its events; `Ok(false)` when the connection ended.
    pub async fn next(&mut self, f: &mut impl FnMut(Event<'_>)) -> Result<bool> {
        let ws = match &mut self.stream {
            Stream::Ws(ws) => ws,
            Stream::Grpc(g) => {
                let Some(msg) = g.next().await? else {
                    return Ok(false);
                };
                match grpc::parse(&msg) {
                    grpc::In::Data(p) => f(Event::Delivery(&p)),
                    grpc::In::Ctrl(c) => {
                        if c.code >= 300 {
                            f(Event::Error(format!("gRPC ctrl {} {}", c.code, c.text)));
                        } else if let Some(t) = c.id.as_deref().and_then(tinode::pub_id_sched) {
                            f(Event::Ack(t));
                        }
                    }
                    grpc::In::Other => {}
                    grpc::In::Bad(e) => f(Event::Error(e)),
                }
                return Ok(true);
            }
        };
        let m = match ws.next().await {
            None => return Ok(false),
            Some(m) => m?,
        };
        let data: &[u8] = match &m {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
            Message::Close(_) => return Ok(false),
            _ => return Ok(true),
        };
        match self.proto {
            Proto::Tinode | Proto::TinodeGrpc => match tinode::parse(data) {
                tinode::In::Data(p) => f(Event::Delivery(p)),
                tinode::In::Ctrl(c) => {
                    if c.code >= 300 {
                        f(Event::Error(String::from_utf8_lossy(data).into_owned()));
                    } else if let Some(t) = c.id.as_deref().and_then(tinode::pub_id_sched) {
                        f(Event::Ack(t));
                    }
                }
                tinode::In::Other => {}
                tinode::In::Bad => f(Event::Error(String::from_utf8_lossy(data).into_owned())),
            },
            Proto::Nats => {
                let r = self.nats.feed(data, |e| match e {
                    nats::In::Msg(p) => f(Event::Delivery(p)),
                    nats::In::Ping => f(Event::Reply(bin(nats::pong()))),
                    nats::In::Err(s) => f(Event::Error(s)),
                    _ => {}
                });
                if let Err(e) = r {
                    f(Event::Error(e));
                }
            }
            Proto::Mqtt => {
                let r = self.mqtt.feed(data, |e| match e {
                    mqtt::In::Publish(p) => f(Event::Delivery(p)),
                    mqtt::In::PingResp | mqtt::In::SubAck(..) | mqtt::In::ConnAck(_) => {}
                    mqtt::In::Other(k) => {
                        f(Event::Error(format!("unexpected MQTT packet type {k}")))
                    }
                });
                if let Err(e) = r {
                    f(Event::Error(e));
                }
            }
            Proto::Echo => f(Event::Delivery(echo::payload(data))),
        }
        Ok(true)
    }
}
