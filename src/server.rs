//! Wiring and lifecycle: opens the store, starts the writer and hash threads, builds the mesh,
//! starts one pinned executor per shard with its SO_REUSEPORT listener (and, with
//! `listen.shard_ports`, a listener of its own that places connections on it), announces the
//! addresses, and on SIGINT/SIGTERM runs the shutdown sequence (`server/shutdown.rs`): drain,
//! bounded by a deadline and cut short by a second signal, then close the store in every case.
//!
//! The only module that imports every layer; only `main` imports it.

mod cluster;
mod open_store;
mod shutdown;
pub mod signals;
mod store_gate;

pub use shutdown::Exit;
pub use signals::Blocked;

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use base64::Engine as _;
use glommio::{LocalExecutorBuilder, Placement};
use socket2::{Domain, Socket, Type};

use crate::auth::apikey::ApiKeyChecker;
use crate::auth::hasher::{HashPool, HashPriority};
use crate::auth::keys::load_or_create_token_key;
use crate::auth::token::TokenIssuer;
use crate::config::Config;
use crate::ids::ShardId;
use crate::shard::{self, local, mesh, ShardCtx, ShardInit};
use crate::stats::{ProcessStats, ShardStats};
use crate::store::{journal, Store, StoreWriter, WriterConfig};
use shutdown::{Event, Pending};

/// Protocol version reported in `{hi}`.
pub const PROTOCOL_VERSION: &str = "0.25";

/// Creates a listening socket with SO_REUSEPORT so every shard can bind the same port.
fn reuseport_socket(addr: SocketAddr, backlog: Option<i32>) -> std::io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    if let Some(b) = backlog {
        sock.listen(b)?;
    }
    Ok(sock)
}

/// A listening socket only this shard accepts on (`listen.shard_ports`): no SO_REUSEPORT, so
/// a client picks the shard by the port.
fn shard_socket(addr: SocketAddr, backlog: i32) -> std::io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog)?;
    Ok(sock)
}

/// Binds the per-shard listeners of `listen.shard_ports` on the host of `addr`: shard `i` on
/// `listen.shard_port_base + i`, or on a free port when the base is 0. Empty when off.
fn shard_sockets(cfg: &Config, addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Socket>> {
    if !cfg.listen.shard_ports {
        return Ok(Vec::new());
    }
    let base = cfg.listen.shard_port_base;
    (0..n)
        .map(|i| {
            let port = match base {
                0 => 0,
                b => u16::try_from(b as usize + i)
                    .map_err(|_| anyhow!("listen.shard_port_base {b} + shard {i} is past 65535"))?,
            };
            let a = SocketAddr::new(addr.ip(), port);
            shard_socket(a, cfg.listen.backlog)
                .with_context(|| format!("cannot bind {a} for shard {i} (listen.shard_ports)"))
        })
        .collect()
}

/// Allows or forbids transparent huge pages for the whole process (`prctl(PR_SET_THP_DISABLE)`,
/// an address-space flag: it covers every thread, present and future, and every later page
/// fault; pages that are already huge stay so).
///
/// mimalloc reserves its arena with `MADV_HUGEPAGE`, so with huge pages allowed the first touch
/// anywhere in a 2 MiB stretch makes all of it resident: each shard's thread-local pages, the
/// untouched tails of its large buffers and its thread's first allocations each round up to
/// 2 MiB, about 6 MB per idle shard (`runtime.transparent_huge_pages`,
/// tuning/shards-and-pinning.md). mimalloc's own switch (`mi_option_allow_thp`) is read in its
/// constructor, before `main`, so setting it at run time no longer reaches this flag.
pub fn transparent_huge_pages(allow: bool) -> std::io::Result<()> {
    let disable: libc::c_ulong = if allow { 0 } else { 1 };
    // Full-width zeros: the kernel reads unsigned longs and rejects any non-zero flag.
    let zero: libc::c_ulong = 0;
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, disable, zero, zero, zero) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The locked-memory limit, for the message of a shard that could not start (glommio
/// registers each shard's io memory with io_uring, which counts against RLIMIT_MEMLOCK).
fn memlock_limit() -> String {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return "RLIMIT_MEMLOCK unknown".into();
    }
    if r.rlim_cur == libc::RLIM_INFINITY {
        "RLIMIT_MEMLOCK is unlimited".into()
    } else {
        format!("RLIMIT_MEMLOCK is {} KiB", r.rlim_cur / 1024)
    }
}

/// The `params` of the first `{hi}` reply.
fn hi_params(cfg: &Config) -> serde_json::Value {
    serde_json::json!({
        "ver": PROTOCOL_VERSION,
        "build": format!("coretalk:{}", env!("CARGO_PKG_VERSION")),
        "maxMessageSize": cfg.session.max_message_size,
        "maxSubscriberCount": cfg.topic.max_subscriber_count,
        "minTagLength": 2,
        "maxTagLength": 96,
        "maxTagCount": cfg.topic.max_tag_count,
        "maxFileUploadSize": 0,
        "msgDelAge": cfg.topic.msg_delete_age_secs as f64,
    })
}

/// Runs the server until SIGINT or SIGTERM and the shutdown sequence end; the result says how it
/// ended (the process's exit status). `signals` is proof that `main` blocked both signals before
/// any thread started.
pub fn run(cfg: Config, signals: Blocked) -> anyhow::Result<Exit> {
    cfg.validate()?;
    if let Err(e) = transparent_huge_pages(cfg.runtime.transparent_huge_pages) {
        log::warn!("cannot set runtime.transparent_huge_pages: {e}");
    }
    if cfg.store.faults.any() {
        warn_faults(&cfg);
    }
    glommio::net::set_multishot_read_polls(cfg.runtime.multishot_read_polls);
    let cfg = Arc::new(cfg);
    let (events_tx, events) = std::sync::mpsc::channel::<Event>();
    signals
        .listen(events_tx.clone())
        .context("cannot start the signal thread")?;
    let data_dir = cfg.store.data_dir.clone();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let n = if cfg.runtime.shards > 0 {
        cfg.runtime.shards
    } else {
        cores.len().max(1)
    };
    // A cluster node binds its node listener first, and its store's commits are fenced.
    let node_prep = cluster::prepare(&cfg)?;
    let fence = node_prep.as_ref().map(|p| p.fence(&cfg));
    let opened = open_store::open(&cfg, n, fence)?;
    let gate = opened.gate;
    let store: Arc<dyn Store> = gate.clone();
    // The reader threads end by themselves once every shard has dropped its handle; a shard
    // abandoned at the shutdown deadline may hold one, so nobody waits for them.
    let (readers, _readers_join) = opened.readers.unzip();
    let (writer, writer_join) = StoreWriter::spawn(
        store.clone(),
        WriterConfig {
            max_batch_ops: cfg.store.max_batch_ops,
            queue_capacity: cfg.store.queue_capacity,
            group_window_us: cfg.store.group_window_us,
            group_target_ops: cfg.store.group_target_ops,
            sync_delay_ms: cfg.store.faults.sync_delay_ms,
            stall_warn_ms: cfg.store.stall_warn_ms,
        },
    )?;
    let (hasher, hasher_join) = HashPool::spawn(
        cfg.auth.hash_threads,
        cfg.auth.hash_queue,
        if cfg.auth.hash_sched_idle {
            HashPriority::Idle
        } else {
            HashPriority::Nice(cfg.auth.hash_nice)
        },
    );
    let token_key = if let Some(k) = opened.shared_token_key.clone() {
        k
    } else if cfg.auth.token_key.is_empty() {
        load_or_create_token_key(&data_dir).context("token key")?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(cfg.auth.token_key.trim())
            .map_err(|e| anyhow!("auth.token_key is not standard base64: {e}"))?
    };
    if token_key.len() < 32 {
        return Err(anyhow!("auth.token_key must be at least 32 bytes"));
    }
    let tokens = token_issuer(&cfg.auth, token_key)?;
    let api_keys = Arc::new(
        ApiKeyChecker::from_base64(&cfg.api.key_salt)
            .ok_or_else(|| anyhow!("api.key_salt is not standard base64"))?,
    );

    let addr = cfg
        .listen
        .addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve listen address {}", cfg.listen.addr))?
        .next()
        .ok_or_else(|| anyhow!("listen address {} resolves to nothing", cfg.listen.addr))?;
    if cfg.api.sample_salt() && !addr.ip().is_loopback() {
        log::warn!(
            "api.key_salt is Tinode's PUBLIC sample salt and the server listens on {addr}: anyone \
             can make a valid API key. Make your own with `coretalk keygen` and set api.key_salt \
             (tuning/auth.md)."
        );
    }
    // Holds the port (port 0 resolves here) until every shard has bound it too.
    let placeholder =
        reuseport_socket(addr, None).with_context(|| format!("cannot bind {addr}"))?;
    let addr: SocketAddr = placeholder
        .local_addr()?
        .as_socket()
        .ok_or_else(|| anyhow!("listener has no inet address"))?;

    // gRPC, when on: the same scheme on its own port.
    let grpc = match cfg.listen.grpc_addr.trim() {
        "" => None,
        a => {
            let ga = a
                .to_socket_addrs()
                .with_context(|| format!("cannot resolve gRPC listen address {a}"))?
                .next()
                .ok_or_else(|| anyhow!("gRPC listen address {a} resolves to nothing"))?;
            let holder = reuseport_socket(ga, None).with_context(|| format!("cannot bind {ga}"))?;
            let ga: SocketAddr = holder
                .local_addr()?
                .as_socket()
                .ok_or_else(|| anyhow!("gRPC listener has no inet address"))?;
            Some((ga, holder))
        }
    };
    let grpc_addr = grpc.as_ref().map(|(a, _)| *a);
    // The monitoring endpoints' own port (`monitor.addr`), when set: the same scheme again.
    let monitor = match cfg.monitor.addr.trim() {
        "" => None,
        a => {
            let ma = a
                .to_socket_addrs()
                .with_context(|| format!("cannot resolve monitor address {a}"))?
                .next()
                .ok_or_else(|| anyhow!("monitor address {a} resolves to nothing"))?;
            let holder = reuseport_socket(ma, None).with_context(|| format!("cannot bind {ma}"))?;
            let ma: SocketAddr = holder
                .local_addr()?
                .as_socket()
                .ok_or_else(|| anyhow!("monitor listener has no inet address"))?;
            Some((ma, holder))
        }
    };
    let monitor_addr = monitor.as_ref().map(|(a, _)| *a);
    // `listen.shard_ports`: one more listener per shard, handed to it below.
    let own = shard_sockets(&cfg, addr, n)?;
    let own_addrs = own
        .iter()
        .map(|s| s.local_addr().ok().and_then(|a| a.as_socket()))
        .collect::<Option<Vec<SocketAddr>>>()
        .ok_or_else(|| anyhow!("a shard listener has no inet address"))?;
    let mut own: Vec<Option<Socket>> = own.into_iter().map(Some).collect();

    let (links, services) = mesh::build(n, cfg.mesh.queue_capacity);
    let node_advertise = node_prep.as_ref().map(|p| p.advertise.clone());
    let node = match node_prep {
        Some(p) => Some(cluster::start(&cfg, p, &services)?),
        None => None,
    };
    let node_handle = node.as_ref().map(|n| n.handle().clone());
    let all_stats: Arc<Vec<Arc<ShardStats>>> =
        Arc::new((0..n).map(|_| Arc::new(ShardStats::default())).collect());
    let process = Arc::new(ProcessStats {
        version: crate::stats::expvar::version_number(PROTOCOL_VERSION),
        build: crate::cli::VERSION.to_owned(),
        ..ProcessStats::default()
    });
    let params = hi_params(&cfg);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut handles = Vec::with_capacity(n);
    for (i, link) in links.into_iter().enumerate() {
        let placement = if cfg.runtime.pin && !cores.is_empty() {
            Placement::Fixed(cores[(cfg.runtime.first_core + i) % cores.len()].id)
        } else {
            Placement::Unbound
        };
        let init = ShardInit {
            id: ShardId(i as u16),
            n_shards: n,
            cfg: cfg.clone(),
            link,
            service: services[i].clone(),
            store: store.clone(),
            writer: writer.clone(),
            readers: readers.clone(),
            hasher: hasher.clone(),
            tokens: tokens.clone(),
            api_keys: api_keys.clone(),
            stats: all_stats[i].clone(),
            all_stats: all_stats.clone(),
            process: process.clone(),
            hi_params: params.clone(),
            cluster: node_handle.clone(),
        };
        let ready = ready_tx.clone();
        let own_socket = own.get_mut(i).and_then(Option::take);
        let backlog = cfg.listen.backlog;
        let shard_cfg = (*cfg).clone();
        let builder = LocalExecutorBuilder::new(placement)
            .name(&format!("coretalk-shard-{i}"))
            .io_memory(cfg.runtime.io_memory_kib << 10)
            .ring_depth(cfg.runtime.ring_depth)
            .spin_before_park(Duration::from_micros(cfg.runtime.spin_before_park_us));
        let span = crate::logging::shard_span(i);
        let handle = builder
            .spawn(move || async move {
                // Every line this thread logs carries `shard` (all its tasks are the shard's).
                let _entered = span.enter();
                let listener = match reuseport_socket(addr, Some(backlog)) {
                    // SAFETY: the fd comes from a socket we own and hand over exactly once.
                    Ok(s) => unsafe { glommio::net::TcpListener::from_raw_fd(s.into_raw_fd()) },
                    Err(e) => {
                        let _ = ready.send(Err(format!("shard {i}: cannot listen on {addr}: {e}")));
                        return;
                    }
                };
                let grpc_listener = match grpc_addr.map(|a| (a, reuseport_socket(a, Some(backlog))))
                {
                    None => None,
                    // SAFETY: as above.
                    Some((_, Ok(s))) => {
                        Some(unsafe { glommio::net::TcpListener::from_raw_fd(s.into_raw_fd()) })
                    }
                    Some((a, Err(e))) => {
                        let _ =
                            ready.send(Err(format!("shard {i}: cannot listen on {a} (gRPC): {e}")));
                        return;
                    }
                };
                let monitor_listener =
                    match monitor_addr.map(|a| (a, reuseport_socket(a, Some(backlog)))) {
                        None => None,
                        // SAFETY: as above.
                        Some((_, Ok(s))) => {
                            Some(unsafe { glommio::net::TcpListener::from_raw_fd(s.into_raw_fd()) })
                        }
                        Some((a, Err(e))) => {
                            let _ = ready.send(Err(format!(
                                "shard {i}: cannot listen on {a} (monitor): {e}"
                            )));
                            return;
                        }
                    };
                local::install(ShardCtx::new(init));
                shard::spawn_tasks();
                let shard_cfg = Rc::new(shard_cfg);
                if let Some(l) = monitor_listener {
                    glommio::spawn_local(crate::transport::monitor::serve(l, shard_cfg.clone()))
                        .detach();
                }
                if let Some(l) = grpc_listener {
                    glommio::spawn_local(crate::transport::grpc::serve(l, shard_cfg.clone()))
                        .detach();
                }
                if let Some(s) = own_socket {
                    // SAFETY: as above.
                    let l = unsafe { glommio::net::TcpListener::from_raw_fd(s.into_raw_fd()) };
                    glommio::spawn_local(crate::transport::serve(l, shard_cfg.clone())).detach();
                }
                glommio::spawn_local(crate::transport::serve(listener, shard_cfg)).detach();
                local::with(|ctx| ctx.set_accepting());
                let _ = ready.send(Ok(()));
                shard::run_tasks().await;
                drop(local::uninstall());
            })
            .map_err(|e| anyhow!("cannot start shard {i}: {e}"))?;
        handles.push(handle);
    }
    drop(ready_tx);
    for _ in 0..n {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(anyhow!(e)),
            Err(_) => {
                return Err(anyhow!(
                    "a shard exited during start-up: its io_uring could not be set up ({}; \
                     raise it: `ulimit -l`, LimitMEMLOCK= in the systemd unit, tuning/kernel.md)",
                    memlock_limit()
                ))
            }
        }
    }
    drop(placeholder);
    drop(grpc);
    drop(monitor);
    // Ready from here (`/readyz`) until shutdown begins.
    process
        .store_open
        .store(true, std::sync::atomic::Ordering::SeqCst);
    log::info!("{n} shards, {}", opened.describe);
    {
        use std::io::Write as _;
        let mut out = std::io::stdout();
        // Before the main line, which start-up scripts wait for.
        if let Some(ga) = grpc_addr {
            let _ = writeln!(out, "coretalk grpc listening on {ga}");
        }
        if let Some(ma) = monitor_addr {
            let _ = writeln!(out, "coretalk monitor listening on {ma}");
        }
        for (i, a) in own_addrs.iter().enumerate() {
            let _ = writeln!(out, "coretalk shard {i} listening on {a}");
        }
        if let Some(a) = &node_advertise {
            let _ = writeln!(
                out,
                "coretalk node {} listening on {a}",
                cfg.cluster.node.trim()
            );
        }
        let _ = writeln!(out, "coretalk listening on {addr}");
        let _ = out.flush();
    }

    let writer_stats = writer.stats().clone();
    drop((writer, hasher, store, readers));

    let first = loop {
        match events.recv() {
            Ok(Event::Signal(sig)) => break sig,
            Ok(_) => {}
            Err(_) => return Err(anyhow!("the signal thread is gone")),
        }
    };
    process
        .store_open
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let timeout = Duration::from_millis(cfg.runtime.shutdown_timeout_ms);
    log::info!(
        "{}: shutting down (deadline {} ms, runtime.shutdown_timeout_ms)",
        signals::name(first),
        timeout.as_millis()
    );
    for s in &services {
        let _ = s.send(mesh::Local::Shutdown);
    }
    drop(services);
    for (i, h) in handles.into_iter().enumerate() {
        shutdown::watch(&events_tx, Event::ShardExited(i), move || {
            if let Err(e) = h.join() {
                log::error!("shard {i} ended abnormally: {e}");
            }
        });
    }
    // Both end once the shards have dropped their handles and the queues are empty.
    shutdown::watch(&events_tx, Event::WriterExited, move || {
        if let Err(e) = writer_join.join() {
            log::error!("{e}");
        }
    });
    shutdown::watch(&events_tx, Event::HashExited, move || hasher_join.join());
    let exit = shutdown::finish(&events, Pending::new(n), &gate, timeout);
    if let Some(node) = node {
        // Last: whatever the shards and the writer still had in flight was committed (or,
        // abandoned, is fenced from now on); peers take this node's topics over at once.
        node.stop();
    }
    let unapplied = writer_stats
        .unapplied
        .load(std::sync::atomic::Ordering::SeqCst);
    if unapplied > 0 {
        log::error!(
            "{unapplied} acknowledged write(s) never reached the store: the journal is kept and replayed at the next start"
        );
    }
    let keep = exit != Exit::Clean || unapplied > 0;
    if let Some(dir) = opened.journal_dir.as_ref().filter(|_| !keep) {
        // Every write reached the store and the store closed durably: nothing to replay.
        if let Err(e) = journal::clear(dir) {
            log::warn!("journal not cleared (it will be replayed at the next start): {e}");
        }
    }
    Ok(exit)
}

/// Applies the PostgreSQL store's pending migrations (`coretalk migrate`): the schema version
/// before and after.
pub fn migrate(cfg: &Config) -> anyhow::Result<(u32, u32)> {
    cfg.validate()?;
    let shown = open_store::redact(&cfg.store.url);
    crate::store::pg::migrate(
        cfg.store.url.trim(),
        &open_store::pg_options(&cfg.store.postgres, 1),
    )
    .map_err(|e| anyhow!("cannot migrate the PostgreSQL store at {shown}: {e}"))
}

/// The token issuer: the current key, and the retired keys of `auth.token_retired_keys`,
/// accepted until `auth.token_rotated_at` + `auth.token_rotation_grace_secs`.
fn token_issuer(auth: &crate::config::AuthConfig, key: Vec<u8>) -> anyhow::Result<TokenIssuer> {
    let mut tokens = TokenIssuer::new(key, auth.token_serial, auth.token_lifetime_secs);
    let until = auth
        .token_rotated_at
        .saturating_add(auth.token_rotation_grace_secs)
        .saturating_mul(1000);
    for (i, retired) in auth.token_retired_keys.iter().enumerate() {
        let key = base64::engine::general_purpose::STANDARD
            .decode(retired.trim())
            .map_err(|e| anyhow!("auth.token_retired_keys[{i}] is not standard base64: {e}"))?;
        if key.len() < 32 {
            return Err(anyhow!(
                "auth.token_retired_keys[{i}] must be at least 32 bytes"
            ));
        }
        tokens = tokens.with_retired(&key, crate::ids::UnixMillis(until));
    }
    if !auth.token_retired_keys.is_empty() && crate::shard::now().0 >= until {
        log::warn!("auth.token_retired_keys: the grace after the rotation is over; remove them");
    }
    Ok(tokens)
}

/// A store URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    open_store::redact(url)
}

/// `[store.faults]` is set: say so on every channel an operator reads (the log, and stderr in
/// case the log is filtered), since a server running with a fault injected is broken on purpose.
fn warn_faults(cfg: &Config) {
    let f = &cfg.store.faults;
    let line = format!(
        "FAULT INJECTION ON: store.faults.sync_delay_ms = {}, read_delay_ms = {}: durable syncs (journal fdatasync, store commit) and the reader threads' answers are delayed on purpose. This is for tests only; set both to 0 in production.",
        f.sync_delay_ms, f.read_delay_ms
    );
    eprintln!("coretalk: {line}");
    log::warn!("{line}");
}

#[cfg(test)]
mod tests {
    /// The flag really changes (the kernel rejects the call if any other argument is non-zero).
    #[test]
    fn transparent_huge_pages_sets_the_process_flag() {
        // SAFETY: PR_GET_THP_DISABLE takes no pointer.
        let get =
            || unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0usize, 0usize, 0usize, 0usize) };
        super::transparent_huge_pages(false).unwrap();
        assert_eq!(get(), 1);
        super::transparent_huge_pages(true).unwrap();
        assert_eq!(get(), 0);
        super::transparent_huge_pages(false).unwrap();
        assert_eq!(get(), 1);
    }
}
