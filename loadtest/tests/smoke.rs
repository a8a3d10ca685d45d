//! Smoke test of the harness: runs the built `coretalk-load smoke` against the coretalk binary
//! built next to it (and the baseline peer, nats-server and mosquitto when present; the smoke
//! command skips those with a note otherwise). Asserts that every workload completed with
//! operations measured and zero protocol errors, or was reported unsupported where that is a
//! known gap of the target; coretalk's echo endpoint (W0), long polling (W5), gRPC clients
//! (W3, W4) and W6 with placed subscribers must run, and so must the WebSocket speed-of-light
//! peer (ws-sol: W1, W3 groups and p2p, W4). Never asserts a timing.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn every_workload_runs_against_every_available_target() {
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_coretalk-load"));
    let dir = harness.parent().expect("binary directory").to_owned();
    let coretalk = dir.join("coretalk");
    assert!(
        coretalk.exists(),
        "{} is missing: build the server first (cargo build --bin coretalk, or cargo test --workspace)",
        coretalk.display()
    );
    let mut cmd = Command::new(&harness);
    cmd.arg("smoke")
        .arg("--targets")
        .arg("coretalk,baseline,nats,mosquitto")
        .arg("--server-bin")
        .arg(&coretalk);
    let baseline = dir.join("coretalk-baseline");
    if baseline.exists() {
        cmd.arg("--baseline-bin").arg(&baseline);
    } else {
        println!(
            "note: {} not built; the baseline is skipped",
            baseline.display()
        );
    }
    // On a 2-core machine: server on core 0, clients on core 1 (both lists are valid anywhere).
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (server, client) = if cores >= 2 { ("0", "1") } else { ("0", "0") };
    cmd.args(["--server-cores", server, "--client-cores", client]);
    let out = cmd.output().expect("run coretalk-load smoke");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("smoke ")).collect();
    assert!(
        lines.iter().any(|l| l.contains(" coretalk: ok ")),
        "no workload ran against coretalk"
    );
    // coretalk's echo endpoint (W0), its other transports (long polling: W5; gRPC clients: W3,
    // W4) and per-shard listeners (W6 placement). The speed-of-light peers run beside coretalk:
    // http-sol (W5), ws-sol (W1, W3, W4).
    for name in [
        "W0 coretalk",
        "W5 coretalk",
        "W3GRPC coretalk",
        "W4GRPC coretalk",
        "W6PLACE coretalk",
        "W5 http-sol",
        "W1 ws-sol",
        "W3 ws-sol",
        "W3P2P ws-sol",
        "W4 ws-sol",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("smoke {name}: ok "))),
            "{name} did not run ok"
        );
    }
    for l in &lines {
        if l.contains(": skipped (") || l.contains(": unsupported (") {
            continue;
        }
        if let Some(rest) = l.split(": ok ").nth(1) {
            let field = |k: &str| -> u64 {
                rest.split_whitespace()
                    .find_map(|f| f.strip_prefix(k))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {k} in: {l}"))
            };
            assert!(field("ops=") > 0, "no operations measured: {l}");
            assert_eq!(field("errors="), 0, "protocol errors: {l}");
            continue;
        }
        if l.starts_with("smoke: ") {
            continue;
        }
        panic!("workload failed: {l}");
    }
    assert!(
        out.status.success(),
        "coretalk-load smoke exited with {}",
        out.status
    );
}
