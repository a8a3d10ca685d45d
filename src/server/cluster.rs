//! Starting this server as a cluster node (`cluster.node`): the node-to-node listener bound
//! before anything else (so port 0 resolves and a taken port fails the start), the epoch the
//! store's fence shares with the membership thread, and the [`Node`] started once the shards'
//! service queues exist, posting every membership view to each shard and what peers send to
//! the shard it is for (a forwarded request to the topic's home shard, session events and
//! broadcasts to the sessions' shards, a long-poll request to its session's shard and its
//! answer to the shard whose client waits).

use std::net::TcpListener;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};

use crate::cluster::wire::NodeMsg;
use crate::cluster::{LinkConfig, MemberConfig, Node};
use crate::config::Config;
use crate::ids::SessionId;
use crate::routing::home_shard;
use crate::shard::{Local, ServiceSender};
use crate::store::pg::Fence;

/// What is made before the store opens.
pub(super) struct Prepared {
    listener: TcpListener,
    /// The address written into this node's row.
    pub advertise: String,
    epoch: Arc<AtomicI64>,
}

impl Prepared {
    /// The store's fence: this node's row, under the epoch the membership thread keeps (0, so
    /// every commit is refused, until the node has joined).
    pub fn fence(&self, cfg: &Config) -> Fence {
        Fence {
            node: cfg.cluster.node.trim().to_owned(),
            epoch: self.epoch.clone(),
        }
    }
}

/// Binds the node listener; `None` for a standalone server.
pub(super) fn prepare(cfg: &Config) -> anyhow::Result<Option<Prepared>> {
    let c = &cfg.cluster;
    if !c.enabled() {
        return Ok(None);
    }
    let listener = TcpListener::bind(c.listen.trim()).with_context(|| {
        format!(
            "cannot bind the node listener {} (cluster.listen)",
            c.listen
        )
    })?;
    let local = listener.local_addr()?;
    let advertise = match c.advertise.trim() {
        "" if local.ip().is_unspecified() => {
            return Err(anyhow!(
            "cluster.listen {local} is a wildcard address peers cannot dial: set cluster.advertise"
        ))
        }
        "" => local.to_string(),
        a => a.to_owned(),
    };
    Ok(Some(Prepared {
        listener,
        advertise,
        epoch: Arc::new(AtomicI64::new(0)),
    }))
}

/// Joins the cluster and starts the links; every view goes to every shard.
pub(super) fn start(
    cfg: &Config,
    prepared: Prepared,
    services: &[ServiceSender],
) -> anyhow::Result<Node> {
    let c = &cfg.cluster;
    let ms = Duration::from_millis;
    let member = MemberConfig {
        name: c.node.trim().to_owned(),
        addr: prepared.advertise.clone(),
        lease: ms(c.lease_ms),
        heartbeat: ms(c.heartbeat_ms),
        connect_timeout: ms(c.connect_timeout_ms),
    };
    let links = LinkConfig {
        queue: c.link_queue,
        ping: ms(c.link_ping_ms),
        timeout: ms(c.link_timeout_ms),
        backoff_max: ms(c.link_backoff_max_ms),
    };
    let senders = services.to_vec();
    let to_shards = services.to_vec();
    Node::start(
        cfg.store.url.trim(),
        member,
        links,
        prepared.listener,
        prepared.epoch,
        Box::new(move |view| {
            for s in &senders {
                // A shard that has exited no longer needs views.
                let _ = s.send(Local::ClusterView(view.clone()));
            }
        }),
        Box::new(move |peer, msg| from_peer(&to_shards, peer, msg)),
    )
    .map_err(|e| anyhow!("cannot join the cluster as node {}: {e}", c.node.trim()))
}

/// Posts proxied traffic from node `peer` to the shards it is for.
fn from_peer(shards: &[ServiceSender], peer: &str, msg: NodeMsg) {
    let n = shards.len();
    let post = |shard: usize, msg| {
        if let Some(s) = shards.get(shard) {
            let _ = s.send(Local::FromNode {
                peer: peer.to_owned(),
                msg,
            });
        }
    };
    match msg {
        NodeMsg::Forward { topic, req } => {
            post(home_shard(&topic, n).idx(), NodeMsg::Forward { topic, req })
        }
        NodeMsg::ToSession { sid, ev } => {
            post(SessionId(sid).shard().idx(), NodeMsg::ToSession { sid, ev })
        }
        NodeMsg::Deliver { sids, frame } => {
            // One origin shard per batch (the master groups them so).
            let shard = sids.first().map_or(0, |s| SessionId(*s).shard().idx());
            post(shard, NodeMsg::Deliver { sids, frame })
        }
        // Any shard: it hands each note to the home shard of its user's `me`.
        NodeMsg::ToMe { notes } => post(0, NodeMsg::ToMe { notes }),
        msg @ (NodeMsg::LpRequest { shard, .. } | NodeMsg::LpCancel { shard, .. }) => {
            // A shard this node does not have: shard 0 answers the request "invalid".
            let shard = if (shard as usize) < n {
                shard as usize
            } else {
                0
            };
            post(shard, msg)
        }
        msg @ NodeMsg::LpAnswer { reply, .. } => post(reply as usize, msg),
        NodeMsg::Hello { .. } | NodeMsg::Ping { .. } | NodeMsg::Pong { .. } => {}
    }
}
