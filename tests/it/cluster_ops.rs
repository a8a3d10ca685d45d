//! The rest of a group's operations across cluster nodes: `{set desc}` and `{del msg}` made
//! through a node that does not master the group (answered, seen by the master's clients, the
//! history the same through both nodes); a gRPC client on that node subscribing, publishing,
//! reading and being read, in protobuf, next to a WebSocket client of the same node; and a
//! user whose `me` is loaded on the other node told of the group's messages (`{pres msg}`),
//! changes (`upd`) and coming online (`on`); a channel's readers on the other node; and a
//! token issued by one node logging in on the other (the key lives in the shared database).
//!
//! They need a PostgreSQL (`CORETALK_TEST_PG`, tests/pg.sh) and are skipped, saying so,
//! without one; they pick their own databases, so they run in the embedded run only.

use coretalk::proto::pb::pbx;
use pbx::client_msg::Message as C;
use pbx::server_msg::Message as S;
use serde_json::{json, Value};

use crate::clients::grpc::{is_data_with, is_pres, json_of, Grpc};
use crate::cluster_nodes::{login_basic, master, two_nodes, until, SETTLE};
use crate::support::{is_ctrl_for, unique_login, Client};

/// The seqs of the `{data}` frames among `frames`, sorted, once each (a live copy of a
/// message still unread may come before the history).
fn seqs(frames: &[Value]) -> Vec<u64> {
    let mut s: Vec<u64> = frames
        .iter()
        .filter_map(|v| v["data"]["seq"].as_u64())
        .collect();
    s.sort();
    s.dedup();
    s
}

/// A `{pres}` on `me` about `src`.
fn me_pres(v: &Value, what: &str, src: &str) -> bool {
    v["pres"]["topic"] == "me" && v["pres"]["what"] == what && v["pres"]["src"] == src
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_del_through_a_node_that_does_not_master_the_group() {
    let Some((n1, n2)) = two_nodes("").await else {
        return;
    };
    // The owner creates the group on n1 and publishes four messages.
    let mut a1 = Client::connect(&n1, "a1@n1").await;
    a1.hi().await;
    let login_a = unique_login("opsa");
    a1.sign_up(&login_a).await;
    let grp = a1.create_group().await;
    assert_eq!(master(&grp, &["n1", "n2"]), "n1", "{grp}");
    for i in 1..=4 {
        assert_eq!(a1.publish(&grp, json!(format!("m{i}"))).await, i);
    }
    // A member attached on the master.
    let mut b = Client::connect(&n1, "b@n1").await;
    b.hi().await;
    b.sign_up(&unique_login("opsb")).await;
    b.sub(&grp).await;
    // A member whose `me` is on n2 only (not attached to the group).
    let mut c = Client::connect(&n2, "c@n2").await;
    c.hi().await;
    c.sign_up(&unique_login("opsc")).await;
    c.sub(&grp).await;
    c.leave(&grp).await;
    c.sub("me").await;

    // The owner's second session, on n2, renames the group through the link.
    let mut a2 = Client::connect(&n2, "a2@n2").await;
    a2.hi().await;
    login_basic(&mut a2, &login_a).await;
    a2.sub(&grp).await;
    let id = a2.id();
    a2.send(json!({"set": {"id": id, "topic": grp, "desc": {"public": {"fn": "renamed"}}}}))
        .await;
    let r = a2.ctrl_for(&id).await;
    assert_eq!(r["code"], 200, "{r}");
    assert_eq!(r["topic"], grp.as_str(), "{r}");
    let frames = b.get(&grp, "desc", None).await;
    let desc = frames
        .iter()
        .find(|v| v["meta"]["desc"].is_object())
        .unwrap_or_else(|| panic!("no desc in {frames:?}"));
    assert_eq!(desc["meta"]["desc"]["public"]["fn"], "renamed", "{desc}");
    // The member whose `me` is on n2 is told of the change (`upd` crossed the link).
    let upd = c
        .recv_until("pres upd on me", |v| me_pres(v, "upd", &grp))
        .await;
    assert_eq!(upd["pres"]["src"], grp.as_str(), "{upd}");

    // A hard delete of seqs 2 and 3 through n2: answered 200, broadcast back to n2's session.
    let id = a2.id();
    a2.send(json!({"del": {"id": id, "topic": grp, "what": "msg",
        "delseq": [{"low": 2, "hi": 4}], "hard": true}}))
        .await;
    let r = a2.ctrl_for(&id).await;
    assert_eq!(r["code"], 200, "{r}");
    b.recv_until("pres del on n1", |v| v["pres"]["what"] == "del")
        .await;
    // The history is the same through both nodes.
    assert_eq!(seqs(&b.get(&grp, "data", None).await), [1, 4]);
    assert_eq!(seqs(&a2.get(&grp, "data", None).await), [1, 4]);

    // Deleting the subscription of another user through n2 (owner's right): answered too.
    let id = a2.id();
    a2.send(json!({"del": {"id": id, "topic": grp, "what": "sub", "user": b.uid}}))
        .await;
    let r = a2.ctrl_for(&id).await;
    assert_eq!(r["code"], 200, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_client_uses_a_group_mastered_on_another_node() {
    let Some((n1, n2)) = two_nodes("").await else {
        return;
    };
    let mut w = Client::connect(&n1, "w@n1").await;
    w.hi().await;
    w.sign_up(&unique_login("opsw")).await;
    let grp = w.create_group().await;
    assert_eq!(master(&grp, &["n1", "n2"]), "n1", "{grp}");
    assert_eq!(w.publish(&grp, json!("w1")).await, 1);
    // A WebSocket client of n2 in the group too: one broadcast batch holds both encodings.
    let mut j = Client::connect(&n2, "j@n2").await;
    j.hi().await;
    j.sign_up(&unique_login("opsj")).await;
    j.sub(&grp).await;

    let mut g = Grpc::connect(&n2, "g@n2").await;
    g.hi().await;
    g.sign_up(&unique_login("opsg")).await;
    let c = g.sub(&grp, Some("data")).await;
    assert_eq!(c.topic, grp, "{c:?}");
    g.recv_until("history over grpc", |m| is_data_with(m, &json!("w1")))
        .await;

    // Its message reaches both nodes' WebSocket clients; theirs reach it, in protobuf.
    assert_eq!(g.publish(&grp, json!("g2")).await, 2);
    let d = w.recv_until("g2 on n1", |v| v["data"]["seq"] == 2).await;
    assert_eq!(d["data"]["from"], g.uid.as_str(), "{d}");
    j.recv_until("g2 on n2", |v| v["data"]["content"] == "g2")
        .await;
    assert_eq!(w.publish(&grp, json!("w3")).await, 3);
    let m = g
        .recv_until("w3 over grpc", |m| is_data_with(m, &json!("w3")))
        .await;
    let S::Data(d) = m else { unreachable!() };
    assert_eq!((d.topic.as_str(), d.seq_id), (grp.as_str(), 3));
    j.recv_until("w3 on n2", |v| v["data"]["content"] == "w3")
        .await;

    // `{get desc}`: a protobuf `{meta}` with the request id.
    let id = g.id();
    g.send(C::Get(pbx::ClientGet {
        id: id.clone(),
        topic: grp.clone(),
        query: Some(pbx::GetQuery {
            what: "desc".into(),
            ..Default::default()
        }),
    }));
    let m = g
        .recv_until("meta desc", |m| matches!(m, S::Meta(x) if x.id == id))
        .await;
    let S::Meta(meta) = m else { unreachable!() };
    assert_eq!(meta.topic, grp);
    let desc = meta.desc.expect("a desc");
    assert_eq!(desc.seq_id, 3, "{desc:?}");
    assert!(desc.created_at > 1_600_000_000_000, "{desc:?}");

    // `{set}` and `{del}` get protobuf `{ctrl}`s (a member without D deletes for itself only,
    // as the reference does).
    let id = g.id();
    g.send(C::Set(pbx::ClientSet {
        id: id.clone(),
        topic: grp.clone(),
        query: Some(pbx::SetQuery {
            desc: Some(pbx::SetDesc {
                private: json!({"comment": "mine"}).to_string().into_bytes(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }));
    let c = g.ctrl_for(&id).await;
    assert_eq!(c.code, 200, "{c:?}");
    let id = g.id();
    g.send(C::Del(pbx::ClientDel {
        id: id.clone(),
        topic: grp.clone(),
        what: pbx::client_del::What::Msg as i32,
        del_seq: vec![pbx::SeqRange { low: 1, hi: 2 }],
        hard: true,
        ..Default::default()
    }));
    let c = g.ctrl_for(&id).await;
    assert_eq!(c.code, 200, "{c:?}");
    let frames = w.get(&grp, "data", None).await;
    assert_eq!(seqs(&frames), [1, 2, 3], "deleted for the gRPC user only");
    let private = g_private(&mut g, &grp).await;
    assert_eq!(private, json!({"comment": "mine"}));

    // Detached, with `me` on n2: the group's `{pres msg}` reaches it in protobuf too.
    g.leave(&grp).await;
    g.sub("me", None).await;
    assert_eq!(w.publish(&grp, json!("w4")).await, 4);
    let m = g
        .recv_until("pres msg on me", |m| {
            is_pres(m, pbx::server_pres::What::Msg, &grp)
        })
        .await;
    let S::Pres(p) = m else { unreachable!() };
    assert_eq!((p.topic.as_str(), p.seq_id), ("me", 4), "{p:?}");
}

/// The gRPC client's `desc.private` of `grp`, read with `{get desc}`.
async fn g_private(g: &mut Grpc, grp: &str) -> Value {
    let id = g.id();
    g.send(C::Get(pbx::ClientGet {
        id: id.clone(),
        topic: grp.to_owned(),
        query: Some(pbx::GetQuery {
            what: "desc".into(),
            ..Default::default()
        }),
    }));
    let m = g
        .recv_until("meta desc", |m| matches!(m, S::Meta(x) if x.id == id))
        .await;
    let S::Meta(meta) = m else { unreachable!() };
    json_of(&meta.desc.expect("a desc").private)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_me_on_another_node_hears_of_a_groups_messages_and_presence() {
    // Topics unload soon after their last session leaves, so the group comes online again.
    let Some((n1, n2)) = two_nodes("[topic]\nidle_unload_ms = 300\n").await else {
        return;
    };
    let mut a = Client::connect(&n1, "a@n1").await;
    a.hi().await;
    a.sign_up(&unique_login("mea")).await;
    let grp = a.create_group().await;
    assert_eq!(master(&grp, &["n1", "n2"]), "n1", "{grp}");

    // A member of n2, not attached to the group, with `me` attached on n2 only.
    let mut c = Client::connect(&n2, "c@n2").await;
    c.hi().await;
    c.sign_up(&unique_login("mec")).await;
    c.sub(&grp).await;
    c.leave(&grp).await;
    c.sub("me").await;

    // A message: `{pres msg}` on its `me`, with the seq.
    let seq = a.publish(&grp, json!("hello")).await;
    let p = c
        .recv_until("pres msg on me", |v| me_pres(v, "msg", &grp))
        .await;
    assert_eq!(p["pres"]["seq"], seq, "{p}");
    assert_eq!(p["pres"]["act"], a.uid.as_str(), "{p}");

    // Attached to the group through n2, it gets the message itself and no `{pres msg}` (the
    // master's skip list names its stand-in, n2 its session): the next one, once detached,
    // is the first `{pres msg}` it sees.
    c.sub(&grp).await;
    let seq = a.publish(&grp, json!("while attached")).await;
    let mut frames = c
        .collect_until("data while attached", |v| v["data"]["seq"] == seq)
        .await;
    let id = c.id();
    c.send(json!({"leave": {"id": id, "topic": grp}})).await;
    frames.extend(c.collect_until("leave", |v| is_ctrl_for(v, &id)).await);
    let next = a.publish(&grp, json!("after")).await;
    frames.extend(
        c.collect_until("pres msg after", |v| {
            me_pres(v, "msg", &grp) && v["pres"]["seq"] == next
        })
        .await,
    );
    let early: Vec<&Value> = frames
        .iter()
        .filter(|v| me_pres(v, "msg", &grp) && v["pres"]["seq"] == seq)
        .collect();
    assert!(early.is_empty(), "an attached session got {early:?}");

    // The group goes offline (unloaded on n1), then a session attaches: `on` on n2's `me`.
    a.leave(&grp).await;
    until("the group unloaded on n1", SETTLE, || {
        n1.vars()["LiveTopics"].as_u64() == Some(0)
    })
    .await;
    a.sub(&grp).await;
    let on = c
        .recv_until("pres on on me", |v| me_pres(v, "on", &grp))
        .await;
    assert_eq!(on["pres"]["src"], grp.as_str(), "{on}");
}

/// A token issued by one node logs in on another: the nodes sign with the one key the shared
/// database holds (`shared_secret`), which is what a client of a dead node needs to resume on
/// a surviving one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_by_one_node_logs_in_on_another() {
    let Some((n1, n2)) = two_nodes("").await else {
        return;
    };
    let login = unique_login("tok");
    let mut a = Client::connect(&n1, "a").await;
    a.hi().await;
    let (uid, token) = a.sign_up(&login).await;
    let mut b = Client::connect(&n2, "b").await;
    b.hi().await;
    assert_eq!(b.login_token(&token).await, uid);
    // And the other way round, with a token n2 hands out on a password login.
    let mut d = Client::connect(&n2, "d").await;
    d.hi().await;
    let id = d.id();
    d.send(json!({"login": {"id": id, "scheme": "basic",
        "secret": crate::support::b64(&format!("{login}:{login}-pw"))}}))
        .await;
    let r = d.ctrl_for(&id).await;
    assert_eq!(r["code"], 200, "{r}");
    let token2 = r["params"]["token"].as_str().expect("a token").to_owned();
    let mut c = Client::connect(&n1, "c").await;
    c.hi().await;
    assert_eq!(c.login_token(&token2).await, uid);
}

/// A channel mastered on one node has readers on another: `{sub chn…}` through the link, the
/// owner's messages delivered to them (without `from`, as channels do) and their history read
/// through their own node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_on_one_node_has_readers_on_another() {
    let Some((n1, n2)) = two_nodes("").await else {
        return;
    };
    let mut owner = Client::connect(&n1, "owner@n1").await;
    owner.hi().await;
    owner.sign_up(&unique_login("chown")).await;
    let c = owner.sub("nch").await;
    let grp = c["topic"]
        .as_str()
        .expect("the channel's grp name")
        .to_owned();
    assert!(grp.starts_with("grp"), "{c}");
    assert_eq!(master(&grp, &["n1", "n2"]), "n1", "{grp}");
    let chn = format!("chn{}", &grp[3..]);
    assert_eq!(owner.publish(&grp, json!("before")).await, 1);

    let mut reader = Client::connect(&n2, "reader@n2").await;
    reader.hi().await;
    reader.sign_up(&unique_login("chrd")).await;
    let r = reader.sub(&chn).await;
    assert_eq!(r["code"], 200, "{r}");
    assert_eq!(r["topic"], chn.as_str(), "{r}");
    assert_eq!(owner.publish(&grp, json!("live")).await, 2);
    let d = reader
        .recv_until("the channel's message on n2", |v| v["data"]["seq"] == 2)
        .await;
    assert_eq!(d["data"]["topic"], chn.as_str(), "{d}");
    assert_eq!(d["data"]["content"], "live", "{d}");
    assert!(
        d["data"].get("from").is_none(),
        "a channel's data has no from: {d}"
    );
    assert_eq!(seqs(&reader.get(&chn, "data", None).await), [1, 2]);
}
