//! Long polling at `/v0/channels/lp` against the real server: a whole session (create, hi,
//! sign-up, sub, pub) over polls only; requests that land on a shard other than the session's;
//! concurrent polls each taking the next message; the hold time; expiry after idle; refusals
//! (unknown sid, API key, oversized and malformed bodies) and the CORS preflight.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

use crate::clients::lp::{post, raw, Lp};
use crate::support::{b64, unique_login, Client, Server, API_KEY};

/// A whole session over long polling: hi (200, not 201), sign-up, a group with a `{pub}` whose
/// ack and `{data}` come back through polls; a WebSocket member of the group receives it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_long_polling() {
    let server = Server::start(2, "");
    let mut lp = Lp::create(&server).await;
    let hi = lp
        .request(json!({"hi": {"ver": "0.25.3", "ua": "it-lp/1.0"}}))
        .await;
    assert_eq!(hi["code"], 200, "hi on LP answers 200: {hi}");
    assert!(hi["params"]["maxMessageSize"].is_number(), "{hi}");
    let login = unique_login("lp");
    let secret = b64(&format!("{login}:{login}-pw"));
    let acc = lp
        .request(
            json!({"acc": {"user": "new", "scheme": "basic", "secret": secret, "login": true,
            "desc": {"public": {"fn": "LP"}}}}),
        )
        .await;
    assert_eq!(acc["code"], 200, "{acc}");
    let me = lp.request(json!({"sub": {"topic": "me"}})).await;
    assert_eq!(me["code"], 200, "{me}");
    let created = lp.request(json!({"sub": {"topic": "new"}})).await;
    assert_eq!(created["code"], 200, "{created}");
    let grp = created["topic"].as_str().expect("group name").to_owned();

    // A WebSocket member of the same group.
    let mut ws = Client::connect(&server, "ws").await;
    ws.hi().await;
    ws.sign_up(&unique_login("ws")).await;
    let uid = ws.uid.clone();
    let inv = lp
        .request(json!({"set": {"topic": grp, "sub": {"user": uid, "mode": "JRWPS"}}}))
        .await;
    assert_eq!(inv["code"], 200, "{inv}");
    ws.sub(&grp).await;

    let id = lp.id();
    lp.send(json!({"pub": {"id": id, "topic": grp, "content": "over LP"}}))
        .await;
    let got = lp
        .poll_until("the {data}", |v| v["data"]["content"] == "over LP")
        .await;
    let ack = got
        .iter()
        .find(|v| v["ctrl"]["id"] == json!(id))
        .unwrap_or_else(|| panic!("no ack before the data: {got:?}"));
    assert_eq!(ack["ctrl"]["code"], 202, "{ack}");
    let data = ws
        .recv_until("the LP message", |v| v["data"]["content"] == "over LP")
        .await;
    assert_eq!(data["data"]["topic"], grp.as_str());

    // And back: the WebSocket member publishes, the LP session polls it.
    let seq = ws.publish(&grp, json!("over WS")).await;
    let got = lp
        .poll_until("the WS message", |v| v["data"]["content"] == "over WS")
        .await;
    assert_eq!(got.last().expect("data")["data"]["seq"], seq);
    let vars = server.vars();
    assert!(
        vars["IncomingMessagesLongpollTotal"].as_u64() >= Some(6),
        "{vars}"
    );
    assert!(
        vars["OutgoingMessagesLongpollTotal"].as_u64() >= Some(7),
        "{vars}"
    );
}

/// Every request is a fresh connection, which SO_REUSEPORT spreads over the shards: requests
/// (sends and polls) that land on the shard other than the session's still reach it, through
/// the mesh (`MeshEnvelopesTotal` grows although nothing else runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_another_shard_reach_the_session() {
    let server = Server::start(2, "");
    let lp = Lp::create(&server).await;
    assert!(lp.home() < 2, "sid names shard {}", lp.home());
    let before = server.vars()["MeshEnvelopesTotal"].as_u64().expect("mesh");
    for i in 0..24 {
        // The probe `1` is answered `0` by the next poll.
        let r = lp.send_raw(b"1").await;
        assert_eq!((r.status, r.body.as_str()), (200, ""), "probe {i}: {r:?}");
        let r = lp.poll().await;
        assert_eq!((r.status, r.body.as_str()), (200, "0"), "poll {i}: {r:?}");
    }
    let after = server.vars()["MeshEnvelopesTotal"].as_u64().expect("mesh");
    // 48 requests, each one envelope there and one back when it landed on the other shard;
    // the chance that none did is 2^-48.
    assert!(
        after >= before + 2,
        "no request crossed shards: {before} -> {after}"
    );
}

/// Several polls wait at once; each takes the next message, none is lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_polls_each_take_the_next_message() {
    let server = Server::start(2, "[longpoll]\nhold_ms = 10000\n");
    let lp = std::sync::Arc::new(Lp::create(&server).await);
    let mut polls = Vec::new();
    for _ in 0..3 {
        let lp = lp.clone();
        polls.push(tokio::spawn(async move { lp.poll().await }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in ["a", "b", "c"] {
        // Before {hi}: each is refused with its own id.
        lp.send(json!({"sub": {"id": id, "topic": "me"}})).await;
    }
    let mut ids = Vec::new();
    for p in polls {
        let r = p.await.expect("poll task");
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        ids.push(v["ctrl"]["id"].as_str().expect("ctrl id").to_owned());
    }
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
}

/// A poll with nothing to deliver answers an empty 200 after the hold time; the session lives
/// on while polls hold it, and ends `session.detached_idle_ms` after the last request: 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_time_then_expiry_after_idle() {
    let server = Server::start(
        2,
        "[longpoll]\nhold_ms = 1500\n[session]\ndetached_idle_ms = 1000\n",
    );
    let lp = Lp::create(&server).await;
    let t = Instant::now();
    let r = lp.poll().await;
    let held = t.elapsed();
    assert_eq!((r.status, r.body.as_str()), (200, ""), "{r:?}");
    assert!(
        held >= Duration::from_millis(1400) && held < Duration::from_secs(8),
        "held {held:?}"
    );
    // Held longer than the idle time, yet alive: a poll keeps the session attached.
    let r = lp.send_raw(b"1").await;
    assert_eq!(r.status, 200, "{r:?}");
    let (_, gone) = server
        .wait_vars(Duration::from_secs(10), |v| v["LiveSessions"] == 0)
        .await;
    assert!(gone, "the idle session did not expire");
    let r = lp.poll().await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["ctrl"]["text"], "invalid or expired session");
}

/// Unknown or forged sids, a missing API key, oversized and malformed bodies, the preflight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_preflight() {
    let server = Server::start(2, "[session]\nmax_message_size = 1024\n");
    let port = server.port();
    let lp = Lp::create(&server).await;
    // Unknown sid, a sid naming a shard that does not exist, a wrong secret, garbage.
    let mut forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&lp.sid)
        .expect("sid");
    forged[15] ^= 1;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
    for sid in [
        "AAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAP8AAAAAAAAAAA",
        forged.as_str(),
        "x",
    ] {
        for body in [&b""[..], b"{\"hi\":{}}"] {
            let r = post(port, &format!("&sid={sid}"), body).await;
            assert_eq!(r.status, 403, "sid {sid}: {r:?}");
            assert_eq!(r.header("access-control-allow-origin"), Some("*"));
            let v = r.json();
            assert_eq!(v["ctrl"]["code"], 403);
            assert_eq!(v["ctrl"]["text"], "invalid or expired session");
        }
    }
    // No API key.
    let r = raw(
        port,
        b"POST /v0/channels/lp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["ctrl"]["text"], "valid API key required");
    // Over session.max_message_size: 417 and {ctrl 400}.
    let r = lp.send_raw(&vec![b' '; 2000]).await;
    assert_eq!(r.status, 417, "{r:?}");
    assert_eq!(r.json()["ctrl"]["code"], 400);
    // A malformed body is accepted; its {ctrl 400 "malformed"} comes through a poll.
    let r = lp.send_raw(b"{not json").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""), "{r:?}");
    let got = lp.poll_until("malformed", |v| v["ctrl"].is_object()).await;
    let c = &got.last().expect("ctrl")["ctrl"];
    assert_eq!(
        (c["code"].as_u64(), c["text"].as_str()),
        (Some(400), Some("malformed"))
    );
    // The sid in an urlencoded form body (as Go's FormValue reads it), chunked bodies.
    let form = format!("sid={}", lp.sid);
    let mut req = format!(
        "POST /v0/channels/lp?apikey={API_KEY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .into_bytes();
    let r = raw(port, std::mem::take(&mut req)).await;
    assert_eq!(r.status, 200, "form sid: {r:?}");
    let msg = br#"{"hi":{"id":"ch","ver":"0.25"}}"#;
    let mut req = format!(
        "POST /v0/channels/lp?apikey={API_KEY}&sid={} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        lp.sid,
        msg.len()
    )
    .into_bytes();
    req.extend_from_slice(msg);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = raw(port, req).await;
    assert_eq!(r.status, 200, "chunked: {r:?}");
    let got = lp.poll_until("hi reply", |v| v["ctrl"]["id"] == "ch").await;
    assert_eq!(got.last().expect("ctrl")["ctrl"]["code"], 200, "{got:?}");
    // The CORS preflight: no session, no key needed.
    let r = raw(
        port,
        b"OPTIONS /v0/channels/lp?apikey=x HTTP/1.1\r\nHost: x\r\nOrigin: http://elsewhere:8080\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("POST")));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(
        r.header("cache-control"),
        Some("no-cache, no-store, must-revalidate")
    );
    let vars = server.vars();
    assert_eq!(vars["LiveSessions"], 1, "{vars}");
}

/// A session that ends with frames queued (deleting its own account: the reply, then
/// `{ctrl 205 "evicted"}`) delivers them through the next polls, then answers 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_delivers_its_last_frames_then_403() {
    let server = Server::start(2, "");
    let mut lp = Lp::create(&server).await;
    lp.request(json!({"hi": {"ver": "0.25.3"}})).await;
    let login = unique_login("lpdel");
    let secret = b64(&format!("{login}:{login}-pw"));
    let acc = lp
        .request(
            json!({"acc": {"user": "new", "scheme": "basic", "secret": secret, "login": true}}),
        )
        .await;
    assert_eq!(acc["code"], 200, "{acc}");
    let del = lp
        .request(json!({"del": {"what": "user", "hard": true}}))
        .await;
    assert_eq!(del["code"], 200, "{del}");
    let got = lp
        .poll_until("the eviction", |v| v["ctrl"]["code"] == 205)
        .await;
    assert_eq!(
        got.last().expect("ctrl")["ctrl"]["text"],
        "evicted",
        "{got:?}"
    );
    let r = lp.poll().await;
    assert_eq!(r.status, 403, "{r:?}");
}
