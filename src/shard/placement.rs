//! Topic placement on a cluster node: which node masters a topic under the membership view
//! the shard last received (`Local::ClusterView`), the refusal of requests for topics this
//! node does not master, the topics a new view takes away (relinquished, then unloaded), and
//! new group names drawn until they land on this node.
//!
//! Only groups and P2P conversations are placed: they carry seqs, and two masters on one
//! database would hand out the same seq. `me`, `fnd`, `slf` and `sys` are served on the
//! session's own node (the reference places `usr…`/`fnd…`/`sys` on the ring as well; that
//! would need proxy topics). A request for a topic mastered elsewhere (`Unreachable::OtherNode`)
//! is forwarded to its master (`proxy.rs`), and every placed topic is refused with 503 while
//! this node is fenced (`Unreachable::NotMember`). A standalone server
//! has no view and places everything here.

use std::sync::Arc;

use crate::cluster::View;
use crate::ids::random_body;
use crate::proto::client::ClientMsg;
use crate::proto::Decoded;
use crate::routing::{TopicRequest, Unreachable};
use crate::shard::{now, ShardCtx};
use crate::stats::ShardStats;
use crate::topic::TopicCx;

/// Whether the cluster places `topic` (it has seqs: a group or a P2P conversation).
pub fn placed(topic: &str) -> bool {
    topic.starts_with("grp") || topic.starts_with("p2p")
}

/// Most names drawn for a new group before giving up (it then lands elsewhere and is refused):
/// with N nodes up a draw lands here with probability about 1/N.
const NAME_DRAWS: usize = 1000;

impl ShardCtx {
    /// Whether this node serves `topic` now: `Ok` standalone, for a topic the cluster does not
    /// place, or when the current view names this node its master.
    pub(super) fn placement(&self, topic: &str) -> Result<(), Unreachable> {
        if self.cluster.is_none() || !placed(topic) {
            return Ok(());
        }
        let Some(view) = &self.view else {
            return Err(Unreachable::NotMember);
        };
        if view.epoch <= 0 {
            return Err(Unreachable::NotMember);
        }
        match view.master(topic) {
            Some(m) if m == view.me => Ok(()),
            Some(_) => Err(Unreachable::OtherNode),
            None => Err(Unreachable::NotMember),
        }
    }

    /// Whether `req` may reach `name` on this shard. Requests without a requester (detach,
    /// presence, refresh) always reach a loaded copy. A copy relinquished to another node is
    /// dropped once idle, when this node masters the topic again, so that it loads afresh.
    pub(super) fn admit(&mut self, name: &str, req: &TopicRequest) -> Result<(), Unreachable> {
        let placement = self.placement(name);
        if let Some(slot) = self.topics.get(name).filter(|s| s.moved) {
            if placement.is_ok() && slot.topic.is_idle() {
                self.unload_moved(name);
                return Ok(());
            }
            if req.hdr().is_none() {
                return Ok(());
            }
            return Err(placement.err().unwrap_or(Unreachable::NotMember));
        }
        if req.hdr().is_none() {
            return Ok(());
        }
        placement
    }

    /// A new membership view: topics this node no longer masters are relinquished (their
    /// sessions get `{pres term}`) and unloaded as soon as nothing is in flight for them.
    pub(super) fn cluster_view(&mut self, view: Arc<View>) {
        log::debug!(
            "shard {}: membership version {} (epoch {})",
            self.id.0,
            view.version,
            view.epoch
        );
        self.view = Some(view);
        let moved: Vec<String> = self
            .topics
            .iter()
            .filter(|(name, slot)| !slot.moved && self.placement(name).is_err())
            .map(|(name, _)| name.clone())
            .collect();
        for name in moved {
            tracing::info!(topic = %name, "the cluster moved this topic away: relinquished");
            if let Some(slot) = self.topics.get_mut(&name) {
                slot.moved = true;
            }
            self.with_topic(&name, |t, cx| t.relinquish(cx));
            if self.topics.get(&name).is_some_and(|s| s.topic.is_idle()) {
                self.unload_moved(&name);
            }
        }
        self.detach_gone_nodes();
        self.rejoin_view();
        self.run_work();
        self.flush();
    }

    /// Unloads a relinquished topic (its goodbyes, as an idle unload).
    fn unload_moved(&mut self, name: &str) {
        let Some(mut slot) = self.topics.remove(name) else {
            return;
        };
        self.me_glances.refresh(name, None);
        let mut out = std::mem::take(&mut self.topic_out);
        let mut cx = TopicCx::new(now(), &self.topic_limits, &mut out);
        slot.topic.on_unload(&mut cx);
        self.apply_topic_out(name, &mut out);
        self.topic_out = out;
        ShardStats::set(&self.stats.live_topics, self.topics.len() as u64);
    }

    /// The entropy for a session step: for a `{sub new…}` on a cluster node, drawn until the
    /// group name it makes (`grp` + `random_body`, as `session::expand` makes it) lands on this
    /// node, as the reference's `genLocalTopicName`.
    pub(super) fn entropy_for(&self, decoded: &Decoded) -> u64 {
        let creates = matches!(&decoded.msg, ClientMsg::Sub(s)
            if s.topic.starts_with("new") || s.topic.starts_with("nch"));
        let mut e: u64 = rand::random();
        if !creates || self.cluster.is_none() {
            return e;
        }
        for _ in 0..NAME_DRAWS {
            if self
                .placement(&format!("grp{}", random_body(e.to_le_bytes())))
                .is_ok()
            {
                break;
            }
            e = rand::random();
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::placed;

    #[test]
    fn only_topics_with_seqs_are_placed() {
        for t in ["grpAbc", "p2pXyz"] {
            assert!(placed(t), "{t}");
        }
        for t in ["usrAbc", "fndAbc", "slfAbc", "sys"] {
            assert!(!placed(t), "{t}");
        }
    }
}
