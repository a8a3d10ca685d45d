//! The `coretalk` process under test: started on a temporary data directory with a config
//! made for the test (and its PostgreSQL database when the run uses one), restarted, signalled,
//! paused until every thread has stopped, read (`/debug/vars`, RSS, stderr) and killed; its
//! stderr is shown when a test fails.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{create_database, embedded_store, http_raw, postgres_base, API_KEY};

/// Longest wait for the server to print its listen address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server process with its own data directory.
pub struct Server {
    /// Its PostgreSQL database (see [`postgres_base`]), kept across restarts.
    store_url: Option<String>,
    child: Option<Child>,
    pid: u32,
    port: u16,
    grpc_port: u16,
    /// Per-shard ports (`listen.shard_ports`), by shard.
    shard_ports: Vec<u16>,
    shards: usize,
    dir: tempfile::TempDir,
    starts: u32,
}

impl Server {
    /// Starts `coretalk` with `shards` shards, a fresh data directory and a config made of a
    /// fast bcrypt cost plus `extra_toml` (which must not repeat the `[auth]` table).
    pub fn start(shards: usize, extra_toml: &str) -> Server {
        Server::start_with_store(
            shards,
            extra_toml,
            postgres_base().map(|b| create_database(&b)),
        )
    }

    /// Like [`Server::start`], on the given PostgreSQL database (`None`: the embedded store).
    pub fn start_with_store(shards: usize, extra_toml: &str, store_url: Option<String>) -> Server {
        Server::start_prepared(shards, extra_toml, store_url, |_| {})
    }

    /// Like [`Server::start_with_store`], once `prepare` ran on the data directory's path
    /// (not created yet: e.g. mount a small file system there).
    pub fn start_prepared(
        shards: usize,
        extra_toml: &str,
        store_url: Option<String>,
        prepare: impl FnOnce(&std::path::Path),
    ) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("coretalk-it-")
            .tempdir()
            .expect("temp dir");
        let config = format!("[auth]\nbcrypt_cost = 4\n\n{extra_toml}\n");
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        let mut s = Server {
            store_url,
            child: None,
            pid: 0,
            port: 0,
            grpc_port: 0,
            shard_ports: Vec::new(),
            shards,
            dir,
            starts: 0,
        };
        prepare(&s.data_dir());
        s.spawn();
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the current process writes its stderr (log lines).
    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join(format!("stderr-{}.log", self.starts))
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let stderr = std::fs::File::create(self.stderr_path()).expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coretalk"));
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--grpc-listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(self.data_dir())
            .arg("--shards")
            .arg(self.shards.to_string())
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(self.store_url.iter().flat_map(|u| ["--store", u.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        // Its own process group: when the test's group is orphaned (a run under `nohup`, a
        // detached runner), the kernel sends SIGCONT to every stopped member of that group each
        // time one of them exits, which would wake a node a test has paused. Out of the
        // terminal's group it no longer gets Ctrl-C either, so it is killed when the thread
        // that started it ends (the test's), even if the test process dies without unwinding.
        cmd.process_group(0);
        let parent = std::process::id();
        // SAFETY: `prctl` and `getppid` are async-signal-safe and touch only the child's own
        // attributes.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have gone before the request was made.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::ErrorKind::BrokenPipe.into());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn coretalk");
        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Keeps draining stdout so the server never blocks on (or fails writing to) it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // After start-up nobody listens any more; keep draining regardless.
                let _ = tx.send(line);
            }
        });
        self.pid = child.id();
        self.child = Some(child);
        self.shard_ports.clear();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    // Printed before the main line.
                    if let Some(addr) = line.strip_prefix("coretalk grpc listening on ") {
                        self.grpc_port = addr
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.trim().parse::<u16>().ok())
                            .unwrap_or_else(|| panic!("cannot parse gRPC listen line {line:?}"));
                    }
                    if let Some(rest) = line.strip_prefix("coretalk shard ") {
                        let port = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                        self.shard_ports.push(port.expect("shard listen line"));
                    }
                    if let Some(addr) = line.strip_prefix("coretalk listening on ") {
                        let port = addr
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.trim().parse::<u16>().ok());
                        self.port =
                            port.unwrap_or_else(|| panic!("cannot parse listen line {line:?}"));
                        return;
                    }
                }
                Err(_) => {
                    let status = self
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten());
                    panic!(
                        "coretalk did not announce its address within {START_TIMEOUT:?} (exit status {status:?}); stderr:\n{}",
                        self.stderr_tail()
                    );
                }
            }
        }
    }

    /// The TCP port of the current process.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port only shard `i` accepts on (`listen.shard_ports`).
    pub fn shard_port(&self, i: usize) -> u16 {
        self.shard_ports[i]
    }

    /// Every per-shard port announced (empty without `listen.shard_ports`).
    pub fn shard_ports(&self) -> &[u16] {
        &self.shard_ports
    }

    /// The gRPC port of the current process.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// The WebSocket URL with the demo API key.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/v0/channels?apikey={API_KEY}", self.port)
    }

    /// The last lines of the current process's stderr.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.stderr_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process id of the current process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `sig` to the current process.
    pub fn signal(&self, sig: i32) {
        assert!(self.child.is_some(), "no coretalk process to signal");
        // SAFETY: sending a signal to our own child process by its pid.
        unsafe { libc::kill(self.pid as libc::pid_t, sig) };
    }

    /// `SIGSTOP`, returning once every thread of the process has stopped. `kill` returns as
    /// soon as the signal is queued; the stop itself begins when one of the process's threads
    /// takes the signal, and on a loaded machine that thread may wait milliseconds for a CPU
    /// while the others go on running (seen: a shard handled five more publishes and the
    /// store committed them, 7 ms after `kill` returned). What a test does "after the stop"
    /// must happen after it.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
        let tasks = format!("/proc/{}/task", self.pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let running: Vec<String> = std::fs::read_dir(&tasks)
                .map(|d| {
                    d.flatten()
                        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
                        .filter(|stat| !thread_stopped(stat))
                        .collect()
                })
                .unwrap_or_default();
            if running.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pid {}: threads still running 10 s after SIGSTOP: {running:?}",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for the process to exit by itself (killed and failed after `limit`); its status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("a running coretalk process");
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "coretalk did not exit within {limit:?}; stderr:\n{}",
                    self.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait for a clean exit (killed after 15 s); returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child.as_ref()?;
        self.signal(libc::SIGTERM);
        Some(self.wait_exit(Duration::from_secs(15)))
    }

    /// The whole stderr (log) of the current or last process.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Replaces the whole config file (nothing is added to `toml`); the next start reads it.
    pub fn rewrite_config(&self, toml: &str) {
        std::fs::write(self.dir.path().join("config.toml"), toml).expect("write config");
    }

    /// Whether the database in the data directory was closed cleanly by its last writer: redb
    /// opens a file read-only only when that writer recorded its shutdown (a durable commit
    /// clears the record, a clean close writes it). The server must not be running.
    /// Whether the embedded store's file was closed cleanly. With PostgreSQL there is no file
    /// to look at: callers check [`embedded_store`] first.
    pub fn store_closed_cleanly(&self) -> bool {
        assert!(self.child.is_none(), "the server is still running");
        assert!(embedded_store(), "no embedded store file with PostgreSQL");
        let path = self.data_dir().join("coretalk.redb");
        match redb::ReadOnlyDatabase::open(&path) {
            Ok(_) => true,
            Err(redb::DatabaseError::RepairAborted) => false,
            Err(e) => panic!("cannot open {} read-only: {e}", path.display()),
        }
    }

    /// Starts a new process on the same data directory (stopping a running one first; new port).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// One plain HTTP/1.1 request; returns (status, body).
    pub fn http(&self, request: &str) -> (u16, String) {
        http_raw(self.port, request)
    }

    /// `GET path` with `extra` header lines (each ending in `\r\n`).
    pub fn http_get(&self, path: &str, extra: &str) -> (u16, String) {
        self.http(&format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
        ))
    }

    /// `/debug/vars` as JSON.
    pub fn vars(&self) -> Value {
        let (status, body) = self.http_get("/debug/vars", "");
        assert_eq!(status, 200, "/debug/vars answered {status}: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/debug/vars is not JSON ({e}): {body}"))
    }

    /// Live sessions per shard, from `/debug/vars` `Shards[i].sessions`.
    pub fn shard_sessions(&self) -> Vec<u64> {
        let v = self.vars();
        v["Shards"]
            .as_array()
            .unwrap_or_else(|| panic!("/debug/vars has no Shards array: {v}"))
            .iter()
            .map(|s| s["sessions"].as_u64().expect("Shards[i].sessions"))
            .collect()
    }

    /// Polls `/debug/vars` every 100 ms until `pred` holds (up to `limit`): last value, held.
    pub async fn wait_vars(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> (Value, bool) {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.vars();
            if pred(&v) {
                return (v, true);
            }
            if Instant::now() > deadline {
                return (v, false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resident set size of the server process, KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{}/status", self.pid))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- coretalk stderr (port {}, pid {}) ---\n{}",
                self.port,
                self.pid,
                self.stderr_tail()
            );
        }
        self.kill9();
    }
}

/// Whether a `/proc/…/task/…/stat` line is of a thread that has stopped (or exited): the
/// state letter follows the command name's closing parenthesis.
fn thread_stopped(stat: &str) -> bool {
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('T' | 't' | 'Z' | 'X'))
}

#[test]
fn a_thread_state_is_read_after_the_last_parenthesis() {
    assert!(thread_stopped("4711 (coretalk-shard-) T 4700 4700 0"));
    assert!(thread_stopped("4711 (coretalk) t 4700"));
    assert!(thread_stopped("4711 (gone) Z 4700"));
    assert!(!thread_stopped("4711 (coretalk-store) S 4700 4700"));
    // A name may hold parentheses and state-like letters itself.
    assert!(!thread_stopped("4711 (a) T (b)) R 4700"));
    assert!(!thread_stopped("garbage"));
}
