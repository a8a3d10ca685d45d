//! Churn: for `minutes`, clients connect and drop abruptly at every point of a session's life
//! (the stages of [`super::churn_client::Stage`]: mid-HTTP-head, after the upgrade, after
//! `{hi}`, mid-login, after login, after `{sub me}`, after a group join, mid-publish, and with
//! long polling a bare session and one dropped mid-poll), `rate` cycles a second.
//!
//! Before the churn the parent creates the accounts and groups, waits for the server's tables
//! to settle (no sessions, topics unloaded) and takes that as the baseline: live topics and RSS.
//! After it, it waits (up to `settle_max` seconds: abandoned long-poll sessions live
//! `session.detached_idle_ms`, idle topics unload after `topic.idle_unload_ms`) for the tables
//! to come back: 0 sessions, 0 attachments, no topic beyond the baseline. The run fails when
//! they do not, or when a cycle failed before its stage; RSS after the settle is reported next
//! to the baseline (failing the run only with `--fail-on-rss`).

use std::time::Duration;

use anyhow::{bail, Result};

use super::series::{self, Recorder, Tables};
use super::Ctx;
use crate::cli::ChurnArgs;
use crate::msg::Role;
use crate::schedule::now_ns;
use crate::server::Tuning;

/// Polls the tables until they are back at the baseline (`topics` live topics at most, no
/// session, attachment or pending authentication), three readings in a row; gives up after
/// `max_s`. Returns the last reading, whether it was settled, and the seconds waited.
async fn settle(ctx: &Ctx, topics: Option<u64>, max_s: f64) -> Result<(Tables, bool, f64)> {
    let t0 = now_ns();
    let mut calm = 0;
    let mut last_topics = None;
    loop {
        let t = series::tables(ctx.addr()).await?;
        let base = match topics {
            Some(n) => t.topics <= n,
            // The baseline itself: topic count steady (idle topics have unloaded).
            None => last_topics == Some(t.topics),
        };
        last_topics = Some(t.topics);
        let empty = t.sessions == 0 && t.attachments == 0 && t.pending_auth == 0 && base;
        calm = if empty { calm + 1 } else { 0 };
        let waited = (now_ns() - t0) as f64 / 1e9;
        if calm >= 3 || waited > max_s {
            return Ok((t, calm >= 3, waited));
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// Mean RSS over the next three seconds, KiB.
async fn rss_now(ctx: &Ctx) -> Option<f64> {
    let t0 = now_ns();
    series::sleep_past(Duration::from_secs(3)).await;
    ctx.sampler.as_ref()?.mean_rss(t0, now_ns())
}

pub async fn run(ctx: &mut Ctx, a: &ChurnArgs) -> Result<()> {
    ctx.start_server(&Tuning {
        shards: a.common.shards,
        max_subscribers: a.accounts + 1,
        detached_idle_ms: a.lp_expiry_ms,
        ..Default::default()
    })?;
    let t_start = now_ns();
    let rec = Recorder::start(ctx.addr(), Duration::from_secs(5));
    let r = churn(ctx, a).await;
    let rows = rec.stop();
    ctx.result.files.push((
        "series.csv".into(),
        series::csv(&rows, ctx.sampler.as_ref(), t_start),
    ));
    r
}

async fn churn(ctx: &mut Ctx, a: &ChurnArgs) -> Result<()> {
    let accounts = ctx.accounts(a.accounts.max(1) + 1).await?;
    let mut groups = Vec::new();
    for _ in 0..a.groups.max(1) {
        groups.push(super::w4::make_topic(ctx, &accounts[0]).await?);
    }
    // Idle topics unload after 4 s (the reference's delay); wait for them.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (base, ok, _) = settle(ctx, None, 60.0).await?;
    if !ok {
        bail!("the server did not settle before the churn: {base:?}");
    }
    let rss_base = rss_now(ctx).await;
    let k = ctx.common.clients.unwrap_or(1).max(1);
    let specs = (0..k)
        .map(|i| {
            ctx.spec(
                i,
                k,
                0,
                Role::Churn {
                    accounts: accounts[1..].to_vec(),
                    groups: groups.clone(),
                    concurrency: a.concurrency,
                    hold_ms: a.hold_ms,
                    lp: !a.no_lp,
                },
            )
        })
        .collect();
    let mut w = ctx.spawn(specs, 0).await?;
    ctx.common.duration = a.minutes * 60.0;
    ctx.common.warmup = 0.0;
    let shares = vec![a.rate / k as f64; k];
    let t_churn = now_ns();
    let label = format!("churn {} min @{}/s", a.minutes, a.rate);
    let p = ctx
        .measure(&mut w, &label, a.rate, &shares, "cycle", 1)
        .await;
    w.stop().await;
    let mut p = p?;
    let t_end = now_ns();
    let peak = ctx
        .sampler
        .as_ref()
        .and_then(|s| s.between(t_churn, t_end).iter().map(|x| x.rss_kib).max());
    let (after, settled, waited) = settle(ctx, Some(base.topics), a.settle_max).await?;
    // Let the allocator return what it frees lazily, then read RSS.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_after = rss_now(ctx).await;
    let heap_after = series::tables(ctx.addr())
        .await
        .ok()
        .map(|t| t.heap_committed);
    let mut per_stage = serde_json::Map::new();
    // The workers' per-stage counters are summed by the parent from their Done events.
    if let Some(x) = p.extra.as_object() {
        per_stage = x.clone();
    }
    let excess_mib = rss_base.zip(rss_after).map(|(b, e)| (e - b) / 1024.0);
    let rss_ok = excess_mib.is_none_or(|x| x <= a.rss_margin_mib);
    ctx.result.summary = serde_json::json!({
        "minutes": a.minutes,
        "rate": a.rate,
        "cycles": p.sent,
        "cycles_done": p.ops,
        "errors": p.errors,
        "per_stage": per_stage,
        "baseline": base,
        "after_settle": after,
        "tables_empty": settled,
        "settle_s": waited,
        "rss_baseline_kib": rss_base,
        "rss_peak_kib": peak,
        "rss_after_kib": rss_after,
        "rss_excess_mib": excess_mib,
        "rss_margin_mib": a.rss_margin_mib,
        "rss_within_margin": rss_ok,
        "heap_committed_baseline": base.heap_committed,
        "heap_committed_after": heap_after,
    });
    p.extra = serde_json::json!({ "tables_empty": settled });
    let errors = p.errors;
    ctx.result.points.push(p);
    if !settled {
        bail!("tables not empty {waited:.0} s after the churn: {after:?} (baseline {base:?})");
    }
    if errors > 0 {
        bail!("{errors} churn cycles failed before their stage");
    }
    if a.fail_on_rss && !rss_ok {
        bail!(
            "RSS {:.1} MiB over the baseline after the settle (margin {} MiB)",
            excess_mib.unwrap_or(0.0),
            a.rss_margin_mib
        );
    }
    Ok(())
}
