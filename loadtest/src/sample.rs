//! Server sampling from /proc: CPU time (utime + stime of all threads, clock ticks → µs) and
//! resident memory (VmRSS), read every ~250 ms by a background thread, plus interpolation so a
//! measurement window's CPU can be read off the series.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::schedule::now_ns;

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ProcSample {
    /// Shared-clock time of the reading.
    pub t_ns: u64,
    /// utime + stime, microseconds.
    pub cpu_us: u64,
    /// VmRSS, KiB.
    pub rss_kib: u64,
}

fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// One reading of `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn read(pid: u32) -> std::io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| std::io::Error::other("bad stat"))?;
    // Fields after the command: state is field 3, utime 14, stime 15 (1-based).
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let ticks = num(11) + num(12);
    let cpu_us = ticks * 1_000_000 / ticks_per_sec();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(ProcSample {
        t_ns: now_ns(),
        cpu_us,
        rss_kib,
    })
}

/// Background sampler of one process.
pub struct Sampler {
    samples: Arc<Mutex<Vec<ProcSample>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Sampler {
        Sampler::start_many(vec![pid], every)
    }

    /// A sampler of several processes as one (W7's cluster nodes): each reading is their sum
    /// (CPU and RSS), taken only when every process could be read.
    pub fn start_many(pids: Vec<u32>, every: Duration) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("proc-sampler".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    let all: std::io::Result<Vec<ProcSample>> =
                        pids.iter().map(|p| read(*p)).collect();
                    if let Ok(v) = all {
                        if let Some(sum) = v.into_iter().reduce(|a, b| ProcSample {
                            cpu_us: a.cpu_us + b.cpu_us,
                            rss_kib: a.rss_kib + b.rss_kib,
                            ..a
                        }) {
                            s.lock().unwrap().push(sum);
                        }
                    }
                    std::thread::sleep(every);
                }
            })
            .expect("spawn sampler thread");
        Sampler {
            samples,
            stop,
            handle: Some(handle),
        }
    }

    /// Samples taken within `[from, to]`.
    pub fn between(&self, from_ns: u64, to_ns: u64) -> Vec<ProcSample> {
        let mut v: Vec<ProcSample> = self
            .samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.t_ns >= from_ns && s.t_ns <= to_ns)
            .copied()
            .collect();
        v.sort_by_key(|s| s.t_ns);
        v
    }

    /// CPU microseconds at time `t`, interpolated between the nearest readings.
    pub fn cpu_at(&self, t_ns: u64) -> Option<f64> {
        let mut all = self.samples.lock().unwrap().clone();
        all.sort_by_key(|s| s.t_ns);
        let after = all.iter().position(|s| s.t_ns >= t_ns)?;
        let b = all[after];
        if after == 0 || b.t_ns == t_ns {
            return Some(b.cpu_us as f64);
        }
        let a = all[after - 1];
        let f = (t_ns - a.t_ns) as f64 / (b.t_ns - a.t_ns).max(1) as f64;
        Some(a.cpu_us as f64 + f * (b.cpu_us as f64 - a.cpu_us as f64))
    }

    /// Mean RSS (KiB) of the readings in a window.
    pub fn mean_rss(&self, from_ns: u64, to_ns: u64) -> Option<f64> {
        let v = self.between(from_ns, to_ns);
        (!v.is_empty()).then(|| v.iter().map(|s| s.rss_kib as f64).sum::<f64>() / v.len() as f64)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The pid of the process listening on TCP `port` (for --attach without --server-pid): the
/// socket inode from /proc/net/tcp{,6}, then the process holding that inode.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for l in text.lines().skip(1) {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() < 10 || c[3] != "0A" {
                continue;
            }
            let p = c[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if p == Some(port) {
                inodes.push(format!("socket:[{}]", c[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| link.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let s = read(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
    }
}
