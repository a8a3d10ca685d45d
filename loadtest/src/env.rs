//! What a result is recorded with: machine model, kernel, toolchain, core count, git commit,
//! peer versions. Everything is best effort; a missing tool reads "unknown".

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EnvInfo {
    pub machine: String,
    pub kernel: String,
    pub rustc: String,
    pub cores: usize,
    pub git_commit: String,
    pub git_dirty: bool,
    pub nats_server: String,
    pub mosquitto: String,
    pub hostname: String,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    match Command::new(cmd).args(args).output() {
        Ok(o) => {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        }
        Err(_) => "not installed".into(),
    }
}

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("loadtest has a parent")
}

pub fn collect() -> EnvInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let machine = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let root = workspace_root().to_string_lossy().to_string();
    let git_commit = first_line("git", &["-C", &root, "rev-parse", "HEAD"]);
    let git_dirty = Command::new("git")
        .args(["-C", &root, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    EnvInfo {
        machine,
        kernel,
        rustc: first_line("rustc", &["-V"]),
        // Online CPUs of the machine (not this process's affinity mask, which is pinned).
        // SAFETY: sysconf has no preconditions.
        cores: unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize,
        git_commit,
        git_dirty,
        nats_server: first_line("nats-server", &["--version"]),
        mosquitto: first_line("mosquitto", &["-h"]),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    }
}
