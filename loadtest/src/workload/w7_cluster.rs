//! W7's servers: a fresh PostgreSQL database per server run on the PostgreSQL that `--pg`
//! names (`tests/pg.sh start DIR` makes a throw-away one), and coretalk started on it either
//! standalone or as N cluster nodes (one shard each, all pinned to the server cores), waited
//! for until every node sees every other one up over a connected link. The nodes are sampled
//! as one: server CPU and RSS are their sums.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::Ctx;
use crate::net::get_json;
use crate::sample::Sampler;
use crate::server::{Server, Tuning};

/// `psql` on `url`, failing with its error text.
fn psql(url: &str, sql: &str) -> Result<String> {
    let bin = std::env::var("PGBIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let out = Command::new(format!("{bin}/psql"))
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .with_context(|| format!("run {bin}/psql"))?;
    if !out.status.success() {
        bail!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Creates database `name` on the PostgreSQL server `base` (`postgres://USER@HOST:PORT`);
/// its URL.
pub fn create_db(base: &str, name: &str) -> Result<String> {
    let base = base.trim_end_matches('/');
    psql(
        &format!("{base}/postgres"),
        &format!("CREATE DATABASE {name}"),
    )?;
    Ok(format!("{base}/{name}"))
}

/// Drops database `name` (best effort: the report does not depend on it).
pub fn drop_db(base: &str, name: &str) {
    let base = base.trim_end_matches('/');
    if let Err(e) = psql(
        &format!("{base}/postgres"),
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    ) {
        eprintln!("w7: could not drop database {name}: {e:#}");
    }
}

/// Whether a node's `/debug/vars` shows `n` nodes up and a connected link to each other one.
fn settled(v: &serde_json::Value, n: usize) -> bool {
    let links = v["ClusterLinks"].as_object();
    v["LiveClusterNodes"].as_u64() == Some(n as u64)
        && links.is_some_and(|l| l.len() + 1 == n && l.values().all(|x| x["connected"] == true))
}

impl Ctx {
    /// Starts `nodes` coretalk processes on the database `url`: one standalone server when
    /// `nodes` is 0, else cluster nodes `n0`, `n1`… (`self.server` is `n0`, the others are in
    /// `self.nodes`); returns once every node sees all of them up.
    pub async fn start_cluster(&mut self, t: &Tuning, url: &str, nodes: usize) -> Result<()> {
        self.stop_server();
        let mut started = Vec::new();
        for i in 0..nodes.max(1) {
            let tn = Tuning {
                store_url: Some(url.to_owned()),
                node: (nodes > 0).then(|| format!("n{i}")),
                ..t.clone()
            };
            let sp = self.spinner(&format!("starting coretalk node {i}"));
            let s = Server::start(self.kind, &self.common, &tn);
            sp.finish_and_clear();
            started.push(s?);
        }
        let pids: Vec<u32> = started.iter().filter_map(|s| s.info.pid).collect();
        for s in &started {
            self.result.servers.push(s.info.clone());
        }
        let mut it = started.into_iter();
        let first = it.next().ok_or_else(|| anyhow!("no server started"))?;
        self.target.addr = first.addr.to_string();
        self.server = Some(first);
        self.nodes = it.collect();
        self.sampler = Some(Sampler::start_many(pids, Duration::from_millis(250)));
        if nodes > 1 {
            self.wait_settled(nodes).await?;
        }
        Ok(())
    }

    /// The HOST:PORT of node `i` (0 is `self.server`).
    pub fn node_addr(&self, i: usize) -> String {
        match i {
            0 => self.addr().to_string(),
            _ => self.nodes[i - 1].addr.to_string(),
        }
    }

    async fn wait_settled(&self, n: usize) -> Result<()> {
        let sp = self.spinner(&format!("waiting for {n} nodes to see each other"));
        let limit = Instant::now() + Duration::from_secs(60);
        let addrs: Vec<_> = self
            .server
            .iter()
            .chain(self.nodes.iter())
            .map(|s| s.addr)
            .collect();
        for a in addrs {
            loop {
                let v = get_json(a, "/debug/vars").await.unwrap_or_default();
                if settled(&v, n) {
                    break;
                }
                if Instant::now() > limit {
                    sp.finish_and_clear();
                    bail!("node at {a} never saw {n} nodes up: {v}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        sp.finish_and_clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn settled_needs_every_link_connected() {
        let v = serde_json::json!({"LiveClusterNodes": 3,
            "ClusterLinks": {"n1": {"connected": true}, "n2": {"connected": false}}});
        assert!(!super::settled(&v, 3));
        let v = serde_json::json!({"LiveClusterNodes": 3,
            "ClusterLinks": {"n1": {"connected": true}, "n2": {"connected": true}}});
        assert!(super::settled(&v, 3));
        assert!(!super::settled(&v, 2));
    }
}
