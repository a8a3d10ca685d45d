//! Helpers for the cluster tests: node processes on one shared database with short leases,
//! their membership as `/debug/vars` reports it, the node that masters a topic (computed with
//! the server's own ring), a password login, and SQL on the shared database through `psql`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{b64, Client, Server};

/// The lease and heartbeat the test nodes run with (ms): short, so a crash is noticed fast.
pub const LEASE_MS: u64 = 1_500;
pub const HEARTBEAT_MS: u64 = 300;

/// The PostgreSQL server of this run (`CORETALK_TEST_PG`), or why the test is skipped.
pub fn pg_base() -> Option<String> {
    match std::env::var("CORETALK_TEST_PG") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            eprintln!(
                "skipped: CORETALK_TEST_PG is not set (start a throw-away PostgreSQL with tests/pg.sh start DIR)"
            );
            None
        }
    }
}

/// The PostgreSQL server for a cluster test, or `None` (said) when the test is skipped: the
/// cluster tests pick their own databases, so they run in the embedded run only.
pub fn cluster_base() -> Option<String> {
    if !crate::support::embedded_store() {
        eprintln!("skipped: the cluster tests pick their own databases (embedded run only)");
        return None;
    }
    pg_base()
}

/// How long a test waits for its nodes to see each other.
pub const SETTLE: Duration = Duration::from_secs(30);

/// Two nodes, `n1` and `n2`, settled on a fresh database, each with `extra` configuration (whole
/// TOML sections); `None` (said) when the test is skipped.
pub async fn two_nodes(extra: &str) -> Option<(Server, Server)> {
    let url = crate::support::create_database(&cluster_base()?);
    let n1 = start_node_with("n1", &url, extra);
    let n2 = start_node_with("n2", &url, extra);
    wait_settled(&[&n1, &n2], 2, SETTLE).await;
    Some((n1, n2))
}

/// Starts node `name` (one shard) on the shared database `url`.
pub fn start_node(name: &str, url: &str) -> Server {
    start_node_with(name, url, "")
}

/// [`start_node`] with more configuration (`extra`: whole TOML sections).
pub fn start_node_with(name: &str, url: &str, extra: &str) -> Server {
    let toml = format!(
        "[cluster]\nnode = \"{name}\"\nlisten = \"127.0.0.1:0\"\nlease_ms = {LEASE_MS}\n\
         heartbeat_ms = {HEARTBEAT_MS}\nlink_ping_ms = 200\nlink_timeout_ms = 1000\n\
         link_backoff_max_ms = 500\n\n[limits]\nmsg_per_sec = 0\n\n{extra}"
    );
    Server::start_with_store(1, &toml, Some(url.to_owned()))
}

/// Whether `v` (a node's `/debug/vars`) shows `live` nodes up and a connected link to each
/// other one.
pub fn settled(v: &Value, live: u64) -> bool {
    let links = v["ClusterLinks"].as_object();
    v["LiveClusterNodes"] == live
        && links.is_some_and(|l| {
            l.len() as u64 == live - 1 && l.values().all(|x| x["connected"] == true)
        })
}

/// Waits until every node in `nodes` is [`settled`] with `live` nodes; returns their vars.
pub async fn wait_settled(nodes: &[&Server], live: u64, limit: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    for n in nodes {
        let (v, ok) = n.wait_vars(limit, |v| settled(v, live)).await;
        assert!(ok, "node never settled with {live} live nodes: {v}");
        out.push(v);
    }
    out
}

/// The node that masters `topic` when `up` are the nodes up.
pub fn master(topic: &str, up: &[&str]) -> String {
    coretalk::cluster::Ring::new(up)
        .get(topic)
        .expect("a non-empty ring")
        .to_owned()
}

/// `{login basic}` with the password `Client::sign_up` set; asserts 200.
pub async fn login_basic(c: &mut Client, login: &str) {
    let id = c.id();
    let secret = b64(&format!("{login}:{login}-pw"));
    c.send(json!({"login": {"id": id, "scheme": "basic", "secret": secret}}))
        .await;
    let r = c.ctrl_for(&id).await;
    assert_eq!(r["code"], 200, "login {login}: {r}");
}

/// `{sub}` of `topic`; the reply `{ctrl}`.
pub async fn sub_reply(c: &mut Client, topic: &str) -> Value {
    let frames = c.sub_get(topic, None, None).await;
    frames.last().expect("a reply")["ctrl"].clone()
}

/// Runs `sql` on the database `url` through psql; its unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let bin = std::env::var("PGBIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let out = Command::new(format!("{bin}/psql"))
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `f` every 50 ms until it holds (failing after `limit`); how long it took.
pub async fn until(what: &str, limit: Duration, f: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}
