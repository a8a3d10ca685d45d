//! The membership thread (`coretalk-cluster`): joins at start, renews this node's lease every
//! `cluster.heartbeat_ms`, declares expired peers down, and publishes a new [`View`] whenever
//! the membership version or this node's own standing changes.
//!
//! It also keeps this node's epoch, which the store's fence reads before every commit: 0 while
//! the node is not a member. The epoch drops to 0 when a renewal finds the row no longer ours
//! (a peer declared us down, or a newer incarnation joined), and also when no renewal has
//! succeeded for a whole lease (PostgreSQL unreachable): by then a peer may have declared us
//! down, so we stop mastering before anyone else can start. The next tick re-joins under a new
//! epoch. A clean stop leaves (`left`), so peers take over at once instead of after the lease.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::membership::{Members, NodeRow, NodeState, Snapshot};
use super::ring::Ring;
use crate::store::StoreError;

/// What the membership thread needs.
#[derive(Clone, Debug)]
pub struct MemberConfig {
    /// This node's name (unique in the cluster).
    pub name: String,
    /// Its node-to-node address, as peers should dial it.
    pub addr: String,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub connect_timeout: Duration,
}

/// The cluster as one node sees it at one membership version.
#[derive(Clone, Debug)]
pub struct View {
    pub version: i64,
    /// This node's name, and its epoch (0: not a member now, masters nothing).
    pub me: String,
    pub epoch: i64,
    /// The nodes that are up, sorted by name.
    pub up: Vec<NodeRow>,
    /// Every node row, whatever its state.
    pub total: usize,
    pub ring: Ring,
}

impl View {
    fn of(snap: &Snapshot, me: &str, epoch: i64) -> View {
        let up: Vec<NodeRow> = snap.up().cloned().collect();
        let names: Vec<&str> = up.iter().map(|n| n.name.as_str()).collect();
        View {
            version: snap.version,
            me: me.to_owned(),
            epoch,
            ring: Ring::new(&names),
            total: snap.nodes.len(),
            up,
        }
    }

    /// The node that masters `topic` under this view.
    pub fn master(&self, topic: &str) -> Option<&str> {
        self.ring.get(topic)
    }

    /// Whether this node masters `topic` now (it must be a member).
    pub fn masters(&self, topic: &str) -> bool {
        self.epoch > 0 && self.master(topic) == Some(self.me.as_str())
    }
}

/// Figures the rest of the server reads (`/debug/vars`, the store's fence).
#[derive(Debug, Default)]
pub struct Status {
    /// This node's epoch; 0 while it is not a member. Shared with `store::pg::Fence`.
    pub epoch: Arc<AtomicI64>,
    pub version: AtomicI64,
    /// Node rows in the table (`TotalClusterNodes`) and those up (`LiveClusterNodes`).
    pub total: AtomicU64,
    pub live: AtomicU64,
    view: Mutex<Option<Arc<View>>>,
}

impl Status {
    /// A status whose epoch is `epoch`, shared with the store's fence before the node joins.
    pub fn with_epoch(epoch: Arc<AtomicI64>) -> Status {
        Status {
            epoch,
            ..Status::default()
        }
    }

    /// The latest view, if one was read.
    pub fn view(&self) -> Option<Arc<View>> {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Called with every new view, on the membership thread (keep it short: post it somewhere).
pub type OnChange = Box<dyn Fn(Arc<View>) + Send>;

/// The running membership thread.
pub struct Heartbeat {
    stop: Arc<(Mutex<bool>, Condvar)>,
    paused: Arc<AtomicBool>,
    status: Arc<Status>,
    handle: JoinHandle<()>,
}

impl Heartbeat {
    /// Joins the cluster (failing if PostgreSQL cannot be reached), publishes the first view
    /// through `on_change`, and starts the thread.
    pub fn start(
        url: &str,
        cfg: MemberConfig,
        on_change: OnChange,
    ) -> Result<Heartbeat, StoreError> {
        Heartbeat::start_with(url, cfg, Arc::new(Status::default()), on_change)
    }

    /// [`Heartbeat::start`], keeping its figures in `status` (whose epoch the store's fence
    /// and the node links already hold).
    pub fn start_with(
        url: &str,
        cfg: MemberConfig,
        status: Arc<Status>,
        on_change: OnChange,
    ) -> Result<Heartbeat, StoreError> {
        let mut members = Members::new(url, cfg.connect_timeout)?;
        let (epoch, _) = members.register(&cfg.name, &cfg.addr, cfg.lease)?;
        log::info!(
            "cluster: joined as {} (epoch {epoch}) at {}",
            cfg.name,
            cfg.addr
        );
        status.epoch.store(epoch, Ordering::SeqCst);
        let mut lp = Loop {
            members,
            cfg,
            status: status.clone(),
            on_change,
            last_ok: Instant::now(),
            last_version: -1,
            last_epoch: -1,
            last_snap: None,
            errors: 0,
        };
        lp.refresh();
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let paused = Arc::new(AtomicBool::new(false));
        let (s, p) = (stop.clone(), paused.clone());
        let handle = std::thread::Builder::new()
            .name("coretalk-cluster".into())
            .spawn(move || lp.run(&s, &p))
            .map_err(|e| StoreError::Backend(format!("cannot start the cluster thread: {e}")))?;
        Ok(Heartbeat {
            stop,
            paused,
            status,
            handle,
        })
    }

    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// Stops the thread, leaving the cluster cleanly first.
    pub fn stop(self) {
        {
            let (m, cv) = &*self.stop;
            *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        if self.handle.join().is_err() {
            log::error!("the cluster thread panicked");
        }
    }

    /// Stops every action of the thread (no renewal, nothing) until resumed, as a `SIGSTOP`
    /// of the process would: for tests and failure drills.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
}

struct Loop {
    members: Members,
    cfg: MemberConfig,
    status: Arc<Status>,
    on_change: OnChange,
    /// When the lease was last extended (or taken).
    last_ok: Instant,
    last_version: i64,
    last_epoch: i64,
    /// The membership last read: a view when the epoch changes while PostgreSQL cannot be
    /// read (fenced by the lease timer) is made from it.
    last_snap: Option<Snapshot>,
    /// Consecutive failed ticks (for logging once, not every tick).
    errors: u32,
}

impl Loop {
    fn run(&mut self, stop: &(Mutex<bool>, Condvar), paused: &AtomicBool) {
        loop {
            {
                let (m, cv) = stop;
                let guard = m.lock().unwrap_or_else(|p| p.into_inner());
                let (guard, _) = cv
                    .wait_timeout_while(guard, self.cfg.heartbeat, |s| !*s)
                    .unwrap_or_else(|p| p.into_inner());
                if *guard {
                    break;
                }
            }
            if paused.load(Ordering::SeqCst) {
                continue;
            }
            self.tick();
        }
        let epoch = self.status.epoch.swap(0, Ordering::SeqCst);
        if epoch > 0 {
            match self.members.leave(&self.cfg.name, epoch) {
                Ok(true) => log::info!("cluster: {} left (epoch {epoch})", self.cfg.name),
                Ok(false) => log::warn!(
                    "cluster: {} was no longer a member when leaving",
                    self.cfg.name
                ),
                Err(e) => {
                    log::warn!("cluster: leaving failed ({e}); peers take over after the lease")
                }
            }
        }
    }

    fn tick(&mut self) {
        let r = self.keep_membership().and_then(|()| {
            if self.status.epoch.load(Ordering::SeqCst) > 0 {
                let (down, _) = self.members.declare_expired_down(&self.cfg.name)?;
                for (name, epoch) in down {
                    log::warn!("cluster: declared {name} (epoch {epoch}) down: its lease expired");
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => {
                if self.errors > 0 {
                    log::info!(
                        "cluster: PostgreSQL reachable again after {} failed heartbeats",
                        self.errors
                    );
                }
                self.errors = 0;
            }
            Err(e) => {
                if self.errors == 0 {
                    log::warn!("cluster: heartbeat failed: {e}");
                }
                self.errors += 1;
            }
        }
        // Not renewed for a whole lease: a peer may declare us down any moment.
        let epoch = self.status.epoch.load(Ordering::SeqCst);
        if epoch > 0 && self.last_ok.elapsed() > self.cfg.lease {
            log::warn!(
                "cluster: lease of {} not renewed for {:?}: fenced (epoch {epoch}), masters nothing until it re-joins",
                self.cfg.name, self.cfg.lease
            );
            self.status.epoch.store(0, Ordering::SeqCst);
        }
        self.refresh();
    }

    /// Renews the lease, or re-joins when not a member.
    fn keep_membership(&mut self) -> Result<(), StoreError> {
        let epoch = self.status.epoch.load(Ordering::SeqCst);
        if epoch == 0 {
            let (e, _) = self
                .members
                .register(&self.cfg.name, &self.cfg.addr, self.cfg.lease)?;
            log::info!("cluster: {} re-joined under epoch {e}", self.cfg.name);
            self.status.epoch.store(e, Ordering::SeqCst);
            self.last_ok = Instant::now();
            return Ok(());
        }
        if self.members.renew(&self.cfg.name, epoch, self.cfg.lease)? {
            self.last_ok = Instant::now();
        } else {
            log::warn!(
                "cluster: {} epoch {epoch} is no longer a member (declared down or superseded): fenced",
                self.cfg.name
            );
            self.status.epoch.store(0, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Reads the members; publishes a view when the version or our epoch changed. While
    /// PostgreSQL cannot be read, a change of our epoch (fenced: 0) is still published, with
    /// the members last read: the shards must stop mastering at once, so that the topics they
    /// held load afresh (seq, members) once this node re-joins.
    fn refresh(&mut self) {
        let snap = match self.members.snapshot() {
            Ok(s) => s,
            Err(e) => {
                if self.errors == 0 {
                    log::warn!("cluster: {e}");
                }
                let epoch = self.status.epoch.load(Ordering::SeqCst);
                match self.last_snap.clone() {
                    Some(s) if epoch != self.last_epoch => s,
                    _ => return,
                }
            }
        };
        self.last_snap = Some(snap.clone());
        let epoch = self.status.epoch.load(Ordering::SeqCst);
        if snap.version == self.last_version && epoch == self.last_epoch {
            return;
        }
        self.last_version = snap.version;
        self.last_epoch = epoch;
        let view = Arc::new(View::of(&snap, &self.cfg.name, epoch));
        self.status.version.store(view.version, Ordering::SeqCst);
        self.status.total.store(view.total as u64, Ordering::SeqCst);
        self.status.live.store(
            snap.nodes
                .iter()
                .filter(|n| n.state == NodeState::Up)
                .count() as u64,
            Ordering::SeqCst,
        );
        *self.status.view.lock().unwrap_or_else(|p| p.into_inner()) = Some(view.clone());
        (self.on_change)(view);
    }
}
