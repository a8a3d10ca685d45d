//! Acknowledged means durable: every `{pub}` answered with `ctrl 202` is in the history after a
//! `kill -9` and restart on the same data directory, tokens still work, and seq carries on.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::{code, data, embedded_store, is_ctrl_for, unique_login, Client, Server};

/// Messages published and acknowledged before the kill.
const ACKED: usize = 200;
/// Messages sent right before the kill; the kill comes after a third of them are acknowledged.
const UNACKED: usize = 30;
/// Pipelined publishes per burst.
const BURST: usize = 50;

fn content(i: usize) -> Value {
    json!({"i": i, "txt": format!("durable message {i}")})
}

/// Reads the whole history of `grp` newest first, page by page: the page in `first` (a sub or
/// get reply), then `{get data before}` until `ctrl 204`. Returns seq → data.
pub(crate) async fn read_history(
    c: &mut Client,
    grp: &str,
    first: Vec<Value>,
) -> BTreeMap<u64, Value> {
    let mut all = BTreeMap::new();
    let mut page = first;
    loop {
        let seqs: Vec<u64> = page
            .iter()
            .filter_map(data)
            .map(|d| d["seq"].as_u64().expect("seq"))
            .collect();
        let last = page.last().expect("a reply").clone();
        if seqs.is_empty() {
            assert_eq!(
                code(&last),
                Some(204),
                "an empty page ends with ctrl 204: {last}"
            );
            return all;
        }
        assert_eq!(code(&last), Some(208), "a page ends with ctrl 208: {last}");
        assert_eq!(last["ctrl"]["params"]["count"], seqs.len(), "{last}");
        // History is gap-free (checked below), so 1..=newest are left to read.
        let (newest, oldest) = (seqs[0], *seqs.last().expect("non-empty"));
        assert_eq!(
            seqs.len() as u64,
            newest.min(100),
            "a page holds 100 messages or all that are left: {seqs:?}"
        );
        assert!(
            seqs.windows(2).all(|w| w[0] > w[1]),
            "a page is newest first: {seqs:?}"
        );
        for d in page.iter().filter_map(data) {
            let seq = d["seq"].as_u64().expect("seq");
            assert!(
                all.insert(seq, d.clone()).is_none(),
                "seq {seq} returned twice"
            );
        }
        page = c.get(grp, "data", Some(json!({ "before": oldest }))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    // Pipelined bursts far above a client's rate: the message rate limit is off here
    // (`limits.rs` tests it). The journal writes with direct I/O (the default).
    survive_kill_9("[limits]\nmsg_per_sec = 0\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9_with_a_buffered_journal() {
    if !embedded_store() {
        eprintln!("the journal belongs to the embedded store: not run against PostgreSQL");
        return;
    }
    survive_kill_9("[limits]\nmsg_per_sec = 0\n[store]\njournal_direct_io = false\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_not_durable_is_announced_at_start() {
    if !embedded_store() {
        eprintln!("store.durable belongs to the embedded store: not run against PostgreSQL");
        return;
    }
    const WARNING: &str = "store.durable = false: no write is made durable";
    let mut durable = Server::start(1, "");
    let mut c = Client::connect(&durable, "dur").await;
    c.hi().await;
    c.close().await;
    assert!(
        !durable.log().contains(WARNING),
        "a durable store warns:\n{}",
        durable.stderr_tail()
    );
    durable.stop();
    let volatile = Server::start(1, "[store]\ndurable = false\n");
    let mut c = Client::connect(&volatile, "dur").await;
    c.hi().await;
    c.close().await;
    assert!(
        volatile.log().contains(WARNING),
        "no start-up warning for a store that is not durable:\n{}",
        volatile.stderr_tail()
    );
}

/// Acknowledged messages, and only those, are there after the server is killed mid-stream.
async fn survive_kill_9(config: &str) {
    let mut server = Server::start(2, config);
    let mut a = Client::connect(&server, "dur").await;
    a.hi().await;
    let (uid, token) = a.sign_up(&unique_login("dur")).await;
    let grp = a.create_group().await;

    // Publish in pipelined bursts and collect every ack.
    let mut acked: BTreeMap<u64, Value> = BTreeMap::new();
    for start in (0..ACKED).step_by(BURST) {
        let mut ids = Vec::new();
        for i in start..start + BURST {
            ids.push((a.publish_nowait(&grp, content(i), true).await, i));
        }
        let mut got = 0;
        while got < BURST {
            let v = a.recv().await;
            if let Some((_, i)) = ids.iter().find(|(id, _)| is_ctrl_for(&v, id)) {
                assert_eq!(v["ctrl"]["code"], 202, "{v}");
                let seq = v["ctrl"]["params"]["seq"].as_u64().expect("seq");
                assert_eq!(
                    seq,
                    *i as u64 + 1,
                    "one publisher in order: message {i} gets seq {}",
                    i + 1
                );
                acked.insert(seq, content(*i));
                got += 1;
            }
        }
    }
    assert_eq!(acked.len(), ACKED);
    // More messages; once the first few of them are acknowledged (the rest still in flight)
    // the process dies without any shutdown path.
    let mut ids = Vec::new();
    for i in ACKED..ACKED + UNACKED {
        ids.push(a.publish_nowait(&grp, content(i), true).await);
    }
    for (k, id) in ids.iter().take(UNACKED / 3).enumerate() {
        let c = a.ctrl_for(id).await;
        assert_eq!(c["code"], 202, "{c}");
        assert_eq!(c["params"]["seq"], ACKED + k + 1);
        acked.insert((ACKED + k + 1) as u64, content(ACKED + k));
    }
    server.kill9();
    drop(a);

    server.restart();
    // The embedded store acknowledged from the shards' journals (the store thread applies
    // behind them, volatile until a checkpoint): the restart replayed them. PostgreSQL
    // acknowledged after each COMMIT: nothing to replay.
    let log = std::fs::read_to_string(server.stderr_path()).unwrap_or_default();
    assert_eq!(
        log.contains("journal replayed") && log.contains("record(s)"),
        embedded_store(),
        "journal replay at restart (expected only with the embedded store): {log}"
    );
    let mut b = Client::connect(&server, "dur-after").await;
    b.hi().await;
    assert_eq!(
        b.login_token(&token).await,
        uid,
        "the token minted before the crash is still valid"
    );
    let first = b.sub_get(&grp, Some("desc data"), None).await;
    let desc = first
        .iter()
        .find_map(|f| f["meta"].get("desc"))
        .cloned()
        .expect("meta desc");
    let stored = read_history(&mut b, &grp, first).await;

    for (seq, want) in &acked {
        let d = stored
            .get(seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} lost after kill -9"));
        assert_eq!(&d["content"], want, "content of seq {seq}");
        assert_eq!(d["from"], uid.as_str());
    }
    // Whatever else survived is a gap-free continuation with the right contents.
    let max = *stored.keys().last().expect("history");
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=max).collect::<Vec<_>>(),
        "history has no holes"
    );
    assert!(
        max as usize <= ACKED + UNACKED,
        "no more messages than were sent: {max}"
    );
    for (seq, d) in &stored {
        assert_eq!(d["content"], content(*seq as usize - 1), "seq {seq}");
    }
    assert_eq!(desc["seq"], max, "desc.seq after restart: {desc}");
    println!("{} acknowledged, {max} stored after kill -9", acked.len());

    // Seq carries on from the stored history.
    let next = b.publish(&grp, json!("after restart")).await;
    assert_eq!(next, max + 1);

    // A clean stop keeps everything as well.
    let status = server.stop().expect("server was running");
    assert!(status.success(), "SIGTERM exit status {status}");
    server.restart();
    let mut c = Client::login(&server, "dur-clean", &token).await;
    let frames = c
        .sub_get(&grp, Some("data"), Some(json!({"since": next})))
        .await;
    let d = frames
        .iter()
        .find_map(data)
        .unwrap_or_else(|| panic!("seq {next} after a clean restart: {frames:?}"));
    assert_eq!(d["seq"], next);
    assert_eq!(d["content"], "after restart");
}

/// Journal segment files of the server's data directory.
fn segments(server: &Server) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(server.data_dir().join("journal"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_journal_segments_are_removed_once_checkpointed_and_the_rest_replays() {
    if !embedded_store() {
        eprintln!("the journal belongs to the embedded store: not run against PostgreSQL");
        return;
    }
    // Tiny segments: a few dozen messages fill one.
    let mut server = Server::start(
        1,
        "[limits]\nmsg_per_sec = 0\n[store]\njournal_segment_kib = 4\n",
    );
    let mut a = Client::connect(&server, "seg").await;
    a.hi().await;
    let (_uid, token) = a.sign_up(&unique_login("seg")).await;
    let grp = a.create_group().await;
    const N: usize = 400;
    for start in (0..N).step_by(BURST) {
        let mut ids = Vec::new();
        for i in start..start + BURST {
            ids.push(a.publish_nowait(&grp, content(i), true).await);
        }
        for id in &ids {
            assert_eq!(a.ctrl_for(id).await["code"], 202);
        }
    }
    // ~100 bytes of record per message: N of them span many 4 KiB segments, and each
    // rotation's checkpoint removes the full ones behind it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let segs = segments(&server);
        assert!(!segs.is_empty(), "the journal holds the newest segment");
        // The segment in use and the next one, prepared ahead; the full ones are gone.
        if segs.len() <= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "full segments never removed: {segs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.kill9();
    drop(a);
    server.restart();
    let mut b = Client::login(&server, "seg-after", &token).await;
    let first = b.sub_get(&grp, Some("data"), None).await;
    let stored = read_history(&mut b, &grp, first).await;
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=N as u64).collect::<Vec<_>>(),
        "every acknowledged message is back"
    );
    // The replay emptied the journal; the new process has not written to it yet.
    assert!(segments(&server).is_empty(), "{:?}", segments(&server));
}
