//! W6: cross-core fan-out. The client cannot choose which shard accepts a connection
//! (SO_REUSEPORT spreads them), so W6 is the W4 workload run once per shard count
//! (`--shards-list 1,2`), each on a fresh coretalk. Around every point the harness reads
//! `/debug/vars` (`MeshEnvelopesTotal`, `Shards`) to report mesh envelopes per published
//! message and how sessions spread over shards; the summary gives the efficiency of N shards
//! against 1: deliveries per server CPU-second, N / 1.

use anyhow::{anyhow, Result};

use super::{w4, Ctx};
use crate::cli::{TargetKind, W6Args};
use crate::coord::Unsupported;
use crate::net::get_json;
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

pub async fn run(ctx: &mut Ctx, a: &W6Args) -> Result<()> {
    if ctx.kind != TargetKind::Coretalk {
        return Err(anyhow::Error::new(Unsupported(format!(
            "W6 compares coretalk shard counts; {} has no shards (run W4 against it)",
            ctx.kind.name()
        ))));
    }
    let list: Vec<usize> = if a.common.attach.is_some() {
        vec![0]
    } else {
        a.shards_list.clone()
    };
    let mut per_shards = Vec::new();
    ctx.result.summary = serde_json::json!({});
    for &n in &list {
        ctx.start_server(&Tuning {
            shards: n,
            max_subscribers: a.subscribers + 1,
            ..Default::default()
        })?;
        let (mut w, k) = w4::setup(ctx, a.subscribers, a.payload).await?;
        let topic = ctx.result.summary["topic"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for &rate in &a.rate {
            let before = get_json(ctx.addr(), "/debug/vars").await.ok();
            let p = w4::point(
                ctx,
                &mut w,
                k,
                a.subscribers,
                rate,
                &format!("{n} shard(s) "),
            )
            .await;
            let after = get_json(ctx.addr(), "/debug/vars").await.ok();
            let mut p = match p {
                Ok(p) => p,
                Err(e) => {
                    w.stop().await;
                    return Err(e);
                }
            };
            let env =
                |v: &Option<serde_json::Value>| v.as_ref()?.get("MeshEnvelopesTotal")?.as_f64();
            let shards = after
                .as_ref()
                .and_then(|v| v.get("Shards").cloned())
                .unwrap_or(serde_json::Value::Null);
            let n_eff = shards.as_array().map(|s| s.len()).unwrap_or(n.max(1));
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
                "topic_home_shard": home,
                "sessions_per_shard": sessions,
                "remote_session_fraction": remote,
                "deliveries_per_cpu_second": per_cpu_s,
            });
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
