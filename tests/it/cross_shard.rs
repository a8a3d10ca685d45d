//! Group messages across shards: publishers on shard 0 and on shard 1 reach every attached
//! session on both shards exactly once, in seq order, with the ack before the echo; `noecho`.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::support::{data, home_shard, is_ctrl_for, unique_login, Client, Server};

/// Most connections opened per user while looking for sessions on both shards.
const MAX_CONNECTIONS_PER_USER: usize = 32;

/// A session whose shard is known, with every `{data}` it has read so far.
struct Sess {
    c: Client,
    shard: usize,
    user: usize,
    seen: Vec<Value>,
}

impl Sess {
    /// Reads one frame, recording `{data}`.
    async fn read(&mut self) -> Value {
        let v = self.c.recv().await;
        if let Some(d) = data(&v) {
            self.seen.push(d.clone());
        }
        v
    }
}

/// Connects and says hi, learning the session's shard from `/debug/vars` before and after. Only
/// valid while no other session of this server opens or closes.
async fn connect_tracked(server: &Server, name: &str) -> (Client, usize) {
    let before = server.shard_sessions();
    let mut c = Client::connect(server, name).await;
    c.hi().await; // the session exists on its shard once {hi} is answered
    let after = server.shard_sessions();
    let grew: Vec<usize> = (0..before.len())
        .filter(|&i| after[i] != before[i])
        .collect();
    assert_eq!(
        grew.len(),
        1,
        "{name}: sessions per shard went from {before:?} to {after:?}"
    );
    assert_eq!(
        after[grew[0]],
        before[grew[0]] + 1,
        "{name}: {before:?} -> {after:?}"
    );
    (c, grew[0])
}

/// Publishes `n` messages pipelined from `sessions[p]`; reads until every ack and echo arrived;
/// checks each ack precedes its echo; returns seq → content.
async fn publish_round(
    sessions: &mut [Sess],
    grp: &str,
    p: usize,
    round: u32,
    n: u32,
) -> HashMap<u64, Value> {
    let mut ids = Vec::new();
    for i in 0..n {
        let content = json!({"round": round, "i": i});
        let id = sessions[p]
            .c
            .publish_nowait(grp, content.clone(), false)
            .await;
        ids.push((id, content));
    }
    let s = &mut sessions[p];
    let mut acked: HashMap<u64, Value> = HashMap::new();
    let mut echoed = 0;
    while echoed < n {
        let v = s.read().await;
        if let Some((_, content)) = ids.iter().find(|(id, _)| is_ctrl_for(&v, id)) {
            let c = &v["ctrl"];
            assert_eq!(c["code"], 202, "{}: pub answered {c}", s.c.name);
            let seq = c["params"]["seq"].as_u64().expect("params.seq");
            assert!(
                acked.insert(seq, content.clone()).is_none(),
                "seq {seq} acknowledged twice"
            );
        } else if let Some(d) = data(&v) {
            if d["content"]["round"] == round {
                let seq = d["seq"].as_u64().expect("data.seq");
                assert!(
                    acked.contains_key(&seq),
                    "{}: echo of seq {seq} before its ctrl 202 ({d})",
                    s.c.name
                );
                echoed += 1;
            }
        }
    }
    assert_eq!(acked.len(), n as usize);
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_messages_cross_shards_both_ways_exactly_once() {
    let server = Server::start(2, "");

    // Two users; the first session of each is tracked like the others.
    let (mut a0, a0_shard) = connect_tracked(&server, "xa0").await;
    a0.sign_up(&unique_login("xa")).await;
    let grp = a0.create_group().await;
    let home = home_shard(&grp, 2);
    let (mut b0, b0_shard) = connect_tracked(&server, "xb0").await;
    b0.sign_up(&unique_login("xb")).await;
    b0.sub(&grp).await;
    let uids = [a0.uid.clone(), b0.uid.clone()];
    let tokens = [a0.token.clone(), b0.token.clone()];
    let mut sessions = vec![
        Sess {
            c: a0,
            shard: a0_shard,
            user: 0,
            seen: Vec::new(),
        },
        Sess {
            c: b0,
            shard: b0_shard,
            user: 1,
            seen: Vec::new(),
        },
    ];

    // More sessions per user until each user has at least 4 and is on both shards.
    for (user, token) in tokens.iter().enumerate() {
        let mut k = 0;
        loop {
            let on = |s: usize| sessions.iter().any(|x| x.user == user && x.shard == s);
            let count = sessions.iter().filter(|x| x.user == user).count();
            if count >= 4 && on(0) && on(1) {
                break;
            }
            assert!(
                k < MAX_CONNECTIONS_PER_USER,
                "user {user}: {k} connections all landed on one shard; sessions: {:?}",
                sessions
                    .iter()
                    .map(|s| (s.user, s.shard))
                    .collect::<Vec<_>>()
            );
            k += 1;
            let (mut c, shard) = connect_tracked(&server, &format!("x{user}-{k}")).await;
            c.login_token(token).await;
            c.sub(&grp).await;
            sessions.push(Sess {
                c,
                shard,
                user,
                seen: Vec::new(),
            });
        }
    }
    let layout: Vec<(usize, usize)> = sessions.iter().map(|s| (s.user, s.shard)).collect();
    println!("topic {grp} lives on shard {home}; sessions (user, shard): {layout:?}");

    let find = |sessions: &[Sess], user: usize, shard: usize| {
        sessions
            .iter()
            .position(|s| s.user == user && s.shard == shard)
            .expect("a session of that user on that shard")
    };
    // Publishers: A on shard 0, B on shard 1, A on shard 1, B on shard 0.
    let mut expected: HashMap<u64, (Value, usize)> = HashMap::new();
    for (round, (user, shard)) in [(0usize, 0usize), (1, 1), (0, 1), (1, 0)]
        .into_iter()
        .enumerate()
    {
        let p = find(&sessions, user, shard);
        let acked = publish_round(&mut sessions, &grp, p, round as u32, 5).await;
        for (seq, content) in acked {
            expected.insert(seq, (content, user));
        }
    }

    // noecho: the publishing session gets the ack but not the message; its user's other
    // sessions still get it.
    let p = find(&sessions, 0, 1);
    let quiet = sessions[p]
        .c
        .publish_nowait(&grp, json!({"round": "quiet"}), true)
        .await;
    let loud = sessions[p]
        .c
        .publish_nowait(&grp, json!({"round": "loud"}), false)
        .await;
    let (mut quiet_seq, mut loud_seq) = (0, 0);
    loop {
        let v = sessions[p].read().await;
        if is_ctrl_for(&v, &quiet) {
            assert_eq!(v["ctrl"]["code"], 202, "{v}");
            quiet_seq = v["ctrl"]["params"]["seq"].as_u64().expect("seq");
        } else if is_ctrl_for(&v, &loud) {
            assert_eq!(v["ctrl"]["code"], 202, "{v}");
            loud_seq = v["ctrl"]["params"]["seq"].as_u64().expect("seq");
        } else if let Some(d) = data(&v) {
            assert_ne!(
                d["content"]["round"], "quiet",
                "noecho publisher got its own message: {d}"
            );
            if d["content"]["round"] == "loud" {
                break;
            }
        }
    }
    assert!(
        quiet_seq > 0 && loud_seq == quiet_seq + 1,
        "acks of the noecho pair: {quiet_seq}, {loud_seq}"
    );
    expected.insert(quiet_seq, (json!({"round": "quiet"}), 0));
    expected.insert(loud_seq, (json!({"round": "loud"}), 0));

    // A last message from B on shard 0; every session reads until it.
    let p = find(&sessions, 1, 0);
    let end = sessions[p]
        .c
        .publish_nowait(&grp, json!({"round": "end"}), false)
        .await;
    let end_seq = loop {
        let v = sessions[p].read().await;
        if is_ctrl_for(&v, &end) {
            assert_eq!(v["ctrl"]["code"], 202, "{v}");
            break v["ctrl"]["params"]["seq"].as_u64().expect("seq");
        }
    };
    expected.insert(end_seq, (json!({"round": "end"}), 1));
    for s in sessions.iter_mut() {
        while !s.seen.iter().any(|d| d["seq"] == end_seq) {
            s.read().await;
        }
    }

    let mut all: Vec<u64> = expected.keys().copied().collect();
    all.sort();
    assert_eq!(
        all,
        (1..=end_seq).collect::<Vec<_>>(),
        "acknowledged seqs are 1..={end_seq} without gaps"
    );
    for (i, s) in sessions.iter().enumerate() {
        let seqs: Vec<u64> = s
            .seen
            .iter()
            .map(|d| d["seq"].as_u64().expect("seq"))
            .collect();
        let want: Vec<u64> = all
            .iter()
            .copied()
            .filter(|&q| !(i == find(&sessions, 0, 1) && q == quiet_seq))
            .collect();
        assert_eq!(
            seqs, want,
            "{} (user {}, shard {}) must see every message once, in order",
            s.c.name, s.user, s.shard
        );
        for d in &s.seen {
            let seq = d["seq"].as_u64().expect("seq");
            let (content, user) = &expected[&seq];
            assert_eq!(&d["content"], content, "{}: content of seq {seq}", s.c.name);
            assert_eq!(
                d["from"],
                uids[*user].as_str(),
                "{}: sender of seq {seq}",
                s.c.name
            );
            assert_eq!(d["topic"], grp.as_str());
        }
    }
    let v = server.vars();
    assert_eq!(v["SlowConsumersTotal"], 0, "{v}");
    assert!(
        v["MeshEnvelopesTotal"].as_u64().unwrap_or(0) > 0,
        "cross-shard traffic went over the mesh: {v}"
    );
}
