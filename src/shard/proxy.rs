//! Topics mastered by another cluster node: the origin's half (a client's request forwarded
//! to the master over the node link, the answers applied to its sessions, and a clear
//! `{ctrl 502/504}` for a request whose link is down or whose master is silent) and the
//! master's half (a forwarded request run by the topic as if from a session, and what the
//! topic sends that session or broadcasts carried back).
//!
//! The master's topic sees each remote session as a member of its own: a stand-in id
//! ([`SessionId::remote`]: the origin node's slot, the origin's shard and session) under the
//! requester's snapshot (uid, auth level). The topic counts it online per user and answers it
//! like any session; the routing (`ShardCtx::send`) sends what is addressed to a stand-in over
//! the link: one `ToSession` for a reply, one `Deliver` per (origin node, origin shard) for a
//! broadcast, which the origin fans out with the ordinary local `Deliver`. A view without the
//! origin node detaches its stand-ins.
//!
//! Every client request for such a topic is forwarded, from JSON and protobuf (gRPC) sessions
//! alike. Frames cross as JSON; for a protobuf session's stand-in (the master remembers which
//! stand-ins made requests as protobuf sessions, [`REMOTE_PB_LINGER_MS`]) they cross with
//! their protobuf bytes too, encoded once on the master like for its own sessions, and the
//! origin sends each session the bytes of its encoding. Presence for users' `me` topics on
//! other nodes is `proxy_me.rs`.

use super::proxy_wire::{self as proxy, from_raw, to_raw, Carried, Event, Forwarded};
use crate::cluster::wire::NodeMsg;
use crate::ids::{SessionId, ShardId, UnixMillis};
use crate::proto::Outcome;
use crate::routing::{Envelope, SessionEvent, TopicRequest, Unreachable};
use crate::shard::{now, ShardCtx};

/// How long the master remembers that a stand-in is a protobuf session after its last
/// request, while it is attached to no topic of the shard (attached, it is kept).
const REMOTE_PB_LINGER_MS: u64 = 60 * 60 * 1000;

/// A forwarded request the origin waits on for an answer.
#[derive(Debug)]
pub(super) struct Pending {
    peer: String,
    sid: SessionId,
    id: String,
    as_seen: String,
    topic: String,
    join: bool,
    deadline: UnixMillis,
}

impl ShardCtx {
    /// The node that masters `topic`, when it is another node.
    pub(super) fn master_elsewhere(&self, topic: &str) -> Option<String> {
        let view = self.view.as_ref()?;
        let m = view.master(topic)?;
        (view.epoch > 0 && m != view.me).then(|| m.to_owned())
    }

    /// Origin: sends `req` for `topic` to its master `peer`; one whose link is down gets
    /// `{ctrl 502}` at once (as does a runtime request `proxy_wire::forward` does not carry,
    /// which `route` never hands it).
    pub(super) fn forward(&mut self, topic: String, peer: String, req: TopicRequest) {
        let Some(node) = self.cluster.clone() else {
            return self.topic_missing(&topic, req, Unreachable::NotMember);
        };
        self.rejoin_note(&topic, &peer, &req);
        let hdr = req.hdr().cloned();
        let join = matches!(req, TopicRequest::Join { .. });
        let fwd: Forwarded = match proxy::forward(&topic, req) {
            Ok(f) => f,
            Err(req) => return self.topic_missing(&topic, req, Unreachable::OtherNode),
        };
        let answered = fwd.req.answered();
        let msg = NodeMsg::Forward {
            topic: topic.clone(),
            req: to_raw(&fwd),
        };
        match node.links().send(&peer, msg) {
            Ok(()) => {
                if let Some(h) = hdr.filter(|h| answered && h.id.is_some()) {
                    self.proxied.push(Pending {
                        peer,
                        sid: h.req.sid,
                        id: h.id.unwrap_or_default(),
                        as_seen: h.as_seen,
                        topic,
                        join,
                        deadline: UnixMillis(now().0 + self.cfg.cluster.link_timeout_ms),
                    });
                }
            }
            Err(e) => {
                log::debug!("cluster: cannot forward a request for {topic} to {peer}: {e:?}");
                if let Some(h) = hdr.filter(|_| answered) {
                    self.proxy_fail(h.req.sid, h.id, &h.as_seen, &topic, join, false);
                }
            }
        }
    }

    /// Answers a forwarded request that will get no answer: 502 (link down) or 504 (timeout);
    /// a join is also told it is not attached.
    fn proxy_fail(
        &mut self,
        sid: SessionId,
        id: Option<String>,
        as_seen: &str,
        topic: &str,
        join: bool,
        timeout: bool,
    ) {
        let o = if timeout {
            Outcome::ClusterTimeout
        } else {
            Outcome::ClusterUnreachable
        };
        let frame = crate::proto::Frame::new(o.ctrl(id.as_deref(), Some(as_seen), now()).msg());
        self.send_to_session(sid, SessionEvent::Frames(vec![frame]));
        if join {
            let topic = topic.to_owned();
            self.send_to_session(sid, SessionEvent::Detached { topic });
        }
    }

    /// Origin, every housekeeping tick: forwarded requests past their deadline get 504, those
    /// whose link went down meanwhile 502.
    pub(super) fn proxy_expire(&mut self, now: UnixMillis) {
        self.forget_remote_pb(now);
        if self.proxied.is_empty() {
            return;
        }
        let Some(node) = self.cluster.clone() else {
            return;
        };
        let (due, keep): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.proxied)
            .into_iter()
            .partition(|p| p.deadline <= now || !node.links().connected(&p.peer));
        self.proxied = keep;
        for p in due {
            let timeout = p.deadline <= now;
            log::info!(
                "cluster: a request for {} forwarded to {} {}",
                p.topic,
                p.peer,
                if timeout {
                    "timed out"
                } else {
                    "lost its link"
                }
            );
            self.proxy_fail(p.sid, Some(p.id), &p.as_seen, &p.topic, p.join, timeout);
        }
        self.run_work();
        self.flush();
    }

    /// Master: protobuf stand-ins idle past [`REMOTE_PB_LINGER_MS`] and attached to no topic
    /// are forgotten (the next request of such a session, if any, is remembered again before
    /// it is answered).
    fn forget_remote_pb(&mut self, now: UnixMillis) {
        let old = |at: &UnixMillis| now.0.saturating_sub(at.0) >= REMOTE_PB_LINGER_MS;
        if !self.remote_pb.values().any(old) {
            return;
        }
        let attached: std::collections::HashSet<SessionId> = self
            .topics
            .values()
            .flat_map(|slot| slot.topic.attached_sids())
            .filter(|sid| self.remote_pb.contains_key(sid))
            .collect();
        self.remote_pb
            .retain(|sid, at| !old(at) || attached.contains(sid));
    }

    /// Master, on a new view: remote members of nodes that are no longer up are detached
    /// (their sessions are gone with their node, and their users must not stay online).
    pub(super) fn detach_gone_nodes(&mut self) {
        let (Some(node), Some(view)) = (self.cluster.clone(), self.view.clone()) else {
            return;
        };
        let up = |slot| {
            node.slot_node(slot)
                .is_some_and(|n| view.up.iter().any(|r| r.name == n))
        };
        let gone: Vec<(String, SessionId)> = self
            .topics
            .iter()
            .flat_map(|(name, slot)| {
                slot.topic
                    .attached_sids()
                    .filter(|sid| sid.remote_parts().is_some_and(|(s, _)| !up(s)))
                    .map(|sid| (name.clone(), sid))
            })
            .collect();
        self.remote_pb
            .retain(|sid, _| sid.remote_parts().is_some_and(|(s, _)| up(s)));
        for (name, sid) in gone {
            tracing::info!(topic = %name, session = %sid, "its node is down: remote member detached");
            self.topic_request(name, TopicRequest::Detach { sid });
        }
    }

    /// Master: a forwarded request for a topic this node does not master under its view
    /// (the origin's view is newer or older than ours) is answered with a retryable error, and
    /// the session stays attached where it is (only a join is told it did not attach).
    fn refuse_forwarded(&mut self, topic: &str, req: TopicRequest) {
        let Some(hdr) = req.hdr() else {
            return;
        };
        // The requests the origin waits on an answer for (`FwdReq::answered`).
        use TopicRequest::{Del, Get, Join, Leave, Publish, Set};
        if !matches!(
            req,
            Join { .. } | Leave { .. } | Publish { .. } | Get { .. } | Set { .. } | Del { .. }
        ) {
            return;
        }
        let o = match self.placement(topic) {
            Err(Unreachable::NotMember) => Outcome::ServiceUnavailable,
            _ => Outcome::ClusterUnreachable,
        };
        let (sid, id) = (hdr.req.sid, hdr.id.as_deref());
        let frame = crate::proto::Frame::new(o.ctrl(id, Some(&hdr.as_seen), now()).msg());
        let join = matches!(req, TopicRequest::Join { .. });
        self.send_to_session(sid, SessionEvent::Frames(vec![frame]));
        if join {
            let topic = topic.to_owned();
            self.send_to_session(sid, SessionEvent::Detached { topic });
        }
    }

    /// Proxied traffic from node `peer`.
    pub(super) fn node_msg(&mut self, peer: String, msg: NodeMsg) {
        match msg {
            NodeMsg::Forward { topic, req } => {
                let (Some(node), Some(f)) = (self.cluster.clone(), from_raw::<Forwarded>(&req))
                else {
                    log::warn!("cluster: an unreadable request for {topic} from {peer}");
                    return;
                };
                let origin = SessionId(f.sid);
                let Some(sid) = node
                    .slot(&peer)
                    .and_then(|slot| SessionId::remote(slot, origin))
                else {
                    log::warn!("cluster: no session slot for node {peer}: request dropped");
                    return;
                };
                if f.pb {
                    self.remote_pb.insert(sid, now());
                }
                let (topic, req) = f.into_request(sid);
                if req.hdr().is_some() && self.placement(&topic).is_err() {
                    return self.refuse_forwarded(&topic, req);
                }
                self.topic_request(topic, req);
            }
            NodeMsg::ToSession { sid, ev } => {
                let Some(ev) = from_raw::<Event>(&ev) else {
                    log::warn!("cluster: an unreadable session event from {peer}");
                    return;
                };
                let sid = SessionId(sid);
                let attached = match &ev {
                    Event::Attached { topic, seq } => Some((topic.as_str(), *seq)),
                    _ => None,
                };
                let detached = match &ev {
                    Event::Detached { topic } => Some(topic.as_str()),
                    _ => None,
                };
                if !self.rejoin_from(&peer, sid, attached, detached) {
                    log::debug!("cluster: a detach from {peer}, no longer the master: dropped");
                    return;
                }
                self.rejoin_acks(sid, &ev);
                let answered: Vec<String> = ev.answers().map(str::to_owned).collect();
                if !answered.is_empty() {
                    self.proxied
                        .retain(|p| !(p.sid == sid && answered.contains(&p.id)));
                }
                self.session_event(sid, ev.into_event());
            }
            NodeMsg::Deliver { sids, frame } => {
                let Some(frame) = from_raw::<Carried>(&frame) else {
                    log::warn!("cluster: an unreadable broadcast from {peer}");
                    return;
                };
                let sids: Vec<SessionId> = sids.into_iter().map(SessionId).collect();
                let frame = frame.into_frame();
                self.rejoin_track(&frame, &sids);
                self.deliver_local(&frame, &sids);
            }
            NodeMsg::ToMe { notes } => self.me_notes_from(&peer, &notes),
            msg @ (NodeMsg::LpRequest { .. }
            | NodeMsg::LpAnswer { .. }
            | NodeMsg::LpCancel { .. }) => self.lp_node_msg(peer, msg),
            NodeMsg::Hello { .. } | NodeMsg::Ping { .. } | NodeMsg::Pong { .. } => {}
        }
    }

    /// Master: what the routing addressed to a remote session's stand-in (`dst` is beyond
    /// every local shard) crosses the link to its node.
    pub(super) fn send_remote(&mut self, dst: ShardId, env: Envelope) {
        let Some(node) = self.cluster.clone() else {
            return;
        };
        let origin = |sid: SessionId| sid.remote_parts();
        // An attachment whose news cannot cross is undone: the origin answers its session
        // 502/504 and detaches it, so the topic must not keep it.
        let mut attached = None;
        let (slot, msg) = match env {
            Envelope::Session { sid, ev } => {
                let Some((slot, o)) = origin(sid) else { return };
                let mut ev = Event::of(&ev, self.remote_pb.contains_key(&sid));
                if let Event::Attached { topic, seq } = &mut ev {
                    *seq = self.topics.get(topic).map(|t| t.topic.settled_seq());
                    attached = Some((topic.clone(), sid));
                }
                (
                    slot,
                    NodeMsg::ToSession {
                        sid: o.0,
                        ev: to_raw(&ev),
                    },
                )
            }
            Envelope::Deliver { frame, sids } => {
                let mut slot = None;
                let pb = sids.iter().any(|sid| self.remote_pb.contains_key(sid));
                let sids: Vec<u64> = sids
                    .into_iter()
                    .filter_map(origin)
                    .map(|(s, o)| {
                        slot = Some(s);
                        o.0
                    })
                    .collect();
                let Some(slot) = slot else { return };
                let frame = to_raw(&Carried::of(&frame, pb));
                (slot, NodeMsg::Deliver { sids, frame })
            }
            other => {
                log::debug!("cluster: nothing to carry to shard {} for {other:?}", dst.0);
                return;
            }
        };
        let Some(peer) = node.slot_node(slot) else {
            return;
        };
        if let Err(e) = node.links().send(&peer, msg) {
            log::debug!("cluster: cannot carry a topic's output to node {peer}: {e:?}");
            if let Some((topic, sid)) = attached {
                let home = crate::routing::home_shard(&topic, self.n_shards);
                let req = TopicRequest::Detach { sid };
                self.send(home, Envelope::Topic { topic, req });
            }
        }
    }
}
