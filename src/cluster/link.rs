//! One outbound node link: a thread (`coretalk-link-PEER`) that dials the peer, says `Hello`,
//! then writes what its bounded queue holds and a ping every `link_ping_ms`, while a reader
//! thread takes the pongs (round-trip time) and notices a dead peer by its silence. A lost
//! connection is dialled again with a doubling back-off; what was queued when it broke is
//! refused, never left waiting.
//!
//! Blocking sockets on threads of their own, not glommio sockets on a shard: a link must keep
//! pinging while every shard is busy, a dial must never stall a shard's reactor, and with a
//! handful of peers a few threads cost nothing (ARCHITECTURE.md, the cluster).

use std::io::{BufWriter, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::heartbeat::Status;
use super::wire::{read_frame, write_frame, Frame, NodeMsg};

/// What links need to know about this node.
#[derive(Debug)]
pub struct Ident {
    pub name: String,
    pub status: Arc<Status>,
    /// Frames received from a peer on another membership version.
    pub mismatches: AtomicU64,
    /// The clock pings are stamped with.
    pub started: Instant,
}

impl Ident {
    /// A frame stamped with this node's current membership version.
    pub fn frame(&self, msg: NodeMsg) -> Frame {
        Frame {
            version: self.status.version.load(Ordering::SeqCst),
            msg,
        }
    }

    /// Counts a frame from a peer on another version.
    pub fn check_version(&self, f: &Frame) {
        if f.version != self.status.version.load(Ordering::SeqCst) {
            self.mismatches.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }
}

/// The link settings (`[cluster]` link_*).
#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub queue: usize,
    pub ping: Duration,
    pub timeout: Duration,
    pub backoff_max: Duration,
}

/// One link's figures, updated by its threads.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub connected: AtomicBool,
    pub queued: AtomicU64,
    /// The last round-trip time, µs (0: none measured yet).
    pub rtt_us: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Sends refused: the link was down or its queue full, or it broke with them queued.
    pub refused: AtomicU64,
    /// Connections made (the first, then every reconnect).
    pub connects: AtomicU64,
}

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Not connected (the caller answers its requester with an error at once).
    Down,
    /// The queue holds `link_queue` frames already.
    Full,
}

/// A running outbound link.
#[derive(Debug)]
pub struct Link {
    pub addr: String,
    pub epoch: i64,
    pub capacity: usize,
    pub stats: Arc<LinkStats>,
    tx: SyncSender<NodeMsg>,
    stop: Arc<AtomicBool>,
    sock: Arc<Mutex<Option<TcpStream>>>,
}

impl Link {
    /// Starts the link's thread towards `peer` at `addr` (under its `epoch`).
    pub fn spawn(
        ident: Arc<Ident>,
        peer: &str,
        addr: &str,
        epoch: i64,
        cfg: &LinkConfig,
    ) -> std::io::Result<Link> {
        let (tx, rx) = sync_channel(cfg.queue);
        let link = Link {
            addr: addr.to_owned(),
            epoch,
            capacity: cfg.queue,
            stats: Arc::new(LinkStats::default()),
            tx,
            stop: Arc::new(AtomicBool::new(false)),
            sock: Arc::new(Mutex::new(None)),
        };
        let run = Run {
            ident,
            peer: peer.to_owned(),
            addr: addr.to_owned(),
            cfg: cfg.clone(),
            rx,
            stats: link.stats.clone(),
            stop: link.stop.clone(),
            sock: link.sock.clone(),
        };
        std::thread::Builder::new()
            .name(format!("coretalk-link-{peer}"))
            .spawn(move || run.run())?;
        Ok(link)
    }

    /// Queues `msg` for the peer; refused at once when the link is down or full.
    pub fn send(&self, msg: NodeMsg) -> Result<(), SendError> {
        if !self.stats.connected.load(Ordering::SeqCst) {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(SendError::Down);
        }
        match self.tx.try_send(msg) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => SendError::Full,
                    TrySendError::Disconnected(_) => SendError::Down,
                })
            }
        }
    }

    /// Stops the thread (it exits within a ping interval; the socket is closed now).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.sock.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The link thread's state.
struct Run {
    ident: Arc<Ident>,
    peer: String,
    addr: String,
    cfg: LinkConfig,
    rx: Receiver<NodeMsg>,
    stats: Arc<LinkStats>,
    stop: Arc<AtomicBool>,
    sock: Arc<Mutex<Option<TcpStream>>>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);

impl Run {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `d`, waking early when stopped.
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(d));
        }
    }

    fn run(self) {
        let mut backoff = BACKOFF_MIN;
        let mut failures = 0u32;
        while !self.stopped() {
            let stream = match self.dial() {
                Ok(s) => s,
                Err(e) => {
                    if failures == 0 {
                        log::warn!(
                            "cluster: cannot reach node {} at {}: {e}; retrying",
                            self.peer,
                            self.addr
                        );
                    }
                    failures += 1;
                    self.pause(backoff);
                    backoff = (backoff * 2).min(self.cfg.backoff_max);
                    continue;
                }
            };
            failures = 0;
            let up = Instant::now();
            self.serve(stream);
            self.stats.connected.store(false, Ordering::SeqCst);
            // What waited in the queue cannot go anywhere now: refuse it.
            while self.rx.try_recv().is_ok() {
                self.stats.queued.fetch_sub(1, Ordering::SeqCst);
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
            }
            if self.stopped() {
                break;
            }
            log::warn!("cluster: link to node {} lost; reconnecting", self.peer);
            if up.elapsed() > self.cfg.backoff_max {
                backoff = BACKOFF_MIN;
            }
            self.pause(backoff);
            backoff = (backoff * 2).min(self.cfg.backoff_max);
        }
        if let Some(s) = self.sock.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn dial(&self) -> std::io::Result<TcpStream> {
        let addr = self.addr.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "resolves to nothing")
        })?;
        let s = TcpStream::connect_timeout(&addr, self.cfg.timeout)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(self.cfg.timeout))?;
        Ok(s)
    }

    /// One connection: hello, then queue and pings out while the reader takes pongs in.
    fn serve(&self, stream: TcpStream) {
        let (Ok(reader), Ok(handle)) = (stream.try_clone(), stream.try_clone()) else {
            return;
        };
        *self.sock.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        if self.stopped() {
            return;
        }
        let mut w = BufWriter::new(stream);
        let hello = NodeMsg::Hello {
            node: self.ident.name.clone(),
            epoch: self.ident.status.epoch.load(Ordering::SeqCst),
        };
        if write_frame(&mut w, &self.ident.frame(hello))
            .and_then(|()| w.flush())
            .is_err()
        {
            return;
        }
        self.stats.connected.store(true, Ordering::SeqCst);
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        log::info!("cluster: link to node {} at {} up", self.peer, self.addr);
        let alive = Arc::new(AtomicBool::new(true));
        let rx_thread = {
            let (ident, stats, alive) = (self.ident.clone(), self.stats.clone(), alive.clone());
            let mut reader = reader;
            std::thread::Builder::new()
                .name(format!("coretalk-link-rx-{}", self.peer))
                .spawn(move || {
                    while let Ok(f) = read_frame(&mut reader) {
                        stats.received.fetch_add(1, Ordering::Relaxed);
                        ident.check_version(&f);
                        if let NodeMsg::Pong { sent_us } = f.msg {
                            let rtt = ident.now_us().saturating_sub(sent_us).max(1);
                            stats.rtt_us.store(rtt, Ordering::Relaxed);
                        }
                    }
                    alive.store(false, Ordering::SeqCst);
                    let _ = reader.shutdown(Shutdown::Both);
                })
        };
        let mut next_ping = Instant::now();
        while !self.stopped() && alive.load(Ordering::SeqCst) {
            let wait = next_ping
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            let mut batch = Vec::new();
            match self.rx.recv_timeout(wait) {
                Ok(m) => batch.push(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < 64 {
                match self.rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            self.stats
                .queued
                .fetch_sub(batch.len() as u64, Ordering::SeqCst);
            if Instant::now() >= next_ping {
                batch.push(NodeMsg::Ping {
                    sent_us: self.ident.now_us(),
                });
                next_ping = Instant::now() + self.cfg.ping;
            }
            if batch.is_empty() {
                continue;
            }
            let n = batch.len() as u64;
            let written = batch
                .into_iter()
                .try_for_each(|m| write_frame(&mut w, &self.ident.frame(m)))
                .and_then(|()| w.flush());
            if written.is_err() {
                break;
            }
            self.stats.sent.fetch_add(n, Ordering::Relaxed);
        }
        self.stats.connected.store(false, Ordering::SeqCst);
        let _ = w.get_ref().shutdown(Shutdown::Both);
        if let Ok(t) = rx_thread {
            let _ = t.join();
        }
    }
}
