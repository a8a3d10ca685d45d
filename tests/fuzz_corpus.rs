//! The fuzz targets' committed inputs, replayed on stable Rust with every `cargo test`: each
//! corpus file (`fuzz/corpus/<target>/`) and each input that once crashed a target
//! (`fuzz/regressions/<target>/`, one named test per crash below) goes through the same entry
//! point (`coretalk::fuzzing`) that the libFuzzer target calls. Also the tool that seeds the
//! corpora (ignored; `fuzz/README.md`).

use std::fs;
use std::path::{Path, PathBuf};

use coretalk::fuzzing::{self, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries.map(|e| e.expect("dir entry").path()).collect();
    out.sort();
    out
}

fn target(name: &str) -> fuzzing::Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
        .1
}

/// Runs one committed input; the panic message names the file.
fn replay(name: &str, path: &Path) {
    let data = fs::read(path).expect("read input");
    let run = target(name);
    if std::panic::catch_unwind(|| run(&data)).is_err() {
        panic!("{name}: {} fails", path.display());
    }
}

#[test]
fn every_target_has_a_committed_corpus_that_replays_cleanly() {
    for (name, _) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            corpus.len() >= 5,
            "fuzz/corpus/{name} has {} inputs",
            corpus.len()
        );
        for path in &corpus {
            replay(name, path);
        }
    }
}

#[test]
fn every_crash_input_replays_cleanly() {
    for (name, _) in TARGETS {
        for path in files(&fuzz_dir().join("regressions").join(name)) {
            replay(name, &path);
        }
    }
}

/// Writes the seed corpora: what a recording run of the integration suite captured
/// (`CORETALK_RECORD_DIR`, `tests/it/record.rs`), WebSocket frames made from its JSON frames,
/// and the binary seeds `fuzzing::seeds` makes. Run by `fuzz/seed.sh`.
#[test]
#[ignore = "writes fuzz/corpus; run by fuzz/seed.sh"]
fn write_seed_corpora() {
    let recorded = PathBuf::from(std::env::var_os("CORETALK_RECORD_DIR").expect("recording"));
    let take = |kind: &str, n: usize| -> Vec<Vec<u8>> {
        let all: Vec<Vec<u8>> = files(&recorded.join(kind))
            .iter()
            .map(|p| fs::read(p).expect("recorded input"))
            .filter(|b| b.len() <= 2048)
            .collect();
        // Mostly well-formed inputs, spread over kinds (sorted by their leading bytes), and a
        // few of the suite's hostile ones.
        let parses = |b: &Vec<u8>| match kind {
            "json" => serde_json::from_slice::<serde_json::Value>(b).is_ok(),
            _ => !b.is_empty(),
        };
        let (mut good, bad): (Vec<_>, Vec<_>) = all.into_iter().partition(parses);
        good.sort();
        let step = (good.len() / (n - n / 8)).max(1);
        let mut out: Vec<Vec<u8>> = good.into_iter().step_by(step).collect();
        out.truncate(n - n / 8);
        out.extend(bad.into_iter().take(n / 8));
        out
    };
    let json = take("json", 40);
    let mut ws = Vec::new();
    for (i, frame) in json.iter().take(20).enumerate() {
        let mask = [i as u8, 0x5a, 0xa5, 0x3c];
        ws.push([vec![i as u8, 1], fuzzing::masked_frame(1, frame, mask)].concat());
    }
    ws.push([vec![3, 0], fuzzing::masked_frame(9, b"ping", [1, 2, 3, 4])].concat());
    let close = [0x03, 0xe8, b'b', b'y', b'e'];
    ws.push([vec![0, 0], fuzzing::masked_frame(8, &close, [9, 8, 7, 6])].concat());
    let mut http = take("http", 20);
    http.extend(take("lp", 10));
    let sets = [
        ("json", json),
        ("http_head", http),
        ("ws_frames", ws),
        ("longpoll", take("lp", 40)),
        ("protobuf", take("pb", 40)),
        ("store_record", fuzzing::seeds("store_record")),
        ("journal", fuzzing::seeds("journal")),
        ("token", fuzzing::seeds("token")),
        ("api_key", fuzzing::seeds("api_key")),
    ];
    for (name, seeds) in sets {
        let dir = fuzz_dir().join("corpus").join(name);
        fs::create_dir_all(&dir).expect("corpus dir");
        for (i, s) in seeds.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i:03}")), s).expect("write seed");
        }
    }
}
