//! W7: the cluster. coretalk on one PostgreSQL, once per layout, each on a fresh database and
//! fresh processes (one shard each, every node pinned to the server cores, so server CPU is
//! the nodes' sum on the same core budget):
//!
//! - `single`: one standalone server on PostgreSQL (the baseline);
//! - `local`: three nodes, every session on node 0, which masters the topics (what a cluster
//!   costs when nothing crosses);
//! - `remote`: three nodes; W4's publisher on node 0 (the group's master) and its subscribers
//!   on nodes 1 and 2; W3's pair creators on node 0 and their peers on nodes 1 and 2, so
//!   every delivery crosses a node link;
//! - `spread`: three nodes; sessions round-robin over them (a load balancer's placement).
//!
//! Each layout runs the W4 fan-out (one group) and then the W3 pairs (2-member groups: a group
//! lands on the node of the session that creates it). The summary gives server CPU per
//! delivery for each, and remote / local (the design's target: cross-node ≤ 1.3x same-node).

use anyhow::{anyhow, Result};

use super::w4::Layout;
use super::{split, w4, w7_cluster, Ctx};
use crate::cli::{ClusterLayout, TopicKind, W7Args};
use crate::coord::Unsupported;
use crate::msg::Role;
use crate::report::Point;
use crate::server::Tuning;

pub async fn run(ctx: &mut Ctx, a: &W7Args) -> Result<()> {
    if ctx.kind != crate::cli::TargetKind::Coretalk || a.common.attach.is_some() {
        return Err(anyhow::Error::new(Unsupported(
            "W7 starts its own coretalk cluster (no --attach, no other targets)".into(),
        )));
    }
    let base = a
        .pg
        .clone()
        .or_else(|| std::env::var("CORETALK_TEST_PG").ok())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            anyhow!("W7 needs a PostgreSQL server: --pg postgres://USER@HOST:PORT (tests/pg.sh start DIR makes one)")
        })?;
    ctx.result.summary = serde_json::json!({});
    // (layout, part, rate, cpu µs per delivery)
    let mut rows: Vec<(ClusterLayout, &'static str, f64, Option<f64>)> = Vec::new();
    for (li, &layout) in a.layouts.iter().enumerate() {
        let db = format!("w7_{}_{li}", ctx.target.run_id);
        let url = w7_cluster::create_db(&base, &db)?;
        let r = run_layout(ctx, a, layout, &url, &mut rows).await;
        ctx.stop_server();
        w7_cluster::drop_db(&base, &db);
        r?;
    }
    let cpu = |l: ClusterLayout, part: &str, rate: f64| {
        rows.iter()
            .find(|r| r.0 == l && r.1 == part && r.2 == rate)
            .and_then(|r| r.3)
    };
    let ratio = |x: ClusterLayout, y: ClusterLayout| -> Vec<serde_json::Value> {
        rows.iter()
            .filter(|r| r.0 == x)
            .filter_map(|r| {
                let (v, base) = (r.3?, cpu(y, r.1, r.2)?);
                (base > 0.0)
                    .then(|| serde_json::json!({"part": r.1, "rate": r.2, "ratio": v / base}))
            })
            .collect()
    };
    ctx.result.summary["layouts"] = rows
        .iter()
        .map(|r| serde_json::json!({"layout": r.0.name(), "part": r.1, "rate": r.2, "cpu_us_per_delivery": r.3}))
        .collect();
    ctx.result.summary["remote_vs_local"] =
        ratio(ClusterLayout::Remote, ClusterLayout::Local).into();
    ctx.result.summary["spread_vs_local"] =
        ratio(ClusterLayout::Spread, ClusterLayout::Local).into();
    ctx.result.summary["local_vs_single"] =
        ratio(ClusterLayout::Local, ClusterLayout::Single).into();
    if rows.is_empty() {
        return Err(anyhow!("no points measured"));
    }
    Ok(())
}

async fn run_layout(
    ctx: &mut Ctx,
    a: &W7Args,
    layout: ClusterLayout,
    url: &str,
    rows: &mut Vec<(ClusterLayout, &'static str, f64, Option<f64>)>,
) -> Result<()> {
    let nodes = match layout {
        ClusterLayout::Single => 0,
        _ => a.nodes.max(2),
    };
    let tuning = Tuning {
        shards: 1,
        max_subscribers: a.subscribers + 1,
        ..Default::default()
    };
    ctx.start_cluster(&tuning, url, nodes).await?;
    let n = nodes.max(1);
    // The node session `i` of a group of sessions connects to, for the layout.
    let far = |i: usize| 1 + i % (n - 1).max(1);
    if a.subscribers > 0 && !a.fanout_rate.is_empty() {
        let w4_layout = Layout {
            home: None,
            subs: (0..a.subscribers)
                .map(|i| match layout {
                    ClusterLayout::Single | ClusterLayout::Local => ctx.node_addr(0),
                    ClusterLayout::Remote => ctx.node_addr(far(i).min(n - 1)),
                    ClusterLayout::Spread => ctx.node_addr(i % n),
                })
                .collect(),
            publisher: Some(ctx.node_addr(0)),
        };
        let (mut w, k) = w4::setup(ctx, a.subscribers, a.payload, &w4_layout).await?;
        for &rate in &a.fanout_rate {
            let label = format!("{} W4 ", layout.name());
            let p = w4::point(ctx, &mut w, k, a.subscribers, rate, &label).await;
            let p = match p {
                Ok(p) => p,
                Err(e) => {
                    w.stop().await;
                    return Err(e);
                }
            };
            rows.push((layout, "w4", rate, p.cpu_us_per_op));
            push(ctx, p, layout, "w4", nodes);
        }
        w.stop().await;
    }
    if a.pairs > 0 && !a.pair_rate.is_empty() {
        let at: Vec<String> = (0..n).map(|i| ctx.node_addr(i)).collect();
        let side = |i: usize| -> (String, String) {
            match layout {
                ClusterLayout::Single | ClusterLayout::Local => (at[0].clone(), at[0].clone()),
                ClusterLayout::Remote => (at[0].clone(), at[far(i).min(n - 1)].clone()),
                ClusterLayout::Spread => (at[i % n].clone(), at[(i + 1) % n].clone()),
            }
        };
        // The pairs' accounts must not collide with the fan-out's, made earlier on the same
        // database (logins are named after the run id).
        let run_id = ctx.target.run_id.clone();
        ctx.target.run_id = format!("{run_id}p");
        let accounts = ctx.accounts(a.pairs * 2).await;
        ctx.target.run_id = run_id;
        let accounts = accounts?;
        let k = ctx.workers_for(a.pairs * 2);
        let parts = split(a.pairs, k);
        let mut specs = Vec::new();
        let mut first = 0usize;
        for (i, np) in parts.iter().enumerate() {
            let pairs = (first..first + np)
                .map(|p| (accounts[2 * p].clone(), accounts[2 * p + 1].clone()))
                .collect();
            let role = Role::Pairs {
                pairs,
                kind: TopicKind::Grp,
                first_sender: (2 * first) as u32,
                side_addrs: (first..first + np).map(side).collect(),
            };
            specs.push(ctx.spec(i, k, a.payload, role));
            first += np;
        }
        let mut w = ctx.spawn(specs, (a.pairs * 2) as u64).await?;
        for &rate in &a.pair_rate {
            let shares: Vec<f64> = parts
                .iter()
                .map(|np| rate * *np as f64 / a.pairs as f64)
                .collect();
            let label = format!("{} W3 {} pairs @{rate:.0}/s", layout.name(), a.pairs);
            let p = match ctx
                .measure(&mut w, &label, rate, &shares, "delivery", 1)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    w.stop().await;
                    return Err(e);
                }
            };
            rows.push((layout, "w3", rate, p.cpu_us_per_op));
            push(ctx, p, layout, "w3", nodes);
        }
        w.stop().await;
    }
    Ok(())
}

/// Records a point with its layout in `extra`.
fn push(ctx: &mut Ctx, mut p: Point, layout: ClusterLayout, part: &str, nodes: usize) {
    if !p.extra.is_object() {
        p.extra = serde_json::json!({});
    }
    p.extra["layout"] = layout.name().into();
    p.extra["part"] = part.into();
    p.extra["nodes"] = nodes.max(1).into();
    ctx.result.points.push(p);
}
