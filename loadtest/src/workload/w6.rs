//! W6: cross-core fan-out, two ways.
//!
//! - The shard-count sweep (`--shards-list 1,2`): the W4 workload once per shard count, each on
//!   a fresh coretalk, its sessions placed by SO_REUSEPORT; the summary gives the efficiency of
//!   N shards against 1 (deliveries per server CPU-second, N / 1).
//! - Placement (`--placement local,remote,split`): one 2-shard run per placement, each on a
//!   fresh coretalk with a listener per shard (`listen.shard_ports`), the group homed on shard 0
//!   (groups are made until one hashes there) and the publisher on shard 0; the subscribers all
//!   on shard 0 (local), all on shard 1 (remote) or alternating (split). The summary gives server
//!   CPU per delivery for each and remote / local (the design's target: ≤ 1.1).
//!
//! Around every point the harness reads `/debug/vars` (`MeshEnvelopesTotal`, `Shards`) to
//! report mesh envelopes per published message and where the sessions are.

use anyhow::{anyhow, Result};

use super::w4::Layout;
use super::{w4, Ctx};
use crate::cli::{Placement, TargetKind, W6Args};
use crate::coord::{Unsupported, Workers};
use crate::net::get_json;
use crate::report::Point;
use crate::server::Tuning;

/// The topic's home shard, as coretalk computes it (FNV-1a 64 of the routing name, modulo
/// the shard count).
pub fn home_shard(topic: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % n.max(1) as u64) as usize
}

/// The shards of a placement run.
const PLACED_SHARDS: usize = 2;

pub async fn run(ctx: &mut Ctx, a: &W6Args) -> Result<()> {
    if ctx.kind != TargetKind::Coretalk {
        return Err(anyhow::Error::new(Unsupported(format!(
            "W6 compares coretalk shard counts; {} has no shards (run W4 against it)",
            ctx.kind.name()
        ))));
    }
    ctx.result.summary = serde_json::json!({});
    if !a.placement.is_empty() {
        return placed(ctx, a).await;
    }
    let list: Vec<usize> = if a.common.attach.is_some() {
        vec![0]
    } else {
        a.shards_list.clone()
    };
    let mut per_shards = Vec::new();
    for &n in &list {
        ctx.start_server(&Tuning {
            shards: n,
            max_subscribers: a.subscribers + 1,
            ..Default::default()
        })?;
        let (mut w, k) = w4::setup(ctx, a.subscribers, a.payload, &Layout::default()).await?;
        for &rate in &a.rate {
            let p = match point(ctx, &mut w, k, a, rate, &format!("{n} shard(s) ")).await {
                Ok(p) => p,
                Err(e) => {
                    w.stop().await;
                    return Err(e);
                }
            };
            let n_eff = p.extra["shards"].as_u64().unwrap_or(n.max(1) as u64) as usize;
            let per_cpu_s = p.extra["deliveries_per_cpu_second"].as_f64();
            per_shards.push((n_eff, rate, per_cpu_s, p.ops_per_s));
            ctx.result.points.push(p);
        }
        w.stop().await;
        ctx.stop_server();
    }
    let base = per_shards.iter().find(|x| x.0 == 1).cloned();
    let eff: Vec<serde_json::Value> = per_shards
        .iter()
        .filter(|x| x.0 != 1)
        .filter_map(|x| {
            let b = base.filter(|b| b.1 == x.1)?;
            Some(serde_json::json!({
                "shards": x.0,
                "rate": x.1,
                "efficiency_per_cpu": x.2.zip(b.2).map(|(n, one)| n / one),
                "throughput_ratio": (b.3 > 0.0).then(|| x.3 / b.3),
            }))
        })
        .collect();
    ctx.result.summary["efficiency_vs_1_shard"] = serde_json::Value::Array(eff);
    if per_shards.is_empty() {
        return Err(anyhow!("no points measured"));
    }
    Ok(())
}

/// The placement runs: one fresh 2-shard server per placement.
async fn placed(ctx: &mut Ctx, a: &W6Args) -> Result<()> {
    if a.common.attach.is_some() {
        return Err(anyhow!(
            "--placement starts its own servers (a listener per shard): drop --attach"
        ));
    }
    // (placement, rate, server CPU µs per delivery)
    let mut rows: Vec<(Placement, f64, Option<f64>)> = Vec::new();
    for &pl in &a.placement {
        ctx.start_server(&Tuning {
            shards: PLACED_SHARDS,
            max_subscribers: a.subscribers + 1,
            shard_ports: true,
            ..Default::default()
        })?;
        let shard_addrs = ctx
            .server
            .as_ref()
            .map(|s| s.shard_addrs.clone())
            .unwrap_or_default();
        if shard_addrs.len() != PLACED_SHARDS {
            return Err(anyhow!("the server announced no per-shard listeners"));
        }
        let layout = Layout {
            home: Some((0, PLACED_SHARDS)),
            subs: (0..a.subscribers)
                .map(|i| shard_addrs[pl.shard_of(i)].to_string())
                .collect(),
            publisher: Some(shard_addrs[0].to_string()),
        };
        let (mut w, k) = w4::setup(ctx, a.subscribers, a.payload, &layout).await?;
        for &rate in &a.rate {
            let mut p = match point(ctx, &mut w, k, a, rate, &format!("{} ", pl.name())).await {
                Ok(p) => p,
                Err(e) => {
                    w.stop().await;
                    return Err(e);
                }
            };
            p.extra["placement"] = serde_json::Value::String(pl.name().into());
            rows.push((pl, rate, p.cpu_us_per_op));
            ctx.result.points.push(p);
        }
        w.stop().await;
        ctx.stop_server();
    }
    let cpu = |pl: Placement, rate: f64| {
        rows.iter()
            .find(|r| r.0 == pl && r.1 == rate)
            .and_then(|r| r.2)
    };
    let ratio = |pl: Placement| -> Vec<serde_json::Value> {
        a.rate
            .iter()
            .filter_map(|&rate| {
                let (x, local) = (cpu(pl, rate)?, cpu(Placement::Local, rate)?);
                (local > 0.0).then(|| serde_json::json!({ "rate": rate, "ratio": x / local }))
            })
            .collect()
    };
    ctx.result.summary["placement"] = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "placement": r.0.name(),
                "rate": r.1,
                "cpu_us_per_delivery": r.2,
            })
        })
        .collect();
    ctx.result.summary["remote_vs_local"] = ratio(Placement::Remote).into();
    ctx.result.summary["split_vs_local"] = ratio(Placement::Split).into();
    if rows.is_empty() {
        return Err(anyhow!("no points measured"));
    }
    Ok(())
}

/// One W4 point with the mesh and placement figures in `extra`. On error the caller stops
/// the workers.
async fn point(
    ctx: &mut Ctx,
    w: &mut Workers,
    k: usize,
    a: &W6Args,
    rate: f64,
    label_prefix: &str,
) -> Result<Point> {
    let topic = ctx.result.summary["topic"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let before = get_json(ctx.addr(), "/debug/vars").await.ok();
    let mut p = w4::point(ctx, w, k, a.subscribers, rate, label_prefix).await?;
    let after = get_json(ctx.addr(), "/debug/vars").await.ok();
    let env = |v: &Option<serde_json::Value>| v.as_ref()?.get("MeshEnvelopesTotal")?.as_f64();
    let rings = |v: &Option<serde_json::Value>| v.as_ref()?.get("MeshRingsTotal")?.as_f64();
    let hops = rings(&after)
        .zip(rings(&before))
        .map(|(b, a)| b - a)
        .filter(|_| p.sent_total > 0)
        .map(|d| d / p.sent_total as f64);
    let shards = after
        .as_ref()
        .and_then(|v| v.get("Shards").cloned())
        .unwrap_or(serde_json::Value::Null);
    let n_eff = shards.as_array().map(|s| s.len()).unwrap_or(1).max(1);
    let home = home_shard(&topic, n_eff);
    let delta = env(&after).zip(env(&before)).map(|(b, a)| b - a);
    let per_msg = delta
        .filter(|_| p.sent_total > 0)
        .map(|d| d / p.sent_total as f64);
    let sessions: Vec<f64> = shards
        .as_array()
        .map(|s| {
            s.iter()
                .map(|x| x["sessions"].as_f64().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default();
    let total: f64 = sessions.iter().sum();
    let remote =
        (total > 0.0).then(|| (total - sessions.get(home).copied().unwrap_or(0.0)) / total);
    let per_cpu_s = p
        .server_cpu_us
        .filter(|c| *c > 0.0)
        .map(|c| p.ops as f64 / (c / 1e6));
    p.extra = serde_json::json!({
        "shards": n_eff,
        "mesh_envelopes": delta,
        "envelopes_per_message": per_msg,
        "hops_per_message": hops,
        "topic_home_shard": home,
        "sessions_per_shard": sessions,
        "remote_session_fraction": remote,
        "deliveries_per_cpu_second": per_cpu_s,
    });
    Ok(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn home_shard_is_fnv1a() {
        // FNV-1a 64 of "" is the offset basis.
        assert_eq!(
            super::home_shard("", 7),
            (0xcbf2_9ce4_8422_2325u64 % 7) as usize
        );
        assert_eq!(super::home_shard("grpX", 1), 0);
    }
}
