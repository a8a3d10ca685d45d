//! Short forms of the soak and churn modes against the coretalk binary built next to the
//! harness: a few hundred sessions held ~10 s under the light group load (every delivery
//! arrives once, no error, every session still live at the end), and ~10 s of abrupt drops at
//! every stage of a session's life, long polling included (every stage reached, no error, and
//! the server's session and topic tables back at the baseline afterwards). Never asserts a
//! timing or a memory figure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bins() -> (PathBuf, PathBuf) {
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_coretalk-load"));
    let coretalk = harness.parent().expect("binary directory").join("coretalk");
    assert!(
        coretalk.exists(),
        "{} is missing: build the server first (cargo build --bin coretalk, or cargo test --workspace)",
        coretalk.display()
    );
    (harness, coretalk)
}

/// Runs the harness with `args` into a fresh results directory; returns `result.json`.
fn run(name: &str, args: &[&str]) -> serde_json::Value {
    let (harness, coretalk) = bins();
    let dir =
        std::env::temp_dir().join(format!("coretalk-load-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (server, client) = if cores >= 2 { ("0", "1") } else { ("0", "0") };
    let out = Command::new(&harness)
        .arg(name)
        .args(args)
        .args(["--server-bin", coretalk.to_str().expect("utf-8 path")])
        .args(["--server-cores", server, "--client-cores", client])
        .arg("--results-dir")
        .arg(&dir)
        .output()
        .expect("run coretalk-load");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let result = find_result(&dir).expect("a results directory");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).expect("result.json"))
            .expect("json");
    assert!(
        result.with_file_name("series.csv").exists(),
        "no series.csv"
    );
    assert!(
        out.status.success(),
        "{name} exited with {}: {}",
        out.status,
        v["message"]
    );
    let _ = std::fs::remove_dir_all(&dir);
    v
}

fn find_result(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path().join("result.json"))
        .find(|p| p.exists())
}

#[test]
fn soak_holds_sessions_and_loses_nothing() {
    let v = run(
        "soak",
        &[
            "--sessions",
            "300",
            "--groups",
            "4",
            "--group-every",
            "5",
            "--rate",
            "20",
            "--minutes",
            "0.2",
            "--warmup",
            "1",
            "--steady-after",
            "4",
            "--sample-every",
            "2",
        ],
    );
    let s = &v["summary"];
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("no {k} in {s}"));
    assert_eq!(n("held_after_setup"), 300);
    assert_eq!(n("live_sessions_at_end"), 300);
    assert!(n("deliveries") > 0, "nothing delivered: {s}");
    assert_eq!(n("deliveries"), n("deliveries_expected"));
    for k in [
        "errors",
        "lost",
        "gaps",
        "dups",
        "disconnects",
        "setup_errors",
    ] {
        assert_eq!(n(k), 0, "{k}: {s}");
    }
}

#[test]
fn churn_leaves_the_tables_empty() {
    let v = run(
        "churn",
        &[
            "--minutes",
            "0.2",
            "--rate",
            "40",
            "--accounts",
            "40",
            "--groups",
            "2",
            "--hold-ms",
            "300",
            "--lp-expiry-ms",
            "2000",
            "--settle-max",
            "60",
        ],
    );
    let s = &v["summary"];
    assert_eq!(s["tables_empty"], true, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["after_settle"]["sessions"], 0, "{s}");
    assert!(
        s["after_settle"]["topics"].as_u64() <= s["baseline"]["topics"].as_u64(),
        "{s}"
    );
    let stages = s["per_stage"].as_object().expect("per_stage");
    assert_eq!(stages.len(), 10, "every stage, long polling included: {s}");
    for (name, c) in stages {
        assert!(c["done"].as_u64() > Some(0), "stage {name} never ran: {s}");
        assert_eq!(c["failed"], 0, "stage {name}: {s}");
    }
}
