//! `coretalk-load compare <workload> …`: runs the same workload against coretalk and then
//! each peer in `--peers` (one after another, each on a freshly started server), and prints
//! coretalk / peer ratios of throughput, server CPU-µs per operation and p50/p99 latency.
//! A peer that is not installed or does not support the workload is skipped with a note.
//! Ratios over a speed-of-light peer (`ws-sol`, `http-sol`) are labelled as coretalk's cost
//! over the speed of light.

use anyhow::Result;
use serde::Serialize;

use crate::cli::{TargetKind, Workload};
use crate::report::{self, RunResult, Status};

#[derive(Serialize)]
struct Ratio {
    peer: String,
    /// The peer is the harness's speed-of-light peer: the ratios are coretalk's cost over it.
    speed_of_light: bool,
    throughput: Option<f64>,
    cpu_us_per_op: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
}

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn installed(k: TargetKind) -> bool {
    let prog = match k {
        TargetKind::Nats => "nats-server",
        TargetKind::Mosquitto => "mosquitto",
        _ => return true,
    };
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub async fn run(w: &Workload) -> Result<u8> {
    let mut targets: Vec<TargetKind> = w
        .common()
        .peers
        .split(',')
        .filter_map(TargetKind::parse)
        .collect();
    if !targets.contains(&TargetKind::Coretalk) {
        targets.insert(0, TargetKind::Coretalk);
    }
    let mut results: Vec<RunResult> = Vec::new();
    for t in targets {
        if !installed(t) {
            eprintln!("compare: skipping {}: not installed", t.name());
            continue;
        }
        let mut wl = w.clone();
        wl.common_mut().target = t;
        wl.common_mut().attach = None;
        let mut r = crate::workload::run(&wl).await;
        println!("{}", report::table(&r));
        if !w.common().no_results {
            if let Ok(d) = report::write_dir(&mut r, &crate::results_base(w.common())) {
                println!("results: {}", d.display());
            }
        }
        results.push(r);
    }
    let ours = results
        .iter()
        .find(|r| r.target == "coretalk" && r.status == Status::Ok);
    let mut ratios = Vec::new();
    println!(
        "\n{} ratios, coretalk / peer (best point of each; higher throughput and lower cpu/latency favour coretalk):",
        w.id().to_uppercase()
    );
    println!(
        "{:<12} {:>11} {:>11} {:>8} {:>8}",
        "peer", "throughput", "cpu µs/op", "p50", "p99"
    );
    for r in &results {
        if r.target == "coretalk" {
            continue;
        }
        if r.status != Status::Ok {
            println!("{:<12} {:?}: {}", r.target, r.status, r.message);
            continue;
        }
        let (Some(a), Some(b)) = (ours.and_then(|o| o.best()), r.best()) else {
            continue;
        };
        let sol = TargetKind::parse(&r.target).is_some_and(|k| k.is_sol());
        let ratio = Ratio {
            peer: r.target.clone(),
            speed_of_light: sol,
            throughput: div(Some(a.ops_per_s), Some(b.ops_per_s)),
            cpu_us_per_op: div(a.cpu_us_per_op, b.cpu_us_per_op),
            p50: div(Some(a.latency.p50_us), Some(b.latency.p50_us)),
            p99: div(Some(a.latency.p99_us), Some(b.latency.p99_us)),
        };
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}x")).unwrap_or_else(|| "-".into());
        println!(
            "{:<12} {:>11} {:>11} {:>8} {:>8}{}",
            ratio.peer,
            f(ratio.throughput),
            f(ratio.cpu_us_per_op),
            f(ratio.p50),
            f(ratio.p99),
            if sol {
                "   <- cost over the speed of light"
            } else {
                ""
            }
        );
        ratios.push(ratio);
    }
    if ratios.iter().any(|r| r.speed_of_light) {
        println!(
            "(a speed-of-light peer moves the same frames over the same sockets and does nothing \
             else: its row is coretalk's cost over the speed of light, the most any server could \
             gain on this machine; cpu µs/op 3.00x = coretalk spends 3 times the floor)"
        );
    }
    if !w.common().no_results {
        let base = crate::results_base(w.common());
        let dir = base.join(format!(
            "{}-{}-compare",
            report::utc_stamp(std::time::SystemTime::now(), false),
            w.id()
        ));
        std::fs::create_dir_all(&dir)?;
        let runs: Vec<_> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "target": r.target,
                    "status": r.status,
                    "message": r.message,
                    "dir": r.dir.as_ref().map(|d| d.display().to_string()),
                })
            })
            .collect();
        std::fs::write(
            dir.join("compare.json"),
            serde_json::to_string_pretty(&serde_json::json!({
                "workload": w.id(),
                "runs": runs,
                "ratios_coretalk_over_peer": ratios,
            }))?,
        )?;
        println!("compare: {}", dir.display());
    }
    Ok(if ours.is_some() { 0 } else { 1 })
}
