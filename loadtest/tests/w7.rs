//! A short W7 against the coretalk binary built next to the harness and the throw-away
//! PostgreSQL of the run (`CORETALK_TEST_PG`; skipped, with a note, without it): every layout
//! starts its server or its three nodes on a fresh database, and the fan-out and the pairs
//! deliver everything they were sent, across node links included. Never asserts a timing or
//! a CPU figure.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn w7_delivers_everything_in_every_layout() {
    let Some(pg) = std::env::var("CORETALK_TEST_PG")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("skipped: CORETALK_TEST_PG is not set (tests/pg.sh start DIR)");
        return;
    };
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_coretalk-load"));
    let coretalk = harness.parent().expect("binary directory").join("coretalk");
    assert!(coretalk.exists(), "{} is missing", coretalk.display());
    let dir = std::env::temp_dir().join(format!("coretalk-load-test-w7-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(&harness)
        .args(["w7", "--pg", &pg])
        .args(["--server-bin", coretalk.to_str().expect("utf-8 path")])
        .args(["--server-cores", "0", "--client-cores", "0"])
        .args(["--subscribers", "30", "--fanout-rate", "20"])
        .args(["--pairs", "20", "--pair-rate", "40"])
        .args(["--duration", "2", "--warmup", "1", "--drain", "2"])
        .arg("--results-dir")
        .arg(&dir)
        .output()
        .expect("run coretalk-load");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let result = std::fs::read_dir(&dir)
        .expect("a results directory")
        .flatten()
        .map(|e| e.path().join("result.json"))
        .find(|p| p.exists())
        .expect("result.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).expect("read")).expect("json");
    assert!(out.status.success(), "w7 failed: {}", v["message"]);
    let points = v["points"].as_array().expect("points");
    // 4 layouts x (W4 + W3).
    assert_eq!(points.len(), 8, "{}", v["summary"]);
    for p in points {
        let label = &p["label"];
        assert!(p["sent"].as_u64() > Some(0), "{label}: nothing sent");
        assert_eq!(p["ops"], p["expected"], "{label}: deliveries lost");
        for k in ["errors", "dups", "gaps", "disconnects"] {
            assert_eq!(p[k], 0, "{label}: {k}");
        }
    }
    for layout in ["single", "local", "remote", "spread"] {
        assert!(
            points.iter().any(|p| p["extra"]["layout"] == layout),
            "no {layout} point"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
