//! gRPC (`pbx.Node/MessageLoop`) against the real binary, with a raw HTTP/2 client (h2 on
//! tokio) speaking the gRPC framing and the `pbx` prost types: sign-up, groups, publish and
//! receive; a gRPC and a WebSocket client seeing each other's messages and presence; a
//! malformed message answered and survived; the session released when its stream ends, is
//! reset, or its connection drops, and when a message is over `session.max_message_size`.

use std::time::{Duration, Instant};

use coretalk::proto::pb::pbx;
use pbx::client_msg::Message as C;
use pbx::server_msg::Message as S;
use serde_json::json;

use crate::clients::grpc::{is_data_with, is_pres, Grpc};
use crate::support::{kind, unique_login, Client, Server, RECV_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_signs_up_creates_publishes_receives_and_survives_a_malformed_message() {
    let server = Server::start(2, "");
    let mut a = Grpc::connect(&server, "ga").await;
    a.hi().await;
    a.sign_up(&unique_login("grpca")).await;

    // Not a pbx.ClientMsg: answered 400 without id, and the session goes on.
    a.send_raw(&[0xff, 0xff, 0xff]);
    let bad = a
        .recv_until("ctrl 400", |m| matches!(m, S::Ctrl(c) if c.code == 400))
        .await;
    let S::Ctrl(bad) = bad else { unreachable!() };
    assert_eq!((bad.id.as_str(), bad.text.as_str()), ("", "malformed"));
    // Content that is not JSON: malformed too.
    a.send(C::Pub(pbx::ClientPub {
        id: "x".into(),
        topic: "me".into(),
        content: b"{not json".to_vec(),
        ..Default::default()
    }));
    a.recv_until(
        "second ctrl 400",
        |m| matches!(m, S::Ctrl(c) if c.code == 400),
    )
    .await;

    let c = a.sub("new", None).await;
    let grp = c.topic.clone();
    assert!(grp.starts_with("grp"), "{c:?}");
    let seq = a.publish(&grp, json!("hello")).await;
    assert_eq!(seq, 1);
    let echo = a
        .recv_until("own message", |m| is_data_with(m, &json!("hello")))
        .await;
    let S::Data(d) = echo else { unreachable!() };
    assert_eq!((d.topic.as_str(), d.seq_id), (grp.as_str(), 1));
    assert_eq!(d.from_user_id, a.uid);
    assert!(d.timestamp > 1_600_000_000_000, "ms timestamp: {d:?}");

    // A second user on another connection joins, reads the history and gets live messages.
    let mut b = Grpc::connect(&server, "gb").await;
    b.hi().await;
    b.sign_up(&unique_login("grpcb")).await;
    b.sub(&grp, Some("data")).await;
    b.recv_until("history", |m| is_data_with(m, &json!("hello")))
        .await;
    a.publish(&grp, json!({"txt": "live", "fmt": [{"at": 0}]}))
        .await;
    let live = b
        .recv_until("live message", |m| {
            is_data_with(m, &json!({"txt": "live", "fmt": [{"at": 0}]}))
        })
        .await;
    let S::Data(d) = live else { unreachable!() };
    assert_eq!((d.seq_id, d.from_user_id.as_str()), (2, a.uid.as_str()));

    let v = server.vars();
    assert!(
        v["IncomingMessagesGrpcTotal"].as_u64().unwrap_or(0) >= 9,
        "{v}"
    );
    assert!(
        v["OutgoingMessagesGrpcTotal"].as_u64().unwrap_or(0) >= 9,
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_websocket_clients_see_each_others_messages_and_presence() {
    let server = Server::start(2, "");
    let mut w = Client::connect(&server, "wa").await;
    w.hi().await;
    let (_, token) = w.sign_up(&unique_login("mixa")).await;
    let grp = w.create_group().await;

    // Another user over gRPC joins: the WebSocket owner sees the subscription and presence.
    let mut g = Grpc::connect(&server, "gb").await;
    g.hi().await;
    g.sign_up(&unique_login("mixb")).await;
    g.sub(&grp, None).await;
    let on = w
        .recv_until("pres on", |v| {
            kind(v) == "pres" && v["pres"]["what"] == "on" && v["pres"]["src"] == g.uid.as_str()
        })
        .await;
    assert_eq!(on["pres"]["topic"], grp.as_str(), "{on}");

    // Messages both ways.
    w.publish(&grp, json!("from ws")).await;
    let m = g
        .recv_until("ws message", |m| is_data_with(m, &json!("from ws")))
        .await;
    let S::Data(d) = m else { unreachable!() };
    assert_eq!(d.from_user_id, w.uid);
    g.publish(&grp, json!("from grpc")).await;
    let d = w
        .recv_until("grpc message", |v| v["data"]["content"] == "from grpc")
        .await;
    assert_eq!(d["data"]["from"], g.uid.as_str(), "{d}");

    // The WebSocket user's own second session, over gRPC, logged in with the same token.
    let mut g2 = Grpc::connect(&server, "ga2").await;
    g2.hi().await;
    g2.login_token(&token).await;
    assert_eq!(g2.uid, w.uid);
    g2.sub(&grp, None).await;
    w.publish(&grp, json!("to my other session")).await;
    g2.recv_until("own message from ws", |m| {
        is_data_with(m, &json!("to my other session"))
    })
    .await;
    g2.publish(&grp, json!("from my grpc session")).await;
    w.recv_until("own message from grpc", |v| {
        v["data"]["content"] == "from my grpc session"
    })
    .await;

    // The gRPC user's stream is reset: the others see it go offline.
    g.reset();
    let off = w
        .recv_until("pres off", |v| {
            kind(v) == "pres" && v["pres"]["what"] == "off" && v["pres"]["src"] == g.uid.as_str()
        })
        .await;
    assert_eq!(off["pres"]["topic"], grp.as_str(), "{off}");
    // And a gRPC member sees the WebSocket side's presence: the owner leaves and comes back.
    w.leave(&grp).await;
    let mut w2 = Client::login(&server, "wa2", &token).await;
    let mut g3 = Grpc::connect(&server, "gb3").await;
    g3.hi().await;
    g3.sign_up(&unique_login("mixc")).await;
    g3.sub(&grp, None).await;
    g2.leave(&grp).await;
    w2.sub(&grp).await;
    g3.recv_until("pres on of the owner", |m| {
        is_pres(m, pbx::server_pres::What::On, &w.uid)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_stream_end_reset_and_dropped_connection_release_the_sessions() {
    let server = Server::start(2, "");
    let mut owner = Grpc::connect(&server, "g0").await;
    owner.hi().await;
    owner.sign_up(&unique_login("relo")).await;
    let grp = owner.sub("new", None).await.topic;

    let mut ended = Grpc::connect(&server, "g1").await;
    let mut reset = Grpc::connect(&server, "g2").await;
    let mut dropped = Grpc::connect(&server, "g3").await;
    for g in [&mut ended, &mut reset, &mut dropped] {
        g.hi().await;
        g.sign_up(&unique_login("rel")).await;
        g.sub(&grp, None).await;
        g.sub("me", None).await;
    }
    let (v, ok) = server
        .wait_vars(Duration::from_secs(10), |v| {
            v["LiveSessions"] == 4 && v["Attachments"].as_u64().unwrap_or(0) >= 7
        })
        .await;
    assert!(ok, "four sessions, seven attachments: {v}");

    // Half-close: the session ends and the stream ends cleanly after it.
    ended.end();
    let deadline = Instant::now() + RECV_TIMEOUT;
    while ended.next_msg().await.is_some() {
        assert!(Instant::now() < deadline, "the ended stream keeps going");
    }
    let trailers = tokio::time::timeout(RECV_TIMEOUT, ended.recv.trailers())
        .await
        .expect("trailers in time")
        .expect("trailers");
    let status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .map(|s| s.to_str().unwrap_or("").to_owned());
    assert_eq!(status.as_deref(), Some("0"), "{trailers:?}");

    // Reset mid-session, and a connection that just goes away.
    reset.reset();
    drop(dropped);

    let (v, ok) = server
        .wait_vars(Duration::from_secs(10), |v| {
            v["LiveSessions"] == 1 && v["Attachments"] == 1
        })
        .await;
    assert!(ok, "only the owner's session and attachment are left: {v}");
    // The owner's session is unaffected.
    owner.publish(&grp, json!("still here")).await;
    owner.end();
    let (v, ok) = server
        .wait_vars(Duration::from_secs(10), |v| {
            v["LiveSessions"] == 0 && v["Attachments"] == 0
        })
        .await;
    assert!(ok, "everything released: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_message_over_the_size_limit_ends_the_stream_and_the_session() {
    let server = Server::start(1, "[session]\nmax_message_size = 4096\n");
    let mut g = Grpc::connect(&server, "big").await;
    g.hi().await;
    g.send(C::Pub(pbx::ClientPub {
        id: "big".into(),
        topic: "me".into(),
        content: json!("x".repeat(8192)).to_string().into_bytes(),
        ..Default::default()
    }));
    let deadline = Instant::now() + RECV_TIMEOUT;
    while g.next_msg().await.is_some() {
        assert!(Instant::now() < deadline, "the stream keeps going");
    }
    let trailers = tokio::time::timeout(RECV_TIMEOUT, g.recv.trailers())
        .await
        .expect("trailers in time")
        .expect("trailers");
    let status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .and_then(|s| s.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(status != "0" && !status.is_empty(), "{trailers:?}");
    let (v, ok) = server
        .wait_vars(Duration::from_secs(10), |v| v["LiveSessions"] == 0)
        .await;
    assert!(ok, "the session ended: {v}");
}
