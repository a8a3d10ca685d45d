//! The access-mode matrix on every transport: the same rows (who sends what to a group, and
//! the code it must get) run over WebSocket, long polling and gRPC against one server, so a
//! transport cannot bypass or change an access check. The full matrix of the topic machine is
//! `src/topic/tests/access.rs`; these rows cover each kind of check it makes (W for `{pub}`, O
//! for the description, A for others' modes and subscriptions, the owner's protection).

use coretalk::proto::pb::pbx;
use pbx::client_msg::Message as C;
use serde_json::{json, Value};

use crate::clients::grpc::Grpc;
use crate::clients::lp::Lp;
use crate::support::{unique_login, Client, Server};

/// A request of a row, to the group.
#[derive(Clone, Copy)]
enum Op<'a> {
    Pub,
    /// `{set desc public}` with this `fn`.
    SetPublic(&'a str),
    /// `{set sub}` giving the user this mode.
    SetSub(&'a str, &'a str),
    /// `{del sub}` of the user.
    DelSub(&'a str),
}

impl Op<'_> {
    /// The JSON message, without an id.
    fn json(self, grp: &str) -> Value {
        match self {
            Op::Pub => json!({"pub": {"topic": grp, "content": "m"}}),
            Op::SetPublic(name) => json!({"set": {"topic": grp, "desc": {"public": {"fn": name}}}}),
            Op::SetSub(user, mode) => {
                json!({"set": {"topic": grp, "sub": {"user": user, "mode": mode}}})
            }
            Op::DelSub(user) => json!({"del": {"topic": grp, "what": "sub", "user": user}}),
        }
    }

    /// The protobuf message.
    fn pb(self, grp: &str, id: String) -> C {
        let set = |query| {
            C::Set(pbx::ClientSet {
                id: id.clone(),
                topic: grp.into(),
                query: Some(query),
            })
        };
        match self {
            Op::Pub => C::Pub(pbx::ClientPub {
                id,
                topic: grp.into(),
                content: b"\"m\"".to_vec(),
                ..Default::default()
            }),
            Op::SetPublic(name) => set(pbx::SetQuery {
                desc: Some(pbx::SetDesc {
                    public: json!({ "fn": name }).to_string().into_bytes(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            Op::SetSub(user, mode) => set(pbx::SetQuery {
                sub: Some(pbx::SetSub {
                    user_id: user.into(),
                    mode: mode.into(),
                }),
                ..Default::default()
            }),
            Op::DelSub(user) => C::Del(pbx::ClientDel {
                id,
                topic: grp.into(),
                what: pbx::client_del::What::Sub as i32,
                user_id: user.into(),
                ..Default::default()
            }),
        }
    }
}

/// One user's session on one transport, attached to the group (a handful per test).
#[allow(clippy::large_enum_variant)]
enum Wire {
    Ws(Client),
    Lp(Lp),
    Grpc(Grpc),
}

impl Wire {
    async fn open(transport: &str, server: &Server, name: &str, token: &str, grp: &str) -> Wire {
        match transport {
            "websocket" => {
                let mut c = Client::login(server, name, token).await;
                c.sub(grp).await;
                Wire::Ws(c)
            }
            "long polling" => {
                let mut lp = Lp::create(server).await;
                let hi = lp.request(json!({"hi": {"ver": "0.25.3"}})).await;
                assert!(hi["code"].as_u64().is_some_and(|c| c < 300), "{name}: {hi}");
                let login = json!({"login": {"scheme": "token", "secret": token}});
                let c = lp.request(login).await;
                assert_eq!(c["code"], 200, "{name}: {c}");
                let c = lp.request(json!({"sub": {"topic": grp}})).await;
                assert_eq!(c["code"], 200, "{name}: {c}");
                Wire::Lp(lp)
            }
            _ => {
                let mut g = Grpc::connect(server, name).await;
                g.hi().await;
                g.login_token(token).await;
                g.sub(grp, None).await;
                Wire::Grpc(g)
            }
        }
    }

    /// Sends `op` and returns the code of its `{ctrl}`.
    async fn ask(&mut self, grp: &str, op: Op<'_>) -> u64 {
        match self {
            Wire::Ws(c) => {
                let id = c.id();
                let mut msg = op.json(grp);
                if let Some(body) = msg.as_object_mut().and_then(|m| m.values_mut().next()) {
                    body["id"] = json!(id);
                }
                c.send(msg).await;
                c.ctrl_for(&id).await["code"].as_u64().expect("code")
            }
            Wire::Lp(lp) => lp.request(op.json(grp)).await["code"]
                .as_u64()
                .expect("code"),
            Wire::Grpc(g) => {
                let id = g.id();
                g.send(op.pb(grp, id.clone()));
                u64::try_from(g.ctrl_for(&id).await.code).expect("code")
            }
        }
    }
}

#[tokio::test]
async fn the_access_matrix_holds_on_websocket_long_polling_and_grpc() {
    let server = Server::start(2, "");
    // The group: Alice owns it, Carol is an admin (A), Bob a member, Dave a reader (no W).
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol", "dave"] {
        let mut c = Client::connect(&server, name).await;
        c.hi().await;
        c.sign_up(&unique_login(name)).await;
        users.push(c);
    }
    let grp = users[0].create_group().await;
    for c in &mut users[1..] {
        c.sub(&grp).await;
    }
    let uid: Vec<String> = users.iter().map(|c| c.uid.clone()).collect();
    let tokens: Vec<String> = users.iter().map(|c| c.token.clone()).collect();
    let (alice, bob, carol, dave) = (0, 1, 2, 3);
    let mut owner = users.remove(0);
    for (who, mode) in [(carol, "JRWPAS"), (dave, "JR")] {
        let id = owner.id();
        let set = json!({"set": {"id": id, "topic": grp, "sub": {"user": uid[who], "mode": mode}}});
        owner.send(set).await;
        assert_eq!(owner.ctrl_for(&id).await["code"], 200);
    }
    // Carol wants A too (a mode is what is both wanted and given).
    let admin = &mut users[carol - 1];
    let id = admin.id();
    let want = json!({"set": {"id": id, "topic": grp, "sub": {"mode": "JRWPAS"}}});
    admin.send(want).await;
    assert_eq!(admin.ctrl_for(&id).await["code"], 200);
    drop((owner, users));

    for transport in ["websocket", "long polling", "grpc"] {
        let mut wires = Vec::new();
        for (i, name) in ["alice", "bob", "carol", "dave"].into_iter().enumerate() {
            wires.push(Wire::open(transport, &server, name, &tokens[i], &grp).await);
        }
        let rows: [(&str, usize, Op, u64); 11] = [
            ("pub: reader without W", dave, Op::Pub, 403),
            ("pub: member", bob, Op::Pub, 202),
            (
                "set desc: member, not owner",
                bob,
                Op::SetPublic(transport),
                403,
            ),
            (
                "set desc: admin, not owner",
                carol,
                Op::SetPublic(transport),
                403,
            ),
            ("set desc: owner", alice, Op::SetPublic(transport), 200),
            (
                "set another's mode: member",
                bob,
                Op::SetSub(&uid[dave], "JRW"),
                403,
            ),
            (
                "set another's mode: admin",
                carol,
                Op::SetSub(&uid[dave], "JRW"),
                200,
            ),
            ("pub: reader given W", dave, Op::Pub, 202),
            (
                "restore the reader: admin",
                carol,
                Op::SetSub(&uid[dave], "JR"),
                200,
            ),
            (
                "del sub of the owner: admin",
                carol,
                Op::DelSub(&uid[alice]),
                403,
            ),
            (
                "del sub of an admin: member",
                bob,
                Op::DelSub(&uid[carol]),
                403,
            ),
        ];
        for (what, who, op, expect) in rows {
            let got = wires[who].ask(&grp, op).await;
            assert_eq!(got, expect, "{transport}: {what}");
        }
    }
}
