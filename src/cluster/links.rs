//! The node links of one node: the listener on `cluster.listen` (a `coretalk-links` thread;
//! each inbound connection gets a thread that answers its pings) and one outbound [`Link`] per
//! peer that is up in the current membership view, made, replaced (the peer re-joined under a
//! new epoch or address) and dropped (it went down or left) by [`Links::update`].
//!
//! Links are directed: a node sends on its own outbound link and only answers pings on the
//! inbound ones, so each ordered pair of nodes has one FIFO pipe (the reference's model too).
//! Everything else an inbound connection carries (proxied topic traffic) goes to `on_msg`.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::heartbeat::{Status, View};
use super::link::{Ident, Link, LinkConfig, SendError};
use super::wire::{read_frame, write_frame, NodeMsg};
use crate::stats::LinkFigures;

/// Where a peer's proxied traffic goes (the shards): called on the inbound connection's
/// thread with the peer's name and each frame that is not a ping.
pub type OnMsg = Box<dyn Fn(&str, NodeMsg) + Send + Sync>;

/// The links of this node.
pub struct Links {
    on_msg: OnMsg,
    ident: Arc<Ident>,
    cfg: LinkConfig,
    links: Mutex<BTreeMap<String, Link>>,
    stop: Arc<AtomicBool>,
    /// Inbound connections open now.
    inbound: Arc<AtomicU64>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("node", &self.ident.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Links {
    /// Serves `listener` (already bound) as node `name`; no outbound link until
    /// [`Links::update`] names the peers.
    pub fn start(
        name: &str,
        cfg: LinkConfig,
        listener: TcpListener,
        status: Arc<Status>,
        on_msg: OnMsg,
    ) -> std::io::Result<Arc<Links>> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let links = Arc::new(Links {
            on_msg,
            ident: Arc::new(Ident {
                name: name.to_owned(),
                status,
                mismatches: AtomicU64::new(0),
                started: Instant::now(),
            }),
            cfg,
            links: Mutex::new(BTreeMap::new()),
            stop: Arc::new(AtomicBool::new(false)),
            inbound: Arc::new(AtomicU64::new(0)),
            addr,
        });
        let l = links.clone();
        std::thread::Builder::new()
            .name("coretalk-links".into())
            .spawn(move || l.accept_loop(listener))?;
        Ok(links)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes the outbound links match the peers that are up in `view`.
    pub fn update(&self, view: &View) {
        if self.stop.load(Ordering::SeqCst) {
            return;
        }
        let want: BTreeMap<&str, (&str, i64)> = view
            .up
            .iter()
            .filter(|n| n.name != self.ident.name)
            .map(|n| (n.name.as_str(), (n.addr.as_str(), n.epoch)))
            .collect();
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.retain(|peer, l| {
            let keep = want
                .get(peer.as_str())
                .is_some_and(|(addr, epoch)| *addr == l.addr && *epoch == l.epoch);
            if !keep {
                log::info!("cluster: link to node {peer} dropped (down, left or re-joined)");
            }
            keep
        });
        for (peer, (addr, epoch)) in want {
            if links.contains_key(peer) {
                continue;
            }
            match Link::spawn(self.ident.clone(), peer, addr, epoch, &self.cfg) {
                Ok(l) => {
                    links.insert(peer.to_owned(), l);
                }
                Err(e) => log::error!("cluster: cannot start the link to node {peer}: {e}"),
            }
        }
    }

    /// Queues `msg` on the link to `peer`.
    pub fn send(&self, peer: &str, msg: NodeMsg) -> Result<(), SendError> {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.get(peer).ok_or(SendError::Down)?.send(msg)
    }

    /// Whether the outbound link to `peer` is connected now.
    pub fn connected(&self, peer: &str) -> bool {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .get(peer)
            .is_some_and(|l| l.stats.connected.load(Ordering::SeqCst))
    }

    /// Each outbound link's figures, by peer name.
    pub fn figures(&self) -> Vec<LinkFigures> {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .iter()
            .map(|(peer, l)| {
                let s = &l.stats;
                LinkFigures {
                    peer: peer.clone(),
                    addr: l.addr.clone(),
                    connected: s.connected.load(Ordering::SeqCst),
                    queued: s.queued.load(Ordering::SeqCst),
                    capacity: l.capacity as u64,
                    rtt_us: s.rtt_us.load(Ordering::Relaxed),
                    sent: s.sent.load(Ordering::Relaxed),
                    received: s.received.load(Ordering::Relaxed),
                    refused: s.refused.load(Ordering::Relaxed),
                    connects: s.connects.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Inbound connections open now, and frames received on another membership version.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inbound.load(Ordering::SeqCst),
            self.ident.mismatches.load(Ordering::Relaxed),
        )
    }

    /// Closes every link and stops accepting.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.links.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        while !self.stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((s, from)) => {
                    let me = self.clone();
                    let spawned = std::thread::Builder::new()
                        .name("coretalk-link-in".into())
                        .spawn(move || me.serve_inbound(s, from));
                    if let Err(e) = spawned {
                        log::error!("cluster: cannot serve a node link from {from}: {e}");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    log::warn!("cluster: node link accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// One inbound connection: its hello, then a pong for every ping, until it goes quiet
    /// for `link_timeout_ms`, closes, or this node stops.
    fn serve_inbound(&self, s: TcpStream, from: SocketAddr) {
        let setup = s
            .set_nonblocking(false)
            .and_then(|()| s.set_nodelay(true))
            .and_then(|()| s.set_read_timeout(Some(self.cfg.timeout)));
        let Ok(mut reader) = setup.and_then(|()| s.try_clone()) else {
            return;
        };
        let peer = match read_frame(&mut reader) {
            Ok(f) => match f.msg {
                NodeMsg::Hello { node, epoch } => {
                    log::info!("cluster: link from node {node} (epoch {epoch}) at {from}");
                    node
                }
                other => {
                    log::warn!("cluster: node link from {from} began with {other:?}, not hello");
                    return;
                }
            },
            Err(e) => {
                log::warn!("cluster: node link from {from}: no hello: {e}");
                return;
            }
        };
        self.inbound.fetch_add(1, Ordering::SeqCst);
        let mut w = BufWriter::new(s);
        while !self.stop.load(Ordering::SeqCst) {
            let Ok(f) = read_frame(&mut reader) else {
                break;
            };
            self.ident.check_version(&f);
            match f.msg {
                NodeMsg::Ping { sent_us } => {
                    let pong = self.ident.frame(NodeMsg::Pong { sent_us });
                    if write_frame(&mut w, &pong).and_then(|()| w.flush()).is_err() {
                        break;
                    }
                }
                NodeMsg::Hello { .. } | NodeMsg::Pong { .. } => {}
                msg => (self.on_msg)(&peer, msg),
            }
        }
        self.inbound.fetch_sub(1, Ordering::SeqCst);
        let _ = w.get_ref().shutdown(Shutdown::Both);
        log::debug!("cluster: link from node {peer} closed");
    }
}
