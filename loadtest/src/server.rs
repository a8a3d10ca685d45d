//! Starting the server under test (coretalk from this workspace, the tokio baseline,
//! nats-server, mosquitto, or the harness's own speed-of-light peers `http-sol` and `ws-sol`)
//! pinned with `taskset`, with a configuration the harness writes into a temporary directory;
//! or attaching to one already running. Dropping a started server stops it (SIGTERM, then
//! SIGKILL) and removes the directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::cli::{Common, StoreMode, TargetKind, Transport};
use crate::env::workspace_root;

/// What the report records about the server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerInfo {
    pub kind: String,
    pub addr: String,
    pub pid: Option<u32>,
    pub attached: bool,
    pub cmdline: Vec<String>,
    pub config_file: String,
    pub config: String,
    pub cores: String,
    pub shards: Option<usize>,
    pub version: String,
    /// coretalk's gRPC listener, when on (`--transport grpc`).
    pub grpc_addr: Option<String>,
    /// coretalk's per-shard listeners (`listen.shard_ports`), by shard, when on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shard_addrs: Vec<String>,
}

pub struct Server {
    pub info: ServerInfo,
    pub addr: SocketAddr,
    /// The gRPC listener (coretalk started with `--transport grpc`, or attached).
    pub grpc_addr: Option<SocketAddr>,
    /// coretalk's per-shard listeners, by shard (`Tuning::shard_ports`); empty otherwise.
    pub shard_addrs: Vec<SocketAddr>,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

/// Options that shape the server's configuration beyond the command line.
#[derive(Clone, Debug, Default)]
pub struct Tuning {
    pub shards: usize,
    /// Subscribers one group must hold (raises coretalk's `topic.max_subscriber_count`).
    pub max_subscribers: usize,
    /// http-sol: one request per connection (`--close`).
    pub http_close: bool,
    /// coretalk: the raw echo endpoint at this path (`ws.echo_path`, W0).
    pub echo_path: Option<String>,
    /// coretalk: a listener per shard (`listen.shard_ports`, W6 placement), read from the
    /// `coretalk shard N listening on` lines.
    pub shard_ports: bool,
    /// coretalk: `session.detached_idle_ms` (churn: how long abandoned long-poll sessions live).
    pub detached_idle_ms: Option<u64>,
    /// coretalk: `--store URL` (W7: a PostgreSQL database) instead of the embedded store.
    pub store_url: Option<String>,
    /// coretalk: run as cluster node NAME (`[cluster] node`, a node listener on a free port).
    pub node: Option<String>,
}

/// Number of CPUs in a taskset list such as `0`, `2-3`, `0,4-5`.
pub fn count_cores(list: &str) -> usize {
    list.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (
                    a.trim().parse::<usize>().unwrap_or(0),
                    b.trim().parse::<usize>().unwrap_or(0),
                );
                b.saturating_sub(a) + 1
            }
            None => 1,
        })
        .sum::<usize>()
        .max(1)
}

/// Finds a binary: the explicit path, else `target/release/NAME` of this workspace (or
/// `$CARGO_TARGET_DIR/release`), else next to this executable.
pub fn find_bin(explicit: Option<&Path>, name: &str) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.exists() {
            return Ok(p.to_owned());
        }
        bail!("{} does not exist", p.display());
    }
    let mut cands = Vec::new();
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        cands.push(PathBuf::from(t).join("release").join(name));
    }
    cands.push(workspace_root().join("target/release").join(name));
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent() {
            cands.push(d.join(name));
        }
    }
    cands.into_iter().find(|p| p.exists()).ok_or_else(|| {
        anyhow!(
            "cannot find {name}: build it (cargo build --release --bin {name}) or pass its path"
        )
    })
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn temp_dir(tag: &str) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "coretalk-load-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn wait_port(addr: SocketAddr, child: &mut Child, within: Duration) -> Result<()> {
    let t0 = Instant::now();
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(st) = child.try_wait()? {
            bail!("server exited during start-up ({st})");
        }
        if t0.elapsed() > within {
            bail!("server did not open {addr} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads stdout lines until one starts with `prefix`; the rest of it is the address. Returns
/// it and the lines printed before it (coretalk's `coretalk grpc listening on` and
/// `coretalk shard N listening on` lines come first).
fn wait_banner(
    child: &mut Child,
    prefix: &str,
    within: Duration,
) -> Result<(SocketAddr, Vec<String>)> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let want = prefix.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        let mut before = Vec::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if sent {
                continue;
            }
            if let Some(rest) = line.strip_prefix(&want) {
                let _ = tx.send((rest.trim().to_owned(), std::mem::take(&mut before)));
                sent = true;
            } else {
                before.push(line);
            }
        }
    });
    let t0 = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((a, before)) => return Ok((parse_addr(&a)?, before)),
            Err(_) => {
                if let Some(st) = child.try_wait()? {
                    bail!("server exited during start-up ({st})");
                }
                if t0.elapsed() > within {
                    bail!("no '{prefix}' line within {within:?}");
                }
            }
        }
    }
}

fn parse_addr(a: &str) -> Result<SocketAddr> {
    a.trim()
        .parse()
        .with_context(|| format!("bad address in banner: {a}"))
}

/// coretalk's per-shard listeners from its `coretalk shard N listening on HOST:PORT` lines,
/// by shard.
fn shard_lines(lines: &[String]) -> Result<Vec<SocketAddr>> {
    let mut out: Vec<(usize, SocketAddr)> = Vec::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("coretalk shard ") else {
            continue;
        };
        let (n, a) = rest
            .split_once(" listening on ")
            .ok_or_else(|| anyhow!("bad shard line: {l}"))?;
        out.push((n.trim().parse().context("shard number")?, parse_addr(a)?));
    }
    out.sort_by_key(|x| x.0);
    Ok(out.into_iter().map(|x| x.1).collect())
}

fn taskset(cores: &str, prog: &Path) -> Command {
    let mut c = Command::new("taskset");
    c.arg("-c").arg(cores).arg(prog);
    c
}

fn cmdline(c: &Command) -> Vec<String> {
    std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect()
}

/// The coretalk configuration the harness runs with.
pub fn coretalk_config(common: &Common, t: &Tuning) -> String {
    format!(
        "# written by coretalk-load\n\
         [auth]\n\
         # accounts are created in bulk: bcrypt at its floor cost\n\
         bcrypt_cost = 4\n\
         \n\
         [store]\n\
         durable = {}\n\
         \n\
         [topic]\n\
         max_subscriber_count = {}\n\
         \n\
         [limits]\n\
         # publishers send thousands of messages a second on one session, accounts are\n\
         # created in bulk from one address and shared by many sessions: no rate limits\n\
         msg_per_sec = 0\n\
         auth_per_min = 0\n\
         addr_auth_per_min = 0\n\
         max_sessions_per_user = 0\n{}",
        common.store == StoreMode::Durable,
        t.max_subscribers.max(128) + 16,
        coretalk_extras(t),
    )
}

/// The optional sections: the W0 echo endpoint, W6's per-shard listeners. Written only when
/// asked for (a build without the knob rejects it as an unknown key).
fn coretalk_extras(t: &Tuning) -> String {
    let mut out = String::new();
    if let Some(p) = &t.echo_path {
        out.push_str(&format!(
            "\n[ws]\n# W0: the raw WebSocket echo endpoint\necho_path = {}\n",
            toml::Value::String(p.clone())
        ));
    }
    if let Some(ms) = t.detached_idle_ms {
        out.push_str(&format!(
            "\n[session]\n# churn: abandoned long-poll sessions end this soon\ndetached_idle_ms = {ms}\n"
        ));
    }
    if let Some(n) = &t.node {
        out.push_str(&format!(
            "\n[cluster]\n# W7: a cluster node on a free port of its own\nnode = {}\nlisten = \"127.0.0.1:0\"\n",
            toml::Value::String(n.clone())
        ));
    }
    if t.shard_ports {
        out.push_str(
            "\n[listen]\n# W6 placement: a listener per shard, on free ports (announced)\n\
             shard_ports = true\nshard_port_base = 0\n",
        );
    }
    out
}

/// Merges the user's `--server-config` file over the harness's coretalk configuration (the
/// user's values win, key by key within each section).
fn with_server_config(base: String, common: &Common) -> Result<String> {
    let Some(path) = &common.server_config else {
        return Ok(base);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--server-config {}: {e}", path.display()))?;
    let user: toml::Table = text
        .parse()
        .map_err(|e| anyhow::anyhow!("--server-config {}: {e}", path.display()))?;
    let mut merged: toml::Table = base.parse()?;
    for (section, value) in user {
        match (merged.get_mut(&section), value) {
            (Some(toml::Value::Table(dst)), toml::Value::Table(src)) => dst.extend(src),
            (_, v) => {
                merged.insert(section, v);
            }
        }
    }
    Ok(format!(
        "# written by coretalk-load, merged with {}\n{}",
        path.display(),
        toml::to_string(&merged)?
    ))
}

fn nats_config(port: u16) -> String {
    format!(
        "# written by coretalk-load: WebSocket on 127.0.0.1:{port}, no TLS, no auth\n\
         host: 127.0.0.1\n\
         port: -1\n\
         max_payload: 1MB\n\
         max_connections: 1000000\n\
         write_deadline: \"10s\"\n\
         max_pending: 64MB\n\
         websocket {{\n  host: 127.0.0.1\n  port: {port}\n  no_tls: true\n  compression: false\n}}\n"
    )
}

/// mosquitto 2.0.11 exits with "Unable to start any listening sockets" when every listener is
/// a websockets one (it checks only plain MQTT sockets), so a plain listener on a spare port
/// comes first; nothing connects to it.
fn mosquitto_config(port: u16, plain_port: u16) -> String {
    format!(
        "# written by coretalk-load: MQTT over WebSocket on 127.0.0.1:{port}, anonymous, in memory\n\
         per_listener_settings false\n\
         allow_anonymous true\n\
         persistence false\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         connection_messages false\n\
         set_tcp_nodelay true\n\
         max_queued_messages 1000000\n\
         max_queued_bytes 0\n\
         max_inflight_messages 0\n\
         memory_limit 0\n\
         listener {plain_port} 127.0.0.1\n\
         max_connections -1\n\
         listener {port} 127.0.0.1\n\
         protocol websockets\n\
         max_connections -1\n"
    )
}

/// Whether this coretalk build takes `--grpc-listen` (its usage text names it).
fn has_grpc_option(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--help")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).contains("--grpc-listen")
                || String::from_utf8_lossy(&o.stderr).contains("--grpc-listen")
        })
        .unwrap_or(false)
}

fn version_of(prog: &str, args: &[&str]) -> String {
    Command::new(prog)
        .args(args)
        .output()
        .map(|o| {
            let t = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&t)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

impl Server {
    /// Starts `kind` pinned to `common.server_cores`.
    pub fn start(kind: TargetKind, common: &Common, t: &Tuning) -> Result<Server> {
        let dir = temp_dir(kind.name())?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let cores = common.server_cores.clone();
        let mut ws_port = 0u16;
        let want_grpc = common.transport == Some(Transport::Grpc);
        let mut grpc_banner = false;
        let (mut cmd, config, config_file, version, banner) = match kind {
            TargetKind::Coretalk => {
                let bin = find_bin(common.server_bin.as_deref(), "coretalk")?;
                let conf = with_server_config(coretalk_config(common, t), common)?;
                let cf = dir.join("coretalk.toml");
                std::fs::write(&cf, &conf)?;
                std::fs::create_dir_all(dir.join("data"))?;
                let mut c = taskset(&cores, &bin);
                c.arg("--listen")
                    .arg("127.0.0.1:0")
                    .arg("--data")
                    .arg(dir.join("data"))
                    .arg("--shards")
                    .arg(t.shards.max(1).to_string())
                    .arg("--config")
                    .arg(&cf);
                if let Some(url) = &t.store_url {
                    c.arg("--store").arg(url);
                }
                // gRPC on a free port of its own when the sessions use it, off otherwise:
                // never the default 0.0.0.0:16060, which parallel servers would share
                // (SO_REUSEPORT). Builds from before gRPC have no such option.
                if has_grpc_option(&bin) {
                    c.arg("--grpc-listen")
                        .arg(if want_grpc { "127.0.0.1:0" } else { "" });
                    grpc_banner = want_grpc;
                } else if want_grpc {
                    bail!("{} has no --grpc-listen option (no gRPC)", bin.display());
                }
                let v = version_of(bin.to_str().unwrap_or("coretalk"), &["--version"]);
                (c, conf, cf, v, Some("coretalk listening on"))
            }
            TargetKind::Baseline => {
                let bin = find_bin(common.baseline_bin.as_deref(), "coretalk-baseline")?;
                let mut c = taskset(&cores, &bin);
                c.arg("--listen").arg("127.0.0.1:0");
                let v = version_of(bin.to_str().unwrap_or(""), &["--version"]);
                (
                    c,
                    String::new(),
                    PathBuf::new(),
                    v,
                    Some("coretalk-baseline listening on"),
                )
            }
            TargetKind::HttpSol => {
                let exe = std::env::current_exe()?;
                let mut c = taskset(&cores, &exe);
                c.arg("http-sol").arg("--listen").arg("127.0.0.1:0");
                if t.http_close {
                    c.arg("--close");
                }
                (
                    c,
                    String::new(),
                    PathBuf::new(),
                    "coretalk-load http-sol".into(),
                    Some("http-sol listening on"),
                )
            }
            TargetKind::WsSol => {
                let exe = std::env::current_exe()?;
                let mut c = taskset(&cores, &exe);
                c.arg("ws-sol").arg("--listen").arg("127.0.0.1:0");
                (
                    c,
                    String::new(),
                    PathBuf::new(),
                    "coretalk-load ws-sol".into(),
                    Some("ws-sol listening on"),
                )
            }
            TargetKind::Nats => {
                let port = free_port()?;
                ws_port = port;
                let conf = nats_config(port);
                let cf = dir.join("nats.conf");
                std::fs::write(&cf, &conf)?;
                let mut c = taskset(&cores, Path::new("nats-server"));
                c.arg("-c").arg(&cf);
                c.env("GOMAXPROCS", count_cores(&cores).to_string());
                let v = version_of("nats-server", &["--version"]);
                (c, conf, cf, v, None)
            }
            TargetKind::Mosquitto => {
                let port = free_port()?;
                ws_port = port;
                let conf = mosquitto_config(port, free_port()?);
                let cf = dir.join("mosquitto.conf");
                std::fs::write(&cf, &conf)?;
                let mut c = taskset(&cores, Path::new("mosquitto"));
                c.arg("-c").arg(&cf);
                let v = version_of("mosquitto", &["-h"]);
                (c, conf, cf, v, None)
            }
        };
        let line = cmdline(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", line.join(" ")))?;
        let started = match banner {
            Some(prefix) => {
                wait_banner(&mut child, prefix, Duration::from_secs(20)).and_then(|(a, before)| {
                    let grpc = before
                        .iter()
                        .find_map(|l| l.strip_prefix("coretalk grpc listening on "))
                        .map(parse_addr)
                        .transpose()?;
                    if grpc_banner && grpc.is_none() {
                        bail!("no gRPC listener announced");
                    }
                    let shards = shard_lines(&before)?;
                    if t.shard_ports && shards.len() != t.shards.max(1) {
                        bail!(
                            "{} per-shard listeners announced for {} shards",
                            shards.len(),
                            t.shards.max(1)
                        );
                    }
                    Ok((a, grpc, shards))
                })
            }
            None => {
                let a: SocketAddr = format!("127.0.0.1:{ws_port}").parse()?;
                wait_port(a, &mut child, Duration::from_secs(20)).map(|_| (a, None, Vec::new()))
            }
        };
        let (addr, grpc_addr, shard_addrs) = match started {
            Ok(a) => a,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                let _ = std::fs::remove_dir_all(&dir);
                let tail: String = log
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                bail!("{} failed to start: {e:#}\n{tail}", kind.name());
            }
        };
        let info = ServerInfo {
            kind: kind.name().into(),
            addr: addr.to_string(),
            pid: Some(child.id()),
            attached: false,
            cmdline: line,
            config_file: config_file.to_string_lossy().into_owned(),
            config,
            cores,
            shards: (kind == TargetKind::Coretalk).then_some(t.shards.max(1)),
            version,
            grpc_addr: grpc_addr.map(|g| g.to_string()),
            shard_addrs: shard_addrs.iter().map(|a| a.to_string()).collect(),
        };
        Ok(Server {
            info,
            addr,
            grpc_addr,
            shard_addrs,
            child: Some(child),
            dir: Some(dir),
        })
    }

    /// A server someone else runs.
    pub fn attach(
        kind: TargetKind,
        addr: &str,
        pid: Option<u32>,
        common: &Common,
    ) -> Result<Server> {
        let a = crate::net::resolve(addr)?;
        let pid = pid.or_else(|| crate::sample::pid_listening_on(a.port()));
        let grpc_addr = match (&common.attach_grpc, common.transport) {
            (Some(g), _) => Some(crate::net::resolve(g)?),
            (None, Some(Transport::Grpc)) => Some(SocketAddr::new(a.ip(), 16060)),
            _ => None,
        };
        Ok(Server {
            info: ServerInfo {
                kind: kind.name().into(),
                addr: a.to_string(),
                pid,
                attached: true,
                grpc_addr: grpc_addr.map(|g| g.to_string()),
                ..Default::default()
            },
            addr: a,
            grpc_addr,
            shard_addrs: Vec::new(),
            child: None,
            dir: None,
        })
    }

    /// The server's stderr so far (started servers only).
    pub fn log(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("server.log")).ok())
            .unwrap_or_default()
    }

    /// Whether a started server is still running.
    pub fn alive(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_config_file_is_merged_over_the_harness_settings() {
        use clap::Parser;
        let dir = std::env::temp_dir().join(format!("ctl-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("extra.toml");
        std::fs::write(&f, "[runtime]\nring_depth = 256\n[store]\ndurable = true\n").unwrap();
        let cli = crate::cli::Cli::try_parse_from([
            "coretalk-load",
            "w4",
            "--server-config",
            f.to_str().unwrap(),
        ])
        .unwrap();
        let crate::cli::Command::W4(args) = cli.cmd else {
            panic!("w4 expected")
        };
        let merged = with_server_config(
            "[store]\ndurable = false\n[auth]\nbcrypt_cost = 4\n".into(),
            &args.common,
        )
        .unwrap();
        let t: toml::Table = merged.parse().unwrap();
        assert_eq!(
            t["store"]["durable"].as_bool(),
            Some(true),
            "the user's value wins"
        );
        assert_eq!(
            t["auth"]["bcrypt_cost"].as_integer(),
            Some(4),
            "the harness's stays"
        );
        assert_eq!(
            t["runtime"]["ring_depth"].as_integer(),
            Some(256),
            "new sections are added"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn counts_taskset_lists() {
        assert_eq!(count_cores("0"), 1);
        assert_eq!(count_cores("2-3"), 2);
        assert_eq!(count_cores("0,4-7"), 5);
    }
}
