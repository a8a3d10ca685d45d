//! Rate limits and quotas against the real binary: a flood of messages is answered 429 and the
//! session survives, a publisher that pipelines hundreds of `{pub}` without reading gets every
//! stored message acknowledged, password guessing is slowed per session and per address, and a
//! user's sessions beyond the limit are refused with 422.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{b64, code, is_ctrl_for, unique_login, Client, Server};

/// Sends `n` `{pub}` without reading, waits `pause`, then reads until every one is answered;
/// returns each id's ctrl. Fails if the connection closes.
async fn pipeline(c: &mut Client, grp: &str, n: usize, pause: Duration) -> Vec<(String, Value)> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(c.publish_nowait(grp, json!({"i": i}), false).await);
    }
    tokio::time::sleep(pause).await;
    let mut answers: HashMap<String, Value> = HashMap::new();
    while answers.len() < n {
        let v = c.recv().await;
        if let Some(id) = ids.iter().find(|id| is_ctrl_for(&v, id)) {
            answers.insert(id.clone(), v["ctrl"].clone());
        }
    }
    ids.into_iter()
        .map(|id| {
            let c = answers.remove(&id).expect("answered");
            (id, c)
        })
        .collect()
}

/// The topic's last seq, from `{get desc}`.
async fn last_seq(c: &mut Client, grp: &str) -> u64 {
    let frames = c.get(grp, "desc", None).await;
    frames
        .iter()
        .find_map(|f| f["meta"]["desc"]["seq"].as_u64())
        .unwrap_or(0)
}

/// Checks that the acknowledged seqs are exactly 1..=n and that the topic holds n messages:
/// nothing stored went unacknowledged, nothing acknowledged is missing.
async fn all_stored_acknowledged(c: &mut Client, grp: &str, answers: &[(String, Value)]) -> usize {
    let mut seqs: Vec<u64> = answers
        .iter()
        .filter(|(_, c)| c["code"] == 202)
        .map(|(_, c)| c["params"]["seq"].as_u64().expect("seq"))
        .collect();
    seqs.sort_unstable();
    let n = seqs.len() as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "acks are 1..={n}");
    assert_eq!(
        last_seq(c, grp).await,
        n,
        "the topic holds exactly the acknowledged messages"
    );
    for (_, c) in answers.iter().filter(|(_, c)| c["code"] != 202) {
        assert_eq!(
            (c["code"].as_u64(), c["text"].as_str(), c["topic"].as_str()),
            (Some(429), Some("too many requests"), Some(grp)),
            "{c}"
        );
    }
    seqs.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_gets_429_and_the_session_survives() {
    let server = Server::start(2, "[limits]\nmsg_per_sec = 5\nmsg_burst = 10\n");
    let mut a = Client::connect(&server, "flood").await;
    a.hi().await;
    a.sign_up(&unique_login("flood")).await;
    let grp = a.create_group().await;
    tokio::time::sleep(Duration::from_millis(2_500)).await; // the start-up burst refills
    let answers = pipeline(&mut a, &grp, 60, Duration::ZERO).await;
    // The session lives on and is served again once the bucket refills.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let acked = all_stored_acknowledged(&mut a, &grp, &answers).await;
    assert!(
        (10..20).contains(&acked),
        "the burst and a little refill: {acked} acked"
    );
    let seq = a.publish(&grp, json!("after")).await;
    assert_eq!(seq, acked as u64 + 1);
    let v = server.vars();
    assert!(
        v["LimitedTotal"].as_u64().unwrap_or(0) >= 40,
        "counted: {}",
        v["LimitedTotal"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_publisher_gets_every_stored_message_acknowledged() {
    // Default limits: the burst admits 128, the rest is refused; nothing overflows.
    let server = Server::start(2, "");
    let mut a = Client::connect(&server, "pipe").await;
    a.hi().await;
    a.sign_up(&unique_login("pipe")).await;
    let grp = a.create_group().await;
    let answers = pipeline(&mut a, &grp, 400, Duration::from_millis(1_000)).await;
    let acked = all_stored_acknowledged(&mut a, &grp, &answers).await;
    assert!(acked >= 100, "{acked} acked");
    assert!(acked < 400, "the flood was limited: {acked} acked");
    let v = server.vars();
    assert_eq!(
        v["SlowConsumersTotal"], 0,
        "no session was closed for overflow"
    );
    assert_eq!(v["LiveSessions"], 1);
}

/// One basic login attempt; its ctrl code.
async fn attempt(c: &mut Client, login: &str, password: &str) -> u64 {
    let id = c.id();
    let secret = b64(&format!("{login}:{password}"));
    c.send(json!({"login": {"id": id, "scheme": "basic", "secret": secret}}))
        .await;
    code(&json!({"ctrl": c.ctrl_for(&id).await})).expect("a code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_slowed_per_session_and_per_address() {
    // One shard: the per-address table is per shard.
    let server = Server::start(
        1,
        "[limits]\nauth_per_min = 6\nauth_burst = 3\naddr_auth_per_min = 6\naddr_auth_burst = 7\n",
    );
    let login = unique_login("guess");
    let mut owner = Client::connect(&server, "owner").await;
    owner.hi().await;
    owner.sign_up(&login).await; // one attempt of the address

    // One connection: 3 wrong guesses are answered, the 4th is refused without being tried.
    let mut g = Client::connect(&server, "guesser").await;
    g.hi().await;
    let codes: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(attempt(&mut g, &login, "wrong").await);
        }
        v
    };
    assert_eq!(codes, [401, 401, 401, 429]);
    // Token logins are not limited.
    let mut t = Client::connect(&server, "token").await;
    t.hi().await;
    t.login_token(&owner.token.clone()).await;

    // New connections from the same address: the address's 7 attempts are spent after 3 more.
    let mut codes = Vec::new();
    for i in 0..4 {
        let mut c = Client::connect(&server, &format!("g{i}")).await;
        c.hi().await;
        codes.push(attempt(&mut c, &login, "wrong").await);
    }
    assert_eq!(codes, [401, 401, 401, 429]);
    // Even the right password waits for the bucket; 10 s later one attempt is allowed.
    let mut c = Client::connect(&server, "right").await;
    c.hi().await;
    assert_eq!(attempt(&mut c, &login, &format!("{login}-pw")).await, 429);
    tokio::time::sleep(Duration::from_millis(10_100)).await;
    assert_eq!(attempt(&mut c, &login, &format!("{login}-pw")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_per_user_limit_are_refused_with_422() {
    let server = Server::start(2, "[limits]\nmax_sessions_per_user = 2\n");
    let mut first = Client::connect(&server, "s1").await;
    first.hi().await;
    let (_, token) = first.sign_up(&unique_login("many")).await;
    let second = Client::login(&server, "s2", &token).await;

    let mut third = Client::connect(&server, "s3").await;
    third.hi().await;
    let id = third.id();
    third
        .send(json!({"login": {"id": id, "scheme": "token", "secret": token}}))
        .await;
    let c = third.ctrl_for(&id).await;
    assert_eq!(
        (
            c["code"].as_u64(),
            c["text"].as_str(),
            c["params"]["what"].as_str()
        ),
        (Some(422), Some("policy violation"), Some("sessions")),
        "{c}"
    );
    // The refused session is still open and unauthenticated.
    let id = third.id();
    third.send(json!({"sub": {"id": id, "topic": "me"}})).await;
    assert_eq!(third.ctrl_for(&id).await["code"], 401);

    // When a session ends its slot is given back (on whichever shard counts the user).
    first.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let id = third.id();
        third
            .send(json!({"login": {"id": id, "scheme": "token", "secret": token}}))
            .await;
        let c = third.ctrl_for(&id).await;
        if c["code"] == 200 {
            break;
        }
        assert_eq!(c["code"], 422, "{c}");
        assert!(Instant::now() < deadline, "the slot was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
}
