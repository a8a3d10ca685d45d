//! The PostgreSQL store under faults, each on a throw-away PostgreSQL of its own (tests/pg.sh),
//! since they stop it: unreachable at start (a clear message, exit 1), and restarted while a
//! client publishes (every request answered, 202 or 5xx; nothing acknowledged lost; the server
//! serves again by itself). `kill -9` of coretalk on PostgreSQL is `durability.rs` in the
//! PostgreSQL run of this suite.
//!
//! They run in the embedded run of the suite only (they pick their store themselves), and need
//! PostgreSQL 15's binaries (tests/setup.sh installs them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{code, create_database, data, embedded_store, unique_login, Client, Server};

/// A PostgreSQL instance of this test's own, stopped and removed when dropped (also used by
/// `cluster_failover.rs`).
pub struct OwnPostgres {
    dir: PathBuf,
    pub base: String,
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        let dir = tempfile::Builder::new()
            .prefix("coretalk-it-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let out = pg_sh(&["start", dir.to_str().expect("utf-8 path")]);
        let base = out
            .trim()
            .strip_prefix("CORETALK_TEST_PG=")
            .unwrap_or_else(|| panic!("tests/pg.sh start printed {out:?}"))
            .to_owned();
        OwnPostgres { dir, base }
    }

    /// Stops PostgreSQL (fast: every connection is cut), waits `down`, starts it again.
    pub fn restart(&self, down: Duration) {
        pg_sh(&[
            "restart",
            self.dir.to_str().expect("utf-8 path"),
            &format!("{:.1}", down.as_secs_f64()),
        ]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new(pg_script())
            .args(["stop", self.dir.to_str().unwrap_or("")])
            .status();
    }
}

fn pg_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pg.sh")
}

fn pg_sh(args: &[&str]) -> String {
    let out = Command::new(pg_script())
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/pg.sh");
    assert!(out.status.success(), "tests/pg.sh {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn postgres_unreachable_at_start_is_a_clear_error_and_exit_1() {
    if !embedded_store() {
        return; // picks its own store; run once, in the embedded run
    }
    let port = closed_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("postgres://coretalk:secret@127.0.0.1:{port}/chat");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_coretalk"))
        .args(["--listen", "127.0.0.1:0", "--grpc-listen", "", "--data"])
        .arg(dir.path().join("data"))
        .args(["--store", &url])
        .stdin(Stdio::null())
        .output()
        .expect("run coretalk");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("cannot open the PostgreSQL store at")
            && stderr.contains(&format!("127.0.0.1:{port}")),
        "the message names the store: {stderr}"
    );
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "it never announced a listener"
    );
    // The connect timeout (5 s by default) bounds it; a refused port fails at once.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_while_publishing_loses_nothing_acknowledged_and_recovers() {
    if !embedded_store() {
        return; // picks its own store; run once, in the embedded run
    }
    let pg = OwnPostgres::start();
    let server = Server::start_with_store(
        2,
        "[limits]\nmsg_per_sec = 0\n",
        Some(create_database(&pg.base)),
    );
    let mut a = Client::connect(&server, "pgr").await;
    a.hi().await;
    let (_uid, token) = a.sign_up(&unique_login("pgr")).await;
    let grp = a.create_group().await;

    // One publisher, a window of requests in flight; PostgreSQL restarts under it.
    const WINDOW: usize = 8;
    let restart_at = 100;
    let mut acked: BTreeMap<u64, Value> = BTreeMap::new();
    let mut failed = 0usize;
    let mut in_flight: Vec<(String, Value)> = Vec::new();
    let mut sent = 0usize;
    let mut restarter = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    // After the restart, publishing must succeed again by itself: stop after 50 successes
    // that follow the restart.
    let mut acked_after_restart = 0usize;
    while acked_after_restart < 50 {
        assert!(
            Instant::now() < deadline,
            "no recovery: {} acked, {failed} failed",
            acked.len()
        );
        while in_flight.len() < WINDOW {
            let content = json!({"n": sent});
            let id = a.publish_nowait(&grp, content.clone(), true).await;
            in_flight.push((id, content));
            sent += 1;
        }
        let (id, content) = in_flight.remove(0);
        let c = a.ctrl_for(&id).await;
        let code = c["code"].as_u64().expect("code");
        match code {
            202 => {
                let seq = c["params"]["seq"].as_u64().expect("seq");
                assert!(
                    acked.insert(seq, content).is_none(),
                    "seq {seq} acked twice"
                );
                if restarter
                    .as_ref()
                    .is_some_and(|h: &std::thread::JoinHandle<()>| h.is_finished())
                {
                    acked_after_restart += 1;
                }
            }
            // The outage: a clear server error, never a client error nor silence.
            500..=599 => {
                assert!(
                    c["text"].as_str().is_some_and(|t| !t.is_empty()),
                    "an error with a text: {c}"
                );
                failed += 1;
                // Do not spin on a dead database.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => panic!("unexpected reply during the restart: {c}"),
        }
        if sent == restart_at {
            let dir = pg.dir.clone();
            restarter = Some(std::thread::spawn(move || {
                let p = OwnPostgres {
                    dir,
                    base: String::new(),
                };
                p.restart(Duration::from_millis(1500));
                std::mem::forget(p); // the test's own handle stops it
            }));
        }
    }
    for (id, _) in in_flight.drain(..) {
        let _ = a.ctrl_for(&id).await;
    }
    restarter
        .expect("restarted")
        .join()
        .expect("restart thread");
    drop(a);

    // Everything acknowledged is stored, content and all; reads work again too.
    let mut b = Client::login(&server, "pgr-after", &token).await;
    let stored = history(&mut b, &grp).await;
    for (seq, content) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(content),
            "acknowledged seq {seq} lost or changed ({failed} requests failed during the outage)"
        );
    }
    eprintln!(
        "postgres restart: {} acknowledged, {failed} refused with 5xx during the outage",
        acked.len()
    );
}

/// Every stored message of `grp` (seq → content), read newest first page by page. Seqs taken
/// by requests that failed during the outage are gaps here.
async fn history(c: &mut Client, grp: &str) -> BTreeMap<u64, Value> {
    let mut all = BTreeMap::new();
    let mut page = c.sub_get(grp, Some("data"), None).await;
    loop {
        let last = page.last().expect("a reply").clone();
        let seqs: Vec<u64> = page
            .iter()
            .filter_map(data)
            .map(|d| {
                let seq = d["seq"].as_u64().expect("seq");
                assert!(
                    all.insert(seq, d["content"].clone()).is_none(),
                    "seq {seq} twice"
                );
                seq
            })
            .collect();
        let Some(&oldest) = seqs.iter().min() else {
            assert_eq!(code(&last), Some(204), "the end of history: {last}");
            return all;
        };
        assert_eq!(code(&last), Some(208), "a page ends with ctrl 208: {last}");
        page = c.get(grp, "data", Some(json!({ "before": oldest }))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_applies_the_schema_once_and_the_server_starts_on_it() {
    if !embedded_store() {
        return; // picks its own store; run once, in the embedded run
    }
    // The suite's shared instance when there is one, else one of our own.
    let own;
    let base = match std::env::var("CORETALK_TEST_PG") {
        Ok(b) => b,
        Err(_) => {
            own = OwnPostgres::start();
            own.base.clone()
        }
    };
    let url = create_database(&base);
    let migrate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_coretalk"))
            .args(["migrate", "--store", &url])
            .output()
            .expect("run coretalk migrate");
        assert!(
            out.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = migrate();
    assert!(
        first.contains("migrated from version 0 to"),
        "first run: {first}"
    );
    let second = migrate();
    assert!(second.contains("nothing to do"), "second run: {second}");

    // The server finds nothing left to migrate and works on the schema.
    let server = Server::start_with_store(1, "", Some(url));
    let mut a = Client::connect(&server, "mig").await;
    a.hi().await;
    a.sign_up(&unique_login("mig")).await;
    let grp = a.create_group().await;
    assert_eq!(a.publish(&grp, json!("after migrate")).await, 1);
}
