//! Tidy checks that keep the architecture visible: every source file opens with a `//!`
//! charter, the runtime-free core (session, topic, account) never imports the runtime or reads
//! the clock, layers only import downward, and every config field is documented in `tuning/`.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(sub: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&root().join(sub), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).expect("read source");
            (p, text)
        })
        .collect()
}

/// Code lines only: comments and doc comments removed, so prose may name anything.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim_start();
        !(t.starts_with("//") || t.starts_with("*"))
    })
}

#[test]
fn every_source_file_opens_with_a_charter() {
    let mut missing = Vec::new();
    for dir in ["src", "tests", "benches", "loadtest/src"] {
        if !root().join(dir).exists() {
            continue;
        }
        for (path, text) in sources(dir) {
            if path.components().any(|c| c.as_os_str() == "node_modules") {
                continue;
            }
            if !text.starts_with("//!") {
                missing.push(path.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without a //! charter on line 1:\n{}",
        missing.join("\n")
    );
}

/// Forbidden crate-internal imports per module (the layer table in ARCHITECTURE.md).
const LAYERS: &[(&str, &[&str])] = &[
    ("ids", &["crate::"]),
    ("access", &["crate::"]),
    ("fewmap", &["crate::"]),
    (
        "proto",
        &[
            "crate::store",
            "crate::auth",
            "crate::session",
            "crate::topic",
            "crate::shard",
            "crate::transport",
            "crate::server",
            "crate::routing",
        ],
    ),
    (
        "config",
        &[
            "crate::store",
            "crate::auth",
            "crate::session",
            "crate::topic",
            "crate::shard",
            "crate::transport",
            "crate::server",
        ],
    ),
    (
        "stats",
        &[
            "crate::store",
            "crate::auth",
            "crate::session",
            "crate::topic",
            "crate::shard",
            "crate::transport",
            "crate::server",
        ],
    ),
    (
        "logging",
        &[
            "crate::store",
            "crate::auth",
            "crate::session",
            "crate::topic",
            "crate::shard",
            "crate::transport",
            "crate::server",
        ],
    ),
    (
        "routing",
        &[
            "crate::store",
            "crate::auth",
            "crate::session",
            "crate::topic",
            "crate::shard",
            "crate::transport",
            "crate::server",
        ],
    ),
    (
        "store",
        &[
            "crate::proto",
            "crate::auth",
            "crate::session",
            "crate::topic",
            "crate::shard",
            "crate::transport",
            "crate::server",
        ],
    ),
    (
        "auth",
        &[
            "crate::proto",
            "crate::store",
            "crate::session",
            "crate::topic",
            "crate::shard",
            "crate::transport",
            "crate::server",
        ],
    ),
    (
        "session",
        &[
            "crate::topic",
            "crate::account",
            "crate::shard",
            "crate::transport",
            "crate::server",
            "crate::store::RedbStore",
        ],
    ),
    (
        "topic",
        &[
            "crate::session",
            "crate::account",
            "crate::shard",
            "crate::transport",
            "crate::server",
        ],
    ),
    (
        "account",
        &[
            "crate::session",
            "crate::topic",
            "crate::shard",
            "crate::transport",
            "crate::server",
            "crate::store::RedbStore",
            "crate::store::redb",
            "crate::store::writer",
            "crate::store::StoreWriter",
        ],
    ),
    (
        "cluster",
        &[
            "crate::session",
            "crate::topic",
            "crate::account",
            "crate::shard",
            "crate::transport",
            "crate::server",
            "crate::proto",
        ],
    ),
    ("shard", &["crate::transport", "crate::server"]),
    (
        "transport",
        &[
            "crate::session",
            "crate::topic",
            "crate::account",
            "crate::store",
            "crate::auth",
            "crate::server",
        ],
    ),
];

#[test]
fn imports_point_down_the_layers() {
    let mut bad = Vec::new();
    for (module, forbidden) in LAYERS {
        let dir = root().join("src").join(module);
        let files: Vec<(PathBuf, String)> = if dir.is_dir() {
            sources(&format!("src/{module}"))
        } else {
            let p = root().join("src").join(format!("{module}.rs"));
            vec![(p.clone(), fs::read_to_string(&p).expect("module file"))]
        };
        for (path, text) in files {
            for (n, line) in code_lines(&text) {
                for f in *forbidden {
                    if line.contains(f) {
                        bad.push(format!(
                            "{}:{}: {module} must not use {f}",
                            path.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn the_protocol_core_is_runtime_free() {
    let banned = [
        "glommio",
        "crossbeam",
        "tokio",
        "Instant::now",
        "SystemTime::now",
        "Mutex",
        "RwLock",
        "thread_local!",
        "std::thread",
        "std::net",
        "rand::",
    ];
    let mut bad = Vec::new();
    for module in ["session", "topic", "account"] {
        for (path, text) in sources(&format!("src/{module}")) {
            for (n, line) in code_lines(&text) {
                for b in banned {
                    if line.contains(b) {
                        bad.push(format!("{}:{}: {b}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the runtime-free core uses runtime facilities:\n{}",
        bad.join("\n")
    );
}

/// The protocol state machines ask for reads, writes and hashes as outputs (answered as
/// events, so a network database never blocks an executor); they never hold the store, the
/// writer or the hash pool. Their tests may use an in-memory store to answer.
#[test]
fn the_state_machines_reach_the_store_and_the_hash_pool_only_by_outputs() {
    let banned = [
        "dyn Store",
        "impl Store",
        "RedbStore",
        "StoreWriter",
        "read::run",
        "HashPool",
    ];
    let mut bad = Vec::new();
    for module in ["src/account", "src/topic", "src/session"] {
        for (path, text) in sources(module) {
            if path.components().any(|c| c.as_os_str() == "tests") {
                continue;
            }
            for (n, line) in code_lines(&text) {
                for b in banned {
                    if line.contains(b) {
                        bad.push(format!("{}:{}: {b}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "a state machine touches the store or the hash pool:\n{}",
        bad.join("\n")
    );
}

/// Files with one job: no source file grows past ~800 lines without being split by concern.
#[test]
fn no_source_file_is_over_800_lines() {
    let mut big = Vec::new();
    for dir in ["src", "tests", "benches", "loadtest/src"] {
        for (path, text) in sources(dir) {
            if path.components().any(|c| c.as_os_str() == "node_modules") {
                continue;
            }
            let n = text.lines().count();
            if n > 800 {
                big.push(format!("{} ({n} lines)", path.display()));
            }
        }
    }
    assert!(big.is_empty(), "split by concern:\n{}", big.join("\n"));
}

#[test]
fn only_the_mesh_names_crossbeam_and_only_local_has_thread_locals() {
    let mut bad = Vec::new();
    for (path, text) in sources("src") {
        let rel = path
            .strip_prefix(root())
            .expect("under root")
            .display()
            .to_string();
        for (n, line) in code_lines(&text) {
            if line.contains("crossbeam")
                && !(rel.ends_with("shard/mesh.rs")
                    || rel.starts_with("src/store/")
                    || rel.starts_with("src/auth/"))
            {
                bad.push(format!(
                    "{rel}:{}: crossbeam outside the mesh and service threads",
                    n + 1
                ));
            }
            if line.contains("thread_local!") && !rel.ends_with("shard/local.rs") {
                bad.push(format!(
                    "{rel}:{}: thread_local! outside shard/local.rs",
                    n + 1
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_config_field_is_documented_in_tuning() {
    // `config.rs` and its submodules (`config/ops.rs`: the operations sections).
    let mut config = fs::read_to_string(root().join("src/config.rs")).expect("config.rs");
    if root().join("src/config").is_dir() {
        for (_, text) in sources("src/config") {
            config.push_str(&text);
        }
    }
    let mut docs = String::new();
    for entry in fs::read_dir(root().join("tuning")).expect("tuning/ exists") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "md") {
            docs.push_str(&fs::read_to_string(&p).expect("tuning page"));
        }
    }
    // Map each section struct to its field name in `Config`.
    let mut sections = std::collections::HashMap::new();
    let mut in_config = false;
    for line in config.lines() {
        let t = line.trim();
        if t.starts_with("pub struct Config ") {
            in_config = true;
            continue;
        }
        if in_config {
            if t == "}" {
                break;
            }
            if let Some(rest) = t.strip_prefix("pub ") {
                if let Some((name, ty)) = rest.split_once(':') {
                    sections.insert(
                        ty.trim().trim_end_matches(',').to_owned(),
                        name.trim().to_owned(),
                    );
                }
            }
        }
    }
    assert!(!sections.is_empty(), "could not read the Config struct");
    // Nested tables (`store.postgres` → `PostgresConfig`): a section field whose type is
    // another `…Config` struct is a section of its own, named by its path.
    let mut current: Option<String> = None;
    let mut nested = Vec::new();
    for line in config.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("pub struct ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            current = sections.get(name).cloned();
            continue;
        }
        if t == "}" {
            current = None;
            continue;
        }
        if let (Some(section), Some(rest)) = (&current, t.strip_prefix("pub ")) {
            if let Some((field, ty)) = rest.split_once(':') {
                let ty = ty.trim().trim_end_matches(',');
                if ty.ends_with("Config") && !ty.contains(['<', ' ']) {
                    nested.push((ty.to_owned(), format!("{section}.{}", field.trim())));
                }
            }
        }
    }
    sections.extend(nested);
    let mut missing = Vec::new();
    let mut current: Option<String> = None;
    for line in config.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("pub struct ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            current = sections.get(name).cloned();
            continue;
        }
        if t == "}" {
            current = None;
            continue;
        }
        if let (Some(section), Some(rest)) = (&current, t.strip_prefix("pub ")) {
            if let Some((field, _)) = rest.split_once(':') {
                let key = format!("{section}.{}", field.trim());
                if !docs.contains(&key) {
                    missing.push(key);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "config fields not documented under tuning/: {missing:?}"
    );
}

#[test]
fn the_example_config_parses_with_every_section() {
    let text =
        fs::read_to_string(root().join("tuning/coretalk.example.toml")).expect("example config");
    let cfg: coretalk::config::Config = toml::from_str(&text).expect("example config parses");
    cfg.validate().expect("example config is valid");
}
