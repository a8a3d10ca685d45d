//! `/v0/channels`: one task per connection running the Tinode subset.
//!
//! The task waits on three things: the connection's outbound queue (drain everything queued,
//! feed it to the sink, flush once), the socket (handle every frame already readable, replies
//! fed to the sink, one flush), and the overflow signal (end the connection). `{data}` for other
//! readers goes through their queues, encoded once per topic view ([`crate::hub::Topic`]).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::WebSocketStream;

use crate::echo::{close, BATCH};
use crate::hub::{Conn, Hub, Topic};
use crate::proto::{self, ClientMsg, DataOut};

/// Runs one session until the client leaves or overflows.
pub async fn run(mut ws: WebSocketStream<TcpStream>, hub: Arc<Hub>) -> Result<(), Error> {
    let (conn, mut rx) = hub.connect();
    let mut s = Session {
        hub,
        conn,
        uid: None,
        attached: HashMap::new(),
    };
    let mut queued: Vec<Message> = Vec::new();
    let mut replies: Vec<String> = Vec::new();
    let res = loop {
        tokio::select! {
            biased;
            _ = s.conn.kill.notified() => break close(ws).await,
            n = rx.recv_many(&mut queued, 1024) => {
                if n == 0 {
                    break Ok(());
                }
                if let Err(e) = feed_all(&mut ws, &mut queued).await {
                    break Err(e);
                }
                if let Err(e) = ws.flush().await {
                    break Err(e);
                }
            }
            first = ws.next() => {
                if first.is_none() {
                    break Ok(());
                }
                let mut next = first;
                let mut n = 0;
                let mut closed = false;
                while let Some(msg) = next.take() {
                    match msg {
                        Ok(Message::Text(t)) => s.handle(t.as_bytes(), &mut replies),
                        Ok(Message::Binary(b)) => s.handle(&b, &mut replies),
                        Ok(Message::Close(_)) => {
                            closed = true;
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            s.detach_all();
                            return Err(e);
                        }
                    }
                    n += 1;
                    if n < BATCH {
                        next = ws.next().now_or_never().flatten();
                    }
                }
                let mut out: Vec<Message> = replies.drain(..).map(|r| Message::Text(r.into())).collect();
                if let Err(e) = feed_all(&mut ws, &mut out).await {
                    break Err(e);
                }
                if closed {
                    break close(ws).await;
                }
                if let Err(e) = ws.flush().await {
                    break Err(e);
                }
            }
        }
    };
    s.detach_all();
    res
}

async fn feed_all(
    ws: &mut WebSocketStream<TcpStream>,
    msgs: &mut Vec<Message>,
) -> Result<(), Error> {
    for m in msgs.drain(..) {
        ws.feed(m).await?;
    }
    Ok(())
}

struct Session {
    hub: Arc<Hub>,
    conn: Arc<Conn>,
    uid: Option<u64>,
    /// Attached topics by the name the client uses (`grp…`, `usr…`); `me` is not a topic here.
    attached: HashMap<String, Arc<Topic>>,
}

impl Session {
    fn detach_all(&mut self) {
        for (_, t) in self.attached.drain() {
            t.detach(self.conn.id);
        }
    }

    /// Handles one client frame, appending the replies for this client.
    fn handle(&mut self, frame: &[u8], out: &mut Vec<String>) {
        let now = proto::now_ms();
        let ts = proto::rfc3339(now);
        let msg: ClientMsg = match serde_json::from_slice(frame) {
            Ok(m) => m,
            Err(_) => {
                out.push(proto::ctrl(None, None, 400, "malformed", None, &ts));
                return;
            }
        };
        if let Some(p) = msg.publish {
            self.publish(p, &ts, out);
        } else if let Some(sub) = msg.sub {
            self.subscribe(sub, &ts, out);
        } else if let Some(l) = msg.leave {
            let id = l.id.as_deref();
            if self.uid.is_none() {
                return out.push(auth_required(id, &l.topic, &ts));
            }
            if let Some(t) = self.attached.remove(&l.topic) {
                t.detach(self.conn.id);
            }
            out.push(proto::ctrl(id, Some(&l.topic), 200, "ok", None, &ts));
        } else if let Some(hi) = msg.hi {
            let params = json!({ "ver": proto::VERSION, "build": "coretalk-baseline:0.1.0" });
            out.push(proto::ctrl(
                hi.id.as_deref(),
                None,
                201,
                "created",
                Some(params),
                &ts,
            ));
        } else if let Some(l) = msg.login {
            let id = l.id.as_deref();
            let secret = l.secret.as_deref().unwrap_or("");
            let uid = match l.scheme.as_deref() {
                Some("basic") => proto::basic_login(secret).map(|login| self.hub.login(login)),
                Some("token") => proto::check_token(secret, now),
                _ => None,
            };
            match uid {
                Some(uid) => out.push(self.logged_in(uid, id, now, &ts)),
                None => out.push(proto::ctrl(
                    id,
                    None,
                    401,
                    "authentication failed",
                    None,
                    &ts,
                )),
            }
        } else if let Some(a) = msg.acc {
            let id = a.id.as_deref();
            let is_new = a.user.as_deref().is_some_and(|u| u.starts_with("new"));
            let login = match a.scheme.as_deref() {
                Some("basic") => proto::basic_login(a.secret.as_deref().unwrap_or("")),
                _ => None,
            };
            if !is_new || login.is_none() {
                return out.push(proto::ctrl(id, None, 400, "malformed", None, &ts));
            }
            match self.hub.create_account(login) {
                None => out.push(proto::ctrl(
                    id,
                    None,
                    409,
                    "duplicate credential",
                    Some(json!({ "what": "auth" })),
                    &ts,
                )),
                Some(uid) if a.login => out.push(self.logged_in(uid, id, now, &ts)),
                Some(uid) => out.push(proto::ctrl(
                    id,
                    None,
                    201,
                    "created",
                    Some(json!({ "user": proto::user_name(uid), "authlvl": "auth" })),
                    &ts,
                )),
            }
        } else {
            out.push(proto::ctrl(None, None, 400, "malformed", None, &ts));
        }
    }

    /// Authenticates the session and builds the `{ctrl 200}` with a token.
    fn logged_in(&mut self, uid: u64, id: Option<&str>, now: u64, ts: &str) -> String {
        self.uid = Some(uid);
        let (token, expires) = proto::mint_token(uid, now);
        let params = json!({
            "user": proto::user_name(uid),
            "authlvl": "auth",
            "token": token,
            "expires": proto::rfc3339(expires),
        });
        proto::ctrl(id, None, 200, "ok", Some(params), ts)
    }

    fn subscribe(&mut self, sub: proto::Sub, ts: &str, out: &mut Vec<String>) {
        let id = sub.id.as_deref();
        let Some(uid) = self.uid else {
            return out.push(auth_required(id, &sub.topic, ts));
        };
        let name = sub.topic;
        if name == "me" {
            return out.push(proto::ctrl(id, Some("me"), 200, "ok", None, ts));
        }
        if self.attached.contains_key(&name) {
            return out.push(proto::ctrl(
                id,
                Some(&name),
                304,
                "already subscribed",
                None,
                ts,
            ));
        }
        let (topic, seen, tmpname) = if name.starts_with("new") || name.starts_with("nch") {
            let t = self.hub.create_group();
            let grp = t.name().to_owned();
            (t, grp, Some(name))
        } else if name.starts_with("grp") {
            match self.hub.group(&name) {
                Some(t) => (t, name, None),
                None => {
                    return out.push(proto::ctrl(
                        id,
                        Some(&name),
                        404,
                        "topic not found",
                        None,
                        ts,
                    ))
                }
            }
        } else if let Some(other) = proto::parse_user(&name).filter(|&o| o != uid) {
            (self.hub.p2p(uid, other), name, None)
        } else {
            return out.push(proto::ctrl(id, Some(&name), 400, "malformed", None, ts));
        };
        topic.attach(uid, &self.conn);
        let params = tmpname.map(|t| json!({ "tmpname": t }));
        out.push(proto::ctrl(id, Some(&seen), 200, "ok", params, ts));
        self.attached.insert(seen, topic);
    }

    fn publish(&mut self, p: proto::Pub<'_>, ts: &str, out: &mut Vec<String>) {
        let id = p.id.as_deref();
        let Some(uid) = self.uid else {
            return out.push(auth_required(id, &p.topic, ts));
        };
        let Some(topic) = self.attached.get(&p.topic) else {
            return out.push(proto::ctrl(
                id,
                Some(&p.topic),
                409,
                "must attach first",
                None,
                ts,
            ));
        };
        let from = proto::user_name(uid);
        let data = DataOut {
            from: &from,
            ts,
            seq: 0,
            head: p.head,
            content: p.content,
        };
        // The ack goes to the sink before this connection drains its own queue again, so the
        // publisher sees its ctrl before its own copy of the data.
        let skip = p.noecho.then_some(self.conn.id);
        let seq = topic.publish(data, skip);
        out.push(proto::ctrl(
            id,
            Some(&p.topic),
            202,
            "accepted",
            Some(json!({ "seq": seq })),
            ts,
        ));
    }
}

fn auth_required(id: Option<&str>, topic: &str, ts: &str) -> String {
    proto::ctrl(id, Some(topic), 401, "authentication required", None, ts)
}
