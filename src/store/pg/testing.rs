//! A throw-away PostgreSQL for tests: [`fresh_url`] returns the URL of a new, empty database.
//!
//! With `CORETALK_TEST_PG` set to a server's base URL (`postgres://postgres@127.0.0.1:5432`,
//! a superuser or a role allowed to create databases, no database name), the databases are
//! made there, named `coretalk_test_<pid>_<n>`; those of test processes no longer running are
//! dropped when the next one starts. Otherwise one PostgreSQL 15 instance is started per test
//! process on first use (initdb in a temporary directory as the `postgres` user, a free port,
//! `fsync=off`), and stopped and removed when the process exits (or, if it was killed, by the
//! next test process). A server that cannot be had is a panic that says why: PostgreSQL tests
//! never skip silently.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use postgres::{Client, NoTls};

/// The environment variable naming an existing server to use instead of a local one.
pub(crate) const ENV: &str = "CORETALK_TEST_PG";

/// The base URL of the server every test of this process uses.
static SERVER: OnceLock<String> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The URL of a new, empty database.
pub(crate) fn fresh_url() -> String {
    let base = SERVER.get_or_init(server);
    let name = format!(
        "coretalk_test_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = admin(base);
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {base}: {e:?}"));
    format!("{base}/{name}")
}

/// A connection to the `postgres` database of the test server.
pub(crate) fn admin(base: &str) -> Client {
    Client::connect(&format!("{base}/postgres"), NoTls)
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL at {base}: {e:?}"))
}

fn server() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => {
            let base = base_of(url.trim());
            drop_stale_databases(&base);
            base
        }
        _ => start_local(),
    }
}

/// `url` without a database name, query or trailing slash.
fn base_of(url: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let end = url[authority..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority + i);
    url[..end].to_owned()
}

/// Whether process `pid` is running (a zombie is not).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state …`: the state follows the last parenthesis.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Drops the databases left on an external server by test processes that are gone.
fn drop_stale_databases(base: &str) {
    let mut admin = admin(base);
    let rows = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'coretalk\\_test\\_%'",
            &[],
        )
        .unwrap_or_else(|e| panic!("listing test databases on {base}: {e:?}"));
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if !pid.is_some_and(alive) {
            // Best effort: another cleaner may have dropped it first.
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The directory of the PostgreSQL server programs: version 15 if installed, else the newest.
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let preferred = root.join("15/bin");
    if preferred.join("initdb").exists() {
        return preferred;
    }
    let mut versions: Vec<u32> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    match versions.last() {
        Some(v) => root.join(format!("{v}/bin")),
        None => panic!(
            "PostgreSQL tests need the PostgreSQL server (apt-get install postgresql-15) or {ENV} \
             set to a server's base URL (postgres://postgres@127.0.0.1:5432)"
        ),
    }
}

/// Runs a PostgreSQL program as the `postgres` user when we are root (initdb refuses root).
fn as_postgres(program: &Path) -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str, log: Option<&Path>) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} for the test PostgreSQL: {e}"));
    if !out.status.success() {
        let log = log
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        panic!(
            "{what} failed for the test PostgreSQL ({}):\n{}\n{}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A TCP port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// A PostgreSQL instance this process started: a data directory under the temp dir, a port.
/// Dropping it stops it and removes the directory.
pub(crate) struct LocalServer {
    dir: PathBuf,
    port: u16,
}

/// The instance shared by the tests of this process, when no external server was named.
static LOCAL: OnceLock<LocalServer> = OnceLock::new();
static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

impl LocalServer {
    /// Makes a new cluster (initdb as the `postgres` user) and starts it on a free port.
    pub(crate) fn start() -> LocalServer {
        static REAPED: std::sync::Once = std::sync::Once::new();
        REAPED.call_once(reap_stale_local);
        let dir = std::env::temp_dir().join(format!(
            "coretalk-test-pg-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            run(
                Command::new("chown").arg("postgres:").arg(&dir),
                "chown postgres:",
                None,
            );
        }
        run(
            as_postgres(&bin_dir().join("initdb"))
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]),
            "initdb",
            None,
        );
        let server = LocalServer {
            dir,
            port: free_port(),
        };
        server.resume();
        server
    }

    /// The base URL (no database name).
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the (stopped) server again on the same port and data.
    pub(crate) fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        run(
            as_postgres(&bin_dir().join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(&log)
                .args(["-o", &options, "-w", "start"]),
            "pg_ctl start",
            Some(&log),
        );
    }

    /// Stops the server (`fast`: sessions are ended, as in a restart; `immediate`: no
    /// checkpoint, as in a crash).
    pub(crate) fn stop(&self, mode: &str) {
        let _ = as_postgres(&bin_dir().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode, "-w", "stop"])
            .output();
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops and removes the instances left by test processes that died without exiting (killed,
/// interrupted): their directories are named after their process id.
fn reap_stale_local() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("coretalk-test-pg-"))
        else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_none_or(alive) {
            continue;
        }
        let dir = entry.path();
        let _ = as_postgres(&bin_dir().join("pg_ctl"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn start_local() -> String {
    let server = LOCAL.get_or_init(LocalServer::start);
    // SAFETY: `stop_local` is an `extern "C" fn()` that touches only process-global state.
    unsafe {
        libc::atexit(stop_local);
    }
    server.url()
}

/// Stops the shared instance and removes its directory (at process exit: statics are never
/// dropped).
extern "C" fn stop_local() {
    if let Some(server) = LOCAL.get() {
        server.stop("immediate");
        let _ = std::fs::remove_dir_all(&server.dir);
    }
}
