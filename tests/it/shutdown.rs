//! Shutdown: SIGINT and SIGTERM are blocked in every thread of the server; one signal stops it
//! cleanly (`{ctrl 205}` to the sessions, status 0, the database closed); a second one right after
//! cuts the drain short (status 3) and the database is still closed with every acknowledged
//! message in it; and the deadline (`runtime.shutdown_timeout_ms`) abandons what cannot stop, here
//! a bcrypt job far longer than the deadline, and closes the database as well.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::durability::read_history;
use crate::support::{code, embedded_store, unique_login, Client, Server};

/// SIGINT and SIGTERM in a `/proc/PID/task/TID/status` `SigBlk` mask (bit N-1 is signal N).
const BOTH: u64 = (1 << (libc::SIGINT - 1)) | (1 << (libc::SIGTERM - 1));

/// Upper bound for a shutdown that must not hang (a debug build on a busy machine).
const EXIT_LIMIT: Duration = Duration::from_secs(15);

/// Every thread of `pid` with its blocked-signal mask.
fn thread_masks(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc/PID/task");
    for task in tasks {
        let dir = task.expect("task entry").path();
        // A thread may end between the listing and the read.
        let (Ok(comm), Ok(status)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("status")),
        ) else {
            continue;
        };
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .map(|m| u64::from_str_radix(m.trim(), 16).expect("hex SigBlk"))
            .expect("SigBlk line");
        out.push((comm.trim().to_owned(), mask));
    }
    out
}

fn content(i: usize) -> Value {
    json!({"i": i, "txt": format!("shutdown message {i}")})
}

/// Records the `{ctrl 202}` among `frames` that answer one of `ids` (request id → message index).
fn record_acks(frames: &[Value], ids: &HashMap<String, usize>, acked: &mut BTreeMap<u64, Value>) {
    for v in frames {
        let Some(&i) = v["ctrl"]["id"].as_str().and_then(|id| ids.get(id)) else {
            continue;
        };
        if code(v) == Some(202) {
            let seq = v["ctrl"]["params"]["seq"].as_u64().expect("seq");
            acked.insert(seq, content(i));
        }
    }
}

/// Reads the whole history of `grp` as `token`'s user and checks that every acknowledged message
/// is in it, with its content.
async fn assert_history_holds(
    server: &Server,
    token: &str,
    grp: &str,
    acked: &BTreeMap<u64, Value>,
) {
    let mut c = Client::login(server, "sd-check", token).await;
    let first = c.sub_get(grp, Some("data"), None).await;
    let stored = read_history(&mut c, grp, first).await;
    for (seq, want) in acked {
        let got = stored
            .get(seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} lost; stored: {:?}", stored.keys()));
        assert_eq!(&got["content"], want, "content of seq {seq}");
    }
}

/// Publishes to `grp` in pipelined bursts until the server closes the connection; returns every
/// acknowledged message (seq → content). `count` follows the number of acks.
async fn publish_until_closed(
    mut c: Client,
    grp: String,
    count: Arc<AtomicUsize>,
) -> BTreeMap<u64, Value> {
    // Below `session.outbound_max_frames` (512): the acks of a burst cannot overflow the queue.
    const BURST: usize = 50;
    let mut acked = BTreeMap::new();
    for burst in 0.. {
        let mut ids = HashMap::new();
        for i in burst * BURST..(burst + 1) * BURST {
            let id = c.id();
            let p = json!({"pub": {"id": id, "topic": grp, "content": content(i), "noecho": true}});
            if c.try_send_text(&p.to_string()).await.is_err() {
                return acked;
            }
            ids.insert(id, i);
        }
        let mut answered = 0;
        while answered < BURST {
            let Some(text) = c.next_frame().await else {
                return acked;
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if v["ctrl"]["id"]
                .as_str()
                .is_some_and(|id| ids.contains_key(id))
            {
                answered += 1;
            }
            record_acks(&[v], &ids, &mut acked);
            count.store(acked.len(), Ordering::Relaxed);
        }
    }
    acked
}

/// Publishes `n` messages (indexes `from..from + n`) and waits for every ack.
async fn publish_acked(c: &mut Client, grp: &str, from: usize, n: usize) -> BTreeMap<u64, Value> {
    let mut acked = BTreeMap::new();
    for i in from..from + n {
        acked.insert(c.publish(grp, content(i)).await, content(i));
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_thread_blocks_the_signals_and_one_signal_stops_cleanly() {
    let mut server = Server::start(2, "");
    let mut a = Client::connect(&server, "sd-clean").await;
    a.hi().await;
    let (_, token) = a.sign_up(&unique_login("sdclean")).await;

    let masks = thread_masks(server.pid());
    let names: Vec<&str> = masks.iter().map(|(n, _)| n.as_str()).collect();
    // Linux keeps 15 bytes of a thread name: `coretalk-shard-N` shows as `coretalk-shard-`
    // (as do glommio's helper threads of each shard).
    for want in ["coretalk-signal", "coretalk-store", "coretalk-hash-0"] {
        assert!(names.contains(&want), "no thread {want} in {names:?}");
    }
    let shards = names.iter().filter(|n| n.starts_with("coretalk-shard"));
    assert!(shards.count() >= 2, "{names:?}");
    for (name, mask) in &masks {
        // The one thread that takes them: while it sits in sigwait the kernel lifts the waited
        // signals from its mask (that is how sigwait receives them), so /proc shows them open.
        if name == "coretalk-signal" {
            continue;
        }
        assert_eq!(
            mask & BOTH,
            BOTH,
            "thread {name} does not block SIGINT and SIGTERM (SigBlk {mask:x})"
        );
    }

    server.signal(libc::SIGTERM);
    let before = a.expect_closed().await;
    assert!(
        before
            .iter()
            .any(|f| f.contains("\"code\":205") && f.contains("server shutdown")),
        "no shutdown notice before the close: {before:?}"
    );
    let status = server.wait_exit(EXIT_LIMIT);
    let log = server.log();
    assert_eq!(status.code(), Some(0), "{status}; log:\n{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    assert!(!log.contains("abandoning"), "{log}");
    if !embedded_store() {
        return; // the rest looks at the embedded store's file
    }
    assert!(server.store_closed_cleanly(), "a clean stop closes the db");

    // The control: without any shutdown path the file is not marked closed, so the check above
    // tells the two apart.
    server.restart();
    let mut b = Client::login(&server, "sd-clean-again", &token).await;
    b.create_group().await; // a durable commit after the clean open
    server.kill9();
    assert!(
        !server.store_closed_cleanly(),
        "kill -9 cannot have closed the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_keeps_every_acknowledged_message() {
    let mut server = Server::start(2, "");
    let mut a = Client::connect(&server, "sd-twice").await;
    a.hi().await;
    let (_, token) = a.sign_up(&unique_login("sdtwice")).await;
    let grp = a.create_group().await;

    // Writes keep flowing while the signals arrive.
    let count = Arc::new(AtomicUsize::new(0));
    let publisher = tokio::spawn(publish_until_closed(a, grp.clone(), count.clone()));
    let deadline = Instant::now() + EXIT_LIMIT;
    while count.load(Ordering::Relaxed) < 100 {
        assert!(Instant::now() < deadline, "publishing stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal(libc::SIGINT);
    // The second SIGINT as soon as the server has begun shutting down (two signals sent
    // back to back could merge into one pending signal).
    let (pid, log_path) = (server.pid(), server.stderr_path());
    let second = std::thread::spawn(move || {
        let deadline = Instant::now() + EXIT_LIMIT;
        while !std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("shutting down")
        {
            assert!(Instant::now() < deadline, "no 'shutting down' in the log");
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: sending a signal to our own child process by its pid.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    });
    let acked = publisher.await.expect("publisher task");
    second.join().expect("second signal sent");
    let status = server.wait_exit(EXIT_LIMIT);
    let log = server.log();
    assert_eq!(status.code(), Some(3), "{status}; log:\n{log}");
    assert!(
        log.contains("second SIGINT during shutdown: abandoning"),
        "{log}"
    );
    assert!(log.contains("store closed cleanly"), "{log}");
    assert!(
        !embedded_store() || server.store_closed_cleanly(),
        "the database is closed although the shards were abandoned"
    );
    let cut = log
        .lines()
        .find(|l| l.contains("second SIGINT"))
        .unwrap_or("");
    println!("{} acknowledged before the forced exit; {cut}", acked.len());

    server.restart();
    assert_history_holds(&server, &token, &grp, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_abandons_a_hash_job_that_cannot_finish_and_closes_the_store() {
    const RUNTIME: &str = "[runtime]\nshutdown_timeout_ms = 1000\n";
    let mut server = Server::start(2, RUNTIME);
    let mut a = Client::connect(&server, "sd-deadline").await;
    a.hi().await;
    let (_, token) = a.sign_up(&unique_login("sddead")).await;
    let grp = a.create_group().await;
    let mut acked = publish_acked(&mut a, &grp, 0, 10).await;
    drop(a);

    // bcrypt at cost 20 takes about a minute even in a release build: a sign-up now keeps the
    // only hash thread busy far past the deadline, and nothing can interrupt it.
    server.rewrite_config(&format!("[auth]\nbcrypt_cost = 20\n\n{RUNTIME}"));
    server.restart();
    let mut a = Client::login(&server, "sd-deadline-2", &token).await;
    a.sub(&grp).await;
    acked.extend(publish_acked(&mut a, &grp, 10, 10).await);
    let mut b = Client::connect(&server, "sd-slow-signup").await;
    b.hi().await;
    let id = b.id();
    let login = unique_login("sdslow");
    b.send(json!({"acc": {"id": id, "user": "new", "scheme": "basic",
        "secret": crate::support::b64(&format!("{login}:{login}-pw")), "login": true}}))
        .await;
    // The job has left the queue: the hash thread is running it.
    let (vars, ok) = server
        .wait_vars(Duration::from_secs(20), |v| {
            v["PendingAuth"].as_u64() >= Some(1) && v["HashQueued"] == 0
        })
        .await;
    assert!(ok, "the sign-up never reached the hash thread: {vars}");

    server.signal(libc::SIGTERM);
    let status = server.wait_exit(EXIT_LIMIT);
    let log = server.log();
    assert_eq!(status.code(), Some(3), "{status}; log:\n{log}");
    assert!(
        log.contains("shutdown deadline of 1000 ms (runtime.shutdown_timeout_ms) passed: abandoning the hash threads;"),
        "only the hash threads are left at the deadline: {log}"
    );
    assert!(log.contains("store closed cleanly"), "{log}");
    assert!(!embedded_store() || server.store_closed_cleanly());
    drop((a, b));

    server.restart();
    assert_history_holds(&server, &token, &grp, &acked).await;
}
