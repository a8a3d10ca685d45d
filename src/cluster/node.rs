//! A running cluster node: the membership thread ([`Heartbeat`]) and the node links
//! ([`Links`]) started together, every new [`View`] handed to the links (which follow the
//! peers that are up) and to the caller (the shards), the figures a scrape reads, and the
//! clean stop (links closed, then the node leaves).

use std::net::TcpListener;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::heartbeat::{Heartbeat, MemberConfig, OnChange, Status, View};
use super::link::LinkConfig;
use super::links::{Links, OnMsg};
use crate::stats::ClusterFigures;
use crate::store::StoreError;

/// What the rest of the server reads from a running node (shared by every shard).
#[derive(Debug)]
pub struct NodeHandle {
    name: String,
    status: Arc<Status>,
    links: Arc<Links>,
    /// Peer names by slot: the small numbers remote session ids carry (`SessionId::remote`).
    slots: Mutex<Vec<String>>,
}

impl NodeHandle {
    /// The latest membership view.
    pub fn view(&self) -> Option<Arc<View>> {
        self.status.view()
    }

    /// The node's links (to send on).
    pub fn links(&self) -> &Arc<Links> {
        &self.links
    }

    /// The slot of node `peer` (given one on first use); `None` past 128 nodes.
    pub fn slot(&self, peer: &str) -> Option<u8> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = slots.iter().position(|n| n == peer) {
            return Some(i as u8);
        }
        (slots.len() < 0x80).then(|| {
            slots.push(peer.to_owned());
            (slots.len() - 1) as u8
        })
    }

    /// The node of `slot`.
    pub fn slot_node(&self, slot: u8) -> Option<String> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.get(slot as usize).cloned()
    }

    /// Membership and link figures for `/debug/vars` and `/metrics`.
    pub fn figures(&self) -> ClusterFigures {
        let s = &self.status;
        let (inbound, version_mismatches) = self.links.counts();
        ClusterFigures {
            node: self.name.clone(),
            epoch: s.epoch.load(Ordering::SeqCst),
            version: s.version.load(Ordering::SeqCst),
            total: s.total.load(Ordering::SeqCst),
            live: s.live.load(Ordering::SeqCst),
            inbound,
            version_mismatches,
            links: self.links.figures(),
        }
    }
}

/// The membership thread and the links of this node.
pub struct Node {
    heartbeat: Heartbeat,
    handle: Arc<NodeHandle>,
}

impl Node {
    /// Serves node links on `listener`, joins the cluster at `url` (its epoch kept in `epoch`,
    /// which the store's fence already holds), and calls `on_view` with every view, the first
    /// before returning.
    pub fn start(
        url: &str,
        member: MemberConfig,
        links: LinkConfig,
        listener: TcpListener,
        epoch: Arc<AtomicI64>,
        on_view: OnChange,
        on_msg: OnMsg,
    ) -> Result<Node, StoreError> {
        let status = Arc::new(Status::with_epoch(epoch));
        let links = Links::start(&member.name, links, listener, status.clone(), on_msg)
            .map_err(|e| StoreError::Backend(format!("cannot serve node links: {e}")))?;
        let to_links = links.clone();
        let name = member.name.clone();
        let heartbeat = Heartbeat::start_with(
            url,
            member,
            status.clone(),
            Box::new(move |v| {
                to_links.update(&v);
                on_view(v);
            }),
        );
        let heartbeat = match heartbeat {
            Ok(h) => h,
            Err(e) => {
                links.stop();
                return Err(e);
            }
        };
        Ok(Node {
            heartbeat,
            handle: Arc::new(NodeHandle {
                name,
                status,
                links,
                slots: Mutex::default(),
            }),
        })
    }

    pub fn handle(&self) -> &Arc<NodeHandle> {
        &self.handle
    }

    /// Closes the links, then leaves the cluster (peers take over at once).
    pub fn stop(self) {
        self.handle.links.stop();
        self.heartbeat.stop();
    }
}
