//! Chaos: `kill -9` of the server at a random moment while four clients publish, create
//! groups, sign up and delete accounts, twenty rounds on one data directory (or database), more
//! (up to sixty) where too little work was acknowledged in them.
//! After every restart the store opens, and every write that was acknowledged before the kill
//! is there: each acknowledged message with its content, each created group, each account
//! (its token still logs in) and each deletion (the login is refused).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{b64, unique_login, Client, Server};

const ROUNDS: u64 = 20;
/// Rounds run past `ROUNDS` only until the workload has done `ENOUGH` (a slow or busy machine
/// fits less work into each random kill window), up to this many in all.
const MAX_ROUNDS: u64 = 60;
/// Acknowledged messages and accounts the rounds must reach between them, so that the test
/// checks real work and never passes vacuously.
const ENOUGH: (usize, usize) = (50, 10);

/// What the clients were told succeeded.
#[derive(Default)]
struct Acked {
    messages: BTreeMap<u64, u64>,
    groups: Vec<String>,
    accounts: Vec<(String, String)>,
    deleted: Vec<String>,
    /// Deletions sent but not acknowledged: either outcome is right.
    maybe_deleted: Vec<String>,
}

/// Sends `msg` (with `id`) and waits for its `{ctrl}`; `None` once the connection is gone.
async fn ask(c: &mut Client, id: &str, msg: Value) -> Option<Value> {
    c.try_send_text(&msg.to_string()).await.ok()?;
    loop {
        let v: Value = serde_json::from_str(&c.next_frame().await?).ok()?;
        if v["ctrl"]["id"] == id {
            return Some(v["ctrl"].clone());
        }
    }
}

async fn publisher(mut c: Client, grp: String, mut n: u64) -> Vec<(u64, u64)> {
    let mut acked = Vec::new();
    loop {
        let id = format!("p{n}");
        let msg = json!({"pub": {"id": id, "topic": grp, "content": {"n": n}, "noecho": true}});
        match ask(&mut c, &id, msg).await {
            Some(ctrl) if ctrl["code"] == 202 => {
                acked.push((ctrl["params"]["seq"].as_u64().expect("seq"), n));
            }
            Some(ctrl) => panic!("publish refused before the kill: {ctrl}"),
            None => return acked,
        }
        n += 1;
    }
}

async fn creator(mut c: Client) -> Vec<String> {
    let mut made = Vec::new();
    for i in 0.. {
        let id = format!("g{i}");
        match ask(&mut c, &id, json!({"sub": {"id": id, "topic": "new"}})).await {
            Some(ctrl) if ctrl["code"] == 200 => {
                made.push(ctrl["topic"].as_str().expect("topic").to_owned());
            }
            Some(ctrl) => panic!("group creation refused before the kill: {ctrl}"),
            None => break,
        }
    }
    made
}

fn sign_up_msg(id: &str, login: &str) -> Value {
    let secret = b64(&format!("{login}:{login}-pw"));
    json!({"acc": {"id": id, "user": "new", "scheme": "basic", "secret": secret, "login": true}})
}

/// What `accounts` made: accounts (login, token), acknowledged deletions, and deletions sent
/// but not acknowledged.
type Made = (Vec<(String, String)>, Vec<String>, Vec<String>);

/// Signs up accounts; every other one is deleted right after (on its own session).
async fn accounts(server_url: String, round: u64) -> Made {
    let (mut made, mut deleted, mut maybe) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0.. {
        let Ok(Ok((ws, _))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(server_url.as_str()),
        )
        .await
        else {
            break;
        };
        let mut c = Client::from_ws(ws, "chaos-acc");
        if ask(&mut c, "h", json!({"hi": {"id": "h", "ver": "0.25"}}))
            .await
            .is_none()
        {
            break;
        }
        let login = unique_login(&format!("ch{round}a"));
        match ask(&mut c, "a", sign_up_msg("a", &login)).await {
            Some(ctrl) if ctrl["code"] == 200 => {
                made.push((
                    login.clone(),
                    ctrl["params"]["token"].as_str().expect("token").to_owned(),
                ));
            }
            Some(ctrl) => panic!("sign-up refused before the kill: {ctrl}"),
            None => break,
        }
        if i % 2 == 1 {
            maybe.push(login.clone());
            match ask(
                &mut c,
                "d",
                json!({"del": {"id": "d", "what": "user", "hard": true}}),
            )
            .await
            {
                Some(ctrl) if ctrl["code"] == 200 => deleted.push(login),
                Some(ctrl) => panic!("deletion refused before the kill: {ctrl}"),
                None => break,
            }
        }
    }
    (made, deleted, maybe)
}

/// A basic login's ctrl code for `login` on a new session.
async fn basic_login(server: &Server, login: &str) -> u64 {
    let mut c = Client::connect(server, "chaos-check").await;
    c.hi().await;
    let secret = b64(&format!("{login}:{login}-pw"));
    let ctrl = ask(
        &mut c,
        "l",
        json!({"login": {"id": "l", "scheme": "basic", "secret": secret}}),
    )
    .await
    .expect("an answer");
    ctrl["code"].as_u64().expect("code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let mut server = Server::start(
        2,
        "[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\n",
    );
    let mut owner = Client::connect(&server, "chaos-owner").await;
    owner.hi().await;
    let (_, token) = owner.sign_up(&unique_login("chaos")).await;
    let grp = owner.create_group().await;
    drop(owner);
    let mut acked = Acked::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_n = 0;
    for round in 0.. {
        let enough = acked.messages.len() > ENOUGH.0 && acked.accounts.len() > ENOUGH.1;
        if (round >= ROUNDS && enough) || round >= MAX_ROUNDS {
            break;
        }
        let p = Client::login(&server, "chaos-pub", &token).await;
        let g = Client::login(&server, "chaos-new", &token).await;
        let mut pc = p;
        pc.sub(&grp).await;
        let tasks = (
            tokio::spawn(publisher(pc, grp.clone(), next_n)),
            tokio::spawn(creator(g)),
            tokio::spawn(accounts(server.ws_url(), round)),
        );
        // A random moment 30-330 ms into the work.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(30 + rng % 300)).await;
        server.kill9();
        let (pubs, groups, (made, deleted, maybe)) = (
            tasks.0.await.expect("publisher"),
            tasks.1.await.expect("creator"),
            tasks.2.await.expect("accounts"),
        );
        next_n += 1_000_000;
        for (seq, n) in pubs {
            assert!(
                acked.messages.insert(seq, n).is_none(),
                "seq {seq} acknowledged twice"
            );
        }
        acked.groups.extend(groups);
        acked.accounts.extend(made);
        acked.deleted.extend(deleted);
        acked.maybe_deleted.extend(maybe);
        server.restart();
        verify(&server, &grp, &token, &acked, round).await;
    }
    assert!(
        acked.messages.len() > ENOUGH.0 && acked.accounts.len() > ENOUGH.1,
        "the workload did work in {MAX_ROUNDS} rounds: {} messages and {} accounts acknowledged",
        acked.messages.len(),
        acked.accounts.len()
    );
}

async fn verify(server: &Server, grp: &str, token: &str, acked: &Acked, round: u64) {
    let mut c = Client::login(server, "chaos-verify", token).await;
    // Messages: every acknowledged seq holds its content.
    let mut stored: BTreeMap<u64, u64> = BTreeMap::new();
    let mut page = c.sub_get(grp, Some("data"), None).await;
    loop {
        let datas: Vec<&Value> = page.iter().filter_map(|f| f.get("data")).collect();
        if datas.is_empty() {
            break;
        }
        for d in &datas {
            stored.insert(
                d["seq"].as_u64().expect("seq"),
                d["content"]["n"].as_u64().expect("n"),
            );
        }
        let oldest = datas
            .iter()
            .filter_map(|d| d["seq"].as_u64())
            .min()
            .expect("seq");
        page = c.get(grp, "data", Some(json!({"before": oldest}))).await;
    }
    for (seq, n) in &acked.messages {
        assert_eq!(
            stored.get(seq),
            Some(n),
            "round {round}: acknowledged seq {seq} lost or changed"
        );
    }
    // Groups: each acknowledged creation is there (its owner subscribes again).
    for g in &acked.groups {
        let frames = c.sub_get(g, None, None).await;
        let code = frames.last().expect("reply")["ctrl"]["code"].clone();
        assert!(
            code == 200 || code == 304,
            "round {round}: created group {g} lost: {code}"
        );
    }
    // Accounts: kept ones log in with their tokens, deleted ones are refused.
    for (login, tok) in &acked.accounts {
        if acked.maybe_deleted.contains(login) {
            continue; // deleted, acknowledged or not: checked below when acknowledged
        }
        let mut a = Client::connect(server, "chaos-acc-check").await;
        a.hi().await;
        let ctrl = ask(
            &mut a,
            "t",
            json!({"login": {"id": "t", "scheme": "token", "secret": tok}}),
        )
        .await
        .expect("answer");
        assert_eq!(
            ctrl["code"], 200,
            "round {round}: account {login} lost: {ctrl}"
        );
    }
    for login in &acked.deleted {
        assert_eq!(
            basic_login(server, login).await,
            401,
            "round {round}: deleted {login} logs in"
        );
    }
}
