//! `coretalk-load smoke`: every workload for ~1-2 s with tiny sizes against each target, one
//! line per (workload, target): `ok` (operations measured, no errors), `unsupported` (a known
//! gap of that target, e.g. long polling on the baseline), `skipped` (peer not installed) or
//! `FAILED`. Exit status 1 if anything failed. With coretalk among the targets, the
//! speed-of-light peers run beside it: http-sol for W5, ws-sol for W1, W3 (groups and p2p) and
//! W4. The integration test `tests/smoke.rs` runs it.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command, SmokeArgs, TargetKind, Workload};
use crate::report::{self, Status};

/// Workload arguments of a smoke run (besides the common ones).
fn args_for(w: &str, target: TargetKind) -> Vec<String> {
    let v: &[&str] = match w {
        "w0" => &["--connections", "8", "--rate", "400", "--payload", "20"],
        "w1" => &["--steps", "20,50", "--settle", "0.5"],
        "w2" => &["--rate", "100", "--accounts", "10"],
        "w3" => &["--pairs", "8", "--rate", "400", "--topic-kind", "grp"],
        "w3grpc" => &[
            "--pairs",
            "8",
            "--rate",
            "400",
            "--topic-kind",
            "grp",
            "--transport",
            "grpc",
        ],
        "w3p2p" => &["--pairs", "8", "--rate", "400", "--topic-kind", "p2p"],
        "w4" => &["--subscribers", "16", "--rate", "200"],
        "w4grpc" => &[
            "--subscribers",
            "16",
            "--rate",
            "200",
            "--transport",
            "grpc",
        ],
        "w5" => &["--sessions", "4", "--rate", "200"],
        "w5close" => &["--sessions", "4", "--rate", "200", "--http-close"],
        "w6" => &[
            "--subscribers",
            "16",
            "--rate",
            "200",
            "--shards-list",
            "1,2",
        ],
        "w6place" => &[
            "--subscribers",
            "16",
            "--rate",
            "200",
            "--placement",
            "local,remote",
        ],
        _ => &[],
    };
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    if w.starts_with("w5") {
        out.extend(["--transport".into(), "lp".into()]);
    }
    let _ = target;
    out
}

/// Combinations allowed to be unsupported (known gaps, documented in the README).
fn may_be_unsupported(w: &str, t: TargetKind) -> bool {
    match w {
        "w0" => t == TargetKind::WsSol,
        "w5" => !matches!(t, TargetKind::HttpSol | TargetKind::Coretalk),
        "w6" => t != TargetKind::Coretalk,
        "w3p2p" => t.is_tinode() && t != TargetKind::WsSol,
        _ => false,
    }
}

fn have(prog: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub async fn run(a: &SmokeArgs) -> Result<u8> {
    let mut plan: Vec<(String, TargetKind)> = Vec::new();
    for t in &a.targets {
        let Some(k) = TargetKind::parse(t) else {
            eprintln!("smoke: unknown target {t}");
            return Ok(2);
        };
        for w in &a.workloads {
            let w = w.to_lowercase();
            plan.push((w.clone(), k));
            // p2p is being added to coretalk: smoke it there (unsupported until it lands).
            if w == "w3" && matches!(k, TargetKind::Coretalk | TargetKind::WsSol) {
                plan.push(("w3p2p".into(), k));
            }
            // coretalk's gRPC transport: W3 and W4 with gRPC clients.
            if (w == "w3" || w == "w4") && k == TargetKind::Coretalk {
                plan.push((format!("{w}grpc"), k));
            }
            // W6 with the subscribers placed on chosen shards (per-shard listeners).
            if w == "w6" && k == TargetKind::Coretalk {
                plan.push(("w6place".into(), k));
            }
        }
        if k == TargetKind::Coretalk && a.workloads.iter().any(|w| w.eq_ignore_ascii_case("w5")) {
            plan.push(("w5".into(), TargetKind::HttpSol));
            plan.push(("w5close".into(), TargetKind::HttpSol));
        }
        // The WebSocket speed of light beside coretalk (unless it is a target of its own).
        let ws_sol_listed = a
            .targets
            .iter()
            .any(|t| TargetKind::parse(t) == Some(TargetKind::WsSol));
        if k == TargetKind::Coretalk && !ws_sol_listed {
            for w in &a.workloads {
                let w = w.to_lowercase();
                if matches!(w.as_str(), "w1" | "w3" | "w4") {
                    plan.push((w.clone(), TargetKind::WsSol));
                }
                if w == "w3" {
                    plan.push(("w3p2p".into(), TargetKind::WsSol));
                }
            }
        }
    }
    let (mut ok, mut unsup, mut skipped, mut failed) = (0, 0, 0, 0);
    for (w, k) in plan {
        let name = format!("{} {}", w.to_uppercase(), k.name());
        let skip = match k {
            TargetKind::Nats if !have("nats-server") => Some("nats-server not installed"),
            TargetKind::Mosquitto if !have("mosquitto") => Some("mosquitto not installed"),
            TargetKind::Baseline
                if crate::server::find_bin(a.baseline_bin.as_deref(), "coretalk-baseline")
                    .is_err() =>
            {
                Some("coretalk-baseline not built")
            }
            _ => None,
        };
        if let Some(why) = skip {
            println!("smoke {name}: skipped ({why})");
            skipped += 1;
            continue;
        }
        let sub = &w[..2];
        let mut argv: Vec<String> = vec!["coretalk-load".into(), sub.into()];
        argv.extend(args_for(&w, k));
        argv.extend(
            [
                "--target",
                k.name(),
                "--duration",
                "0.8",
                "--warmup",
                "0.2",
                "--drain",
                "1",
                "--smoke",
                "--server-cores",
                &a.server_cores,
                "--client-cores",
                &a.client_cores,
            ]
            .map(String::from),
        );
        if let Some(p) = &a.server_bin {
            argv.extend(["--server-bin".into(), p.display().to_string()]);
        }
        if let Some(p) = &a.baseline_bin {
            argv.extend(["--baseline-bin".into(), p.display().to_string()]);
        }
        match &a.results_dir {
            Some(d) => argv.extend(["--results-dir".into(), d.display().to_string()]),
            None => argv.push("--no-results".into()),
        }
        let cli = Cli::try_parse_from(&argv)?;
        let wl = match cli.cmd {
            Command::W0(x) => Workload::W0(x),
            Command::W1(x) => Workload::W1(x),
            Command::W2(x) => Workload::W2(x),
            Command::W3(x) => Workload::W3(x),
            Command::W4(x) => Workload::W4(x),
            Command::W5(x) => Workload::W5(x),
            Command::W6(x) => Workload::W6(x),
            Command::Soak(x) => Workload::Soak(x),
            Command::Churn(x) => Workload::Churn(x),
            _ => unreachable!("smoke builds workload commands only"),
        };
        let t0 = std::time::Instant::now();
        let mut r = crate::workload::run(&wl).await;
        if let Some(d) = &a.results_dir {
            let _ = report::write_dir(&mut r, &PathBuf::from(d));
        }
        let secs = t0.elapsed().as_secs_f64();
        let ops: u64 = r.points.iter().map(|p| p.ops).sum();
        let errors: u64 = r.points.iter().map(|p| p.errors).sum();
        let drops: u64 = r.points.iter().map(|p| p.drops).sum();
        match r.status {
            Status::Ok if ops > 0 && errors == 0 && !r.points.is_empty() => {
                println!(
                    "smoke {name}: ok ops={ops} errors=0 drops={drops} points={} ({secs:.1} s)",
                    r.points.len()
                );
                ok += 1;
            }
            Status::Unsupported if may_be_unsupported(&w, k) => {
                println!("smoke {name}: unsupported ({}) ({secs:.1} s)", r.message);
                unsup += 1;
            }
            _ => {
                let samples: Vec<String> = r
                    .points
                    .iter()
                    .flat_map(|p| p.error_samples.iter().cloned())
                    .take(4)
                    .collect();
                println!(
                    "smoke {name}: FAILED status={:?} ops={ops} errors={errors} {} {:?} ({secs:.1} s)",
                    r.status, r.message, samples
                );
                failed += 1;
            }
        }
    }
    println!("smoke: {ok} ok, {unsup} unsupported, {skipped} skipped, {failed} failed");
    Ok(if failed > 0 { 1 } else { 0 })
}
