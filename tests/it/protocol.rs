//! Reply sequences over real sockets: `{sub get}` order, history paging, joining with default
//! access, group presence, `pres msg` on `me`, and read/recv/typing notes turned into `{info}`.

use serde_json::{json, Value};

use crate::support::{carries_id, code, data, kind, unique_login, Client, Server};

/// Connects a new user: hi + sign-up.
async fn new_user(server: &Server, name: &str) -> Client {
    let mut c = Client::connect(server, name).await;
    c.hi().await;
    c.sign_up(&unique_login(name)).await;
    c
}

/// Seqs of the `{data}` frames among `frames`, in order.
fn data_seqs(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(data)
        .map(|d| d["seq"].as_u64().expect("data.seq"))
        .collect()
}

/// The final ctrl of a history reply.
fn last_ctrl(frames: &[Value]) -> Value {
    frames
        .last()
        .and_then(|v| v.get("ctrl"))
        .cloned()
        .unwrap_or_else(|| panic!("reply does not end in a ctrl: {frames:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_with_get_replies_ctrl_first_then_desc_sub_data_and_208() {
    let server = Server::start(2, "");
    let mut a = new_user(&server, "seqa").await;

    // Creation with get: ctrl 200 (tmpname, acs), meta desc, meta sub, ctrl 204 {what:data}.
    let frames = a.sub_get("new", Some("desc sub data"), None).await;
    let kinds: Vec<&str> = frames.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["ctrl", "meta", "meta", "ctrl"],
        "creation reply: {frames:?}"
    );
    let first = &frames[0]["ctrl"];
    assert_eq!(first["code"], 200, "{first}");
    assert_eq!(first["params"]["tmpname"], "new", "{first}");
    assert_eq!(first["params"]["acs"]["mode"], "JRWPASDO", "{first}");
    let grp = first["topic"].as_str().expect("topic").to_owned();
    assert!(
        grp.starts_with("grp") && grp.len() == 14,
        "group name {grp}"
    );
    let id = first["id"].as_str().expect("id").to_owned();
    assert!(
        frames.iter().all(|f| carries_id(f, &id)),
        "every part carries the sub id: {frames:?}"
    );
    assert!(frames[1]["meta"]["desc"].is_object(), "{}", frames[1]);
    assert_eq!(frames[1]["meta"]["topic"], grp.as_str());
    assert_eq!(
        frames[1]["meta"]["desc"]["defacs"]["auth"], "JRWPS",
        "{}",
        frames[1]
    );
    let subs = frames[2]["meta"]["sub"]
        .as_array()
        .unwrap_or_else(|| panic!("meta sub: {}", frames[2]));
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["user"], a.uid.as_str());
    assert_eq!(frames[3]["ctrl"]["code"], 204, "{}", frames[3]);
    assert_eq!(frames[3]["ctrl"]["params"]["what"], "data", "{}", frames[3]);

    for i in 1..=3 {
        assert_eq!(a.publish(&grp, json!(format!("m{i}"))).await, i);
    }
    // Let the publisher's echoes through before the next check uses a fresh session.
    a.recv_until("echo of seq 3", |v| data(v).is_some_and(|d| d["seq"] == 3))
        .await;

    // A second session of the same user attaches with get: the exact sequence, nothing else.
    let mut a2 = Client::login(&server, "seqa2", &a.token).await;
    let frames = a2.sub_get(&grp, Some("desc sub data"), None).await;
    let kinds: Vec<&str> = frames.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["ctrl", "meta", "meta", "data", "data", "data", "ctrl"],
        "re-attach reply: {frames:?}"
    );
    let first = &frames[0]["ctrl"];
    assert_eq!(first["code"], 200, "{first}");
    assert!(
        first.get("params").is_none(),
        "no params for an unchanged subscription: {first}"
    );
    assert_eq!(frames[1]["meta"]["desc"]["seq"], 3, "{}", frames[1]);
    assert_eq!(data_seqs(&frames), [3, 2, 1], "history is newest first");
    for f in frames.iter().filter_map(data) {
        assert_eq!(f["topic"], grp.as_str());
        assert_eq!(f["from"], a.uid.as_str());
        assert_eq!(f["content"], format!("m{}", f["seq"]));
    }
    let done = last_ctrl(&frames);
    assert_eq!(done["code"], 208, "{done}");
    assert_eq!(
        done["params"],
        json!({"what": "data", "count": 3}),
        "{done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_newest_first_with_since_and_before() {
    let server = Server::start(2, "");
    let mut a = new_user(&server, "page").await;
    let grp = a.create_group().await;
    for i in 1..=25u64 {
        assert_eq!(a.publish(&grp, json!(format!("m{i}"))).await, i);
    }
    a.recv_until("echo of seq 25", |v| {
        data(v).is_some_and(|d| d["seq"] == 25)
    })
    .await;

    let cases: [(Value, Vec<u64>); 6] = [
        (json!({"limit": 10}), (16..=25).rev().collect()),
        (json!({"before": 16, "limit": 10}), (6..=15).rev().collect()),
        (json!({"before": 6}), (1..=5).rev().collect()),
        (json!({"since": 20}), (20..=25).rev().collect()),
        (json!({"since": 5, "before": 8}), vec![7, 6, 5]),
        (json!({}), (1..=25).rev().collect()),
    ];
    for (opts, want) in cases {
        let frames = a.get(&grp, "data", Some(opts.clone())).await;
        assert_eq!(data_seqs(&frames), want, "get data {opts}: {frames:?}");
        for f in frames.iter().filter_map(data) {
            assert_eq!(f["content"], format!("m{}", f["seq"]), "{f}");
        }
        let done = last_ctrl(&frames);
        assert_eq!(done["code"], 208, "get data {opts}: {done}");
        assert_eq!(
            done["params"]["count"],
            want.len(),
            "get data {opts}: {done}"
        );
        assert_eq!(done["topic"], grp.as_str());
    }
    for opts in [json!({"since": 26}), json!({"before": 1, "since": 1})] {
        let frames = a.get(&grp, "data", Some(opts.clone())).await;
        assert_eq!(frames.len(), 1, "get data {opts}: {frames:?}");
        assert_eq!(code(&frames[0]), Some(204), "get data {opts}: {frames:?}");
        assert_eq!(frames[0]["ctrl"]["params"]["what"], "data");
    }
    // A sub with get data pages the same way.
    let mut a2 = Client::login(&server, "page2", &a.token).await;
    let frames = a2
        .sub_get(&grp, Some("data"), Some(json!({"before": 4})))
        .await;
    assert_eq!(data_seqs(&frames), [3, 2, 1], "{frames:?}");
    assert_eq!(last_ctrl(&frames)["params"]["count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_user_joins_with_default_access_and_presence_follows_sessions() {
    let server = Server::start(2, "");
    let mut a = new_user(&server, "owner").await;
    let grp = a.create_group().await;
    let mut b1 = new_user(&server, "joiner").await;

    let c = b1.sub(&grp).await;
    assert_eq!(
        c["params"]["acs"],
        json!({"want": "JRWPS", "given": "JRWPS", "mode": "JRWPS"}),
        "{c}"
    );
    // The owner (an admin) learns of the new subscription, then that its user is online.
    let acs = a.recv_until("pres acs", |v| kind(v) == "pres").await;
    assert_eq!(
        acs["pres"],
        json!({"topic": grp, "src": b1.uid, "what": "acs", "dacs": {"want": "JRWPS", "given": "JRWPS"}}),
        "{acs}"
    );
    let on = a.recv_until("pres on", |v| kind(v) == "pres").await;
    assert_eq!(
        on["pres"],
        json!({"topic": grp, "src": b1.uid, "what": "on"}),
        "{on}"
    );

    // The joiner can publish and the owner sees it.
    let seq = b1.publish(&grp, json!("hello from b")).await;
    let d = a.recv_until("b's message", |v| data(v).is_some()).await;
    assert_eq!(d["data"]["seq"], seq);
    assert_eq!(d["data"]["from"], b1.uid.as_str());
    assert_eq!(d["data"]["content"], "hello from b");

    // The member list now has both users.
    let frames = b1.get(&grp, "sub", None).await;
    let subs = frames
        .last()
        .and_then(|f| f["meta"]["sub"].as_array().cloned())
        .unwrap_or_default();
    let mut users: Vec<&str> = subs.iter().filter_map(|s| s["user"].as_str()).collect();
    users.sort();
    let mut want = vec![a.uid.as_str(), b1.uid.as_str()];
    want.sort();
    assert_eq!(users, want, "{frames:?}");

    // A second session of the same user attaching and leaving: no on/off for the others.
    let mut b2 = Client::login(&server, "joiner2", &b1.token).await;
    let c = b2.sub(&grp).await;
    assert!(
        c.get("params").is_none(),
        "existing subscription: no acs: {c}"
    );
    b2.leave(&grp).await;
    let marker = a.publish_nowait(&grp, json!("marker"), false).await;
    let frames = a
        .collect_until("marker echo", |v| {
            data(v).is_some_and(|d| d["content"] == "marker")
        })
        .await;
    let pres: Vec<&Value> = frames
        .iter()
        .filter(|f| ["on", "off"].contains(&f["pres"]["what"].as_str().unwrap_or("")))
        .collect();
    assert!(
        pres.is_empty(),
        "no on/off for a second session of an online user: {pres:?}"
    );
    assert!(
        frames.iter().any(|f| f["ctrl"]["id"] == marker.as_str()),
        "ack before echo: {frames:?}"
    );

    // The user's last session leaving: off.
    b1.leave(&grp).await;
    let off = a.recv_until("pres off", |v| kind(v) == "pres").await;
    assert_eq!(
        off["pres"],
        json!({"topic": grp, "src": b1.uid, "what": "off"}),
        "{off}"
    );

    // A session that just disappears (no leave, no close frame) is detached too: on, then off.
    let mut b3 = Client::login(&server, "joiner3", &b1.token).await;
    b3.sub(&grp).await;
    let on = a.recv_until("pres on again", |v| kind(v) == "pres").await;
    assert_eq!(on["pres"]["what"], "on", "{on}");
    b3.drop_abruptly();
    let off = a
        .recv_until("pres off after a dropped connection", |v| kind(v) == "pres")
        .await;
    assert_eq!(
        off["pres"],
        json!({"topic": grp, "src": b1.uid, "what": "off"}),
        "{off}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_without_id_is_delivered_without_ack_and_double_sub_is_304() {
    let server = Server::start(2, "");
    let mut a = new_user(&server, "noid").await;
    let grp = a.create_group().await;
    a.send(json!({"pub": {"topic": grp, "content": "no id"}}))
        .await;
    let next = a.recv().await;
    assert_eq!(
        next["data"]["content"], "no id",
        "no ack without an id; the message itself comes next: {next}"
    );
    assert_eq!(next["data"]["seq"], 1, "{next}");
    let id = a.id();
    a.send(json!({"sub": {"id": id, "topic": grp}})).await;
    let c = a.recv().await;
    assert_eq!(c["ctrl"]["code"], 304, "{c}");
    assert_eq!(c["ctrl"]["text"], "already subscribed", "{c}");
    assert_eq!(c["ctrl"]["id"], id.as_str(), "{c}");
    assert_eq!(c["ctrl"]["topic"], grp.as_str(), "{c}");
    // Still attached: the next publish works.
    assert_eq!(a.publish(&grp, json!("with id")).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pres_msg_on_me_for_members_not_attached_to_the_group() {
    let server = Server::start(2, "");
    let mut a = new_user(&server, "pmowner").await;
    let grp = a.create_group().await;
    let mut b0 = new_user(&server, "pmmember").await;
    b0.sub(&grp).await;
    b0.leave(&grp).await; // still a member, no longer attached

    // b1: only on `me`. b2: on `me` and the group.
    let mut b1 = Client::login(&server, "pm-me-only", &b0.token).await;
    b1.sub("me").await;
    let mut b2 = Client::login(&server, "pm-me-and-grp", &b0.token).await;
    b2.sub("me").await;
    b2.sub(&grp).await;

    let seq = a.publish(&grp, json!("ping")).await;
    let p = b1
        .recv_until("pres msg", |v| v["pres"]["what"] == "msg")
        .await;
    assert_eq!(
        p["pres"],
        json!({"topic": "me", "src": grp, "what": "msg", "seq": seq, "act": a.uid}),
        "{p}"
    );

    // b2 gets the message itself, and no `pres msg` on `me`: the get on `me` below is answered
    // by the same `me` topic after it handled the notification, so a copy would come first.
    let frames = b2.collect_until("data", |v| data(v).is_some()).await;
    assert_eq!(
        frames.last().map(|f| f["data"]["seq"].clone()),
        Some(json!(seq))
    );
    let mut all = frames;
    all.extend(b2.get("me", "desc", None).await);
    let pres: Vec<&Value> = all.iter().filter(|f| f["pres"]["what"] == "msg").collect();
    assert!(
        pres.is_empty(),
        "a session attached to the group gets no pres msg on me: {pres:?}"
    );

    // b1 is told of every message.
    let seq2 = a.publish(&grp, json!("ping2")).await;
    let p = b1
        .recv_until("pres msg 2", |v| v["pres"]["what"] == "msg")
        .await;
    assert_eq!(p["pres"]["seq"], seq2, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_recv_and_typing_notes_become_info_for_the_others() {
    let server = Server::start(2, "");
    let mut a = new_user(&server, "noteowner").await;
    let grp = a.create_group().await;
    let mut b = new_user(&server, "notereader").await;
    b.sub(&grp).await;
    let mut b2 = Client::login(&server, "notereader2", &b.token).await;
    b2.sub(&grp).await;
    a.recv_until("pres on", |v| v["pres"]["what"] == "on").await;

    let seq = a.publish(&grp, json!("read me")).await;
    b.recv_until("data", |v| data(v).is_some()).await;
    b2.recv_until("data", |v| data(v).is_some()).await;

    b.note(&grp, "recv", seq).await;
    let i = a.recv_until("info recv", |v| kind(v) == "info").await;
    assert_eq!(
        i["info"],
        json!({"topic": grp, "from": b.uid, "what": "recv", "seq": seq}),
        "{i}"
    );
    b.note(&grp, "read", seq).await;
    let i = a.recv_until("info read", |v| kind(v) == "info").await;
    assert_eq!(
        i["info"],
        json!({"topic": grp, "from": b.uid, "what": "read", "seq": seq}),
        "{i}"
    );

    // Dropped silently: a read beyond the last seq, a repeated read, a note with an unknown what.
    b.note(&grp, "read", seq + 100).await;
    b.note(&grp, "read", seq).await;
    b.note(&grp, "bogus", 0).await;
    b.note(&grp, "kp", 0).await;
    let i = a.recv_until("info kp", |v| kind(v) == "info").await;
    assert_eq!(
        i["info"],
        json!({"topic": grp, "from": b.uid, "what": "kp"}),
        "only the typing note follows: {i}"
    );

    // b's other session got the receipts but not the typing note (same user).
    a.publish(&grp, json!("marker")).await;
    let frames = b2
        .collect_until("marker", |v| {
            data(v).is_some_and(|d| d["content"] == "marker")
        })
        .await;
    let infos: Vec<Value> = frames
        .iter()
        .filter(|f| kind(f) == "info")
        .map(|f| f["info"]["what"].clone())
        .collect();
    assert_eq!(
        infos,
        [json!("recv"), json!("read")],
        "receipts to the user's other session, no kp: {frames:?}"
    );

    // The read marker is stored and reported in desc.
    let frames = b.get(&grp, "desc", None).await;
    let desc = &frames.last().expect("meta")["meta"]["desc"];
    assert_eq!(desc["read"], seq, "{desc}");
    assert_eq!(desc["recv"], seq, "{desc}");
}
