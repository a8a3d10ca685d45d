//! Long polling across cluster nodes: a long-poll request whose session lives on another node
//! (a load balancer without stickiness sent it here) is forwarded over the node link and its
//! answer relayed back, so a client may send each request to any node.
//!
//! The `sid` a cluster node hands out says where the session lives: the session handle's 22
//! characters, a `.`, and the node's name (names are letters, digits, `-`, `_` and `.`, so the
//! whole stays safe in a URL; a standalone server's sids are the bare handle). A request for
//! another node's session goes, as plain JSON ([`Fwd`]), in `NodeMsg::LpRequest` to that node's
//! shard that holds the session; the shard there runs it like a request of its own connections
//! (`longpoll.rs`: attach, send or poll, hold up to `longpoll.hold_ms`) and sends the answer
//! ([`Ans`]) back in `NodeMsg::LpAnswer`. Nothing blocks: the waiting is the accepting shard's
//! `LpWait`, the hold is the home shard's ordinary hold task. A client that goes away cancels the
//! hold there (`NodeMsg::LpCancel`).
//!
//! A link that is down, or that goes down while a request waits (checked every housekeeping
//! tick), answers the request [`LpAnswer::Unreachable`] (HTTP 502) at once; the session itself
//! is not touched, so a request after the link came back works.

use std::rc::Rc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::longpoll::LpWait;
use super::proxy_wire::{from_raw, to_raw};
use crate::cluster::wire::NodeMsg;
use crate::ids::{SessionHandle, ShardId};
use crate::routing::{Envelope, LpAnswer, LpReplyTo, LpRequest};
use crate::shard::ShardCtx;

/// Where a long-poll `sid` says its session lives.
#[derive(Debug, PartialEq, Eq)]
pub enum LpTarget {
    /// On this node (the handle names one of its shards).
    Here(SessionHandle),
    /// On cluster node `node`.
    Node(String, SessionHandle),
    /// Not a sid this cluster made.
    Invalid,
}

/// A long-poll request before it is decoded: what crosses to another node.
#[derive(Debug, PartialEq, Eq)]
pub enum LpBody {
    /// No body: the next queued frame.
    Poll,
    /// The network probe `1`.
    Probe,
    /// One client message, as the client sent it.
    Send(Vec<u8>),
}

impl LpBody {
    /// The request the session's shard runs (the message decoded here).
    pub fn decoded(self) -> LpRequest {
        match self {
            LpBody::Poll => LpRequest::Poll,
            LpBody::Probe => LpRequest::Probe,
            LpBody::Send(b) => LpRequest::Send(Box::new(crate::proto::decode(&b))),
        }
    }
}

/// A forwarded long-poll request.
#[derive(Debug, Serialize, Deserialize)]
struct Fwd {
    /// The session handle's wire form.
    sid: String,
    kind: Kind,
    /// A message's bytes, standard base64 (they need not be UTF-8).
    #[serde(default)]
    body: String,
}

#[derive(Debug, Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Poll,
    Probe,
    Send,
}

/// The answer to a forwarded request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Ans {
    Accepted,
    Empty,
    Invalid,
    Unreachable,
    /// The frame's bytes (the session's JSON, or the probe's `0`).
    Frame(String),
}

impl Ans {
    fn of(a: LpAnswer) -> Ans {
        match a {
            LpAnswer::Accepted => Ans::Accepted,
            LpAnswer::Empty => Ans::Empty,
            LpAnswer::Invalid => Ans::Invalid,
            LpAnswer::Unreachable => Ans::Unreachable,
            LpAnswer::Frame(f) => Ans::Frame(String::from_utf8_lossy(&f).into_owned()),
        }
    }

    fn answer(self) -> LpAnswer {
        match self {
            Ans::Accepted => LpAnswer::Accepted,
            Ans::Empty => LpAnswer::Empty,
            Ans::Invalid => LpAnswer::Invalid,
            Ans::Unreachable => LpAnswer::Unreachable,
            Ans::Frame(f) => LpAnswer::Frame(f.into()),
        }
    }
}

/// On the session's node: a request forwarded by node `peer`, run under a ticket of this shard.
#[derive(Debug)]
pub(super) struct Served {
    peer: String,
    /// The origin's shard and ticket (where the answer goes).
    reply: u16,
    ticket: u64,
    /// The session's shard here.
    home: ShardId,
}

/// The node part of a sid: a cluster node's name.
fn node_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Where `sid` says its session lives, asked of node `me` (empty: a standalone server) with
/// `n_shards` shards.
fn target(sid: &str, me: &str, n_shards: usize) -> LpTarget {
    let (h, node) = match sid.split_at_checked(22) {
        Some((h, "")) => (h, None),
        Some((h, rest)) => match rest.strip_prefix('.') {
            Some(n) if node_name_ok(n) => (h, Some(n)),
            _ => return LpTarget::Invalid,
        },
        None => return LpTarget::Invalid,
    };
    let Some(handle) = SessionHandle::decode(h) else {
        return LpTarget::Invalid;
    };
    match node {
        // A node's sid at a standalone server: not one of its sessions.
        Some(_) if me.is_empty() => LpTarget::Invalid,
        Some(n) if n != me => LpTarget::Node(n.to_owned(), handle),
        _ if handle.sid.shard().idx() < n_shards => LpTarget::Here(handle),
        _ => LpTarget::Invalid,
    }
}

impl ShardCtx {
    /// The `sid` a client gets for the long-poll session of `handle`.
    pub fn lp_sid(&self, handle: SessionHandle) -> String {
        let node = self.cfg.cluster.node.trim();
        if node.is_empty() {
            handle.encode()
        } else {
            format!("{}.{node}", handle.encode())
        }
    }

    /// Where the session of a client's `sid` lives.
    pub fn lp_target(&self, sid: &str) -> LpTarget {
        target(sid, self.cfg.cluster.node.trim(), self.n_shards)
    }

    /// A long-poll request for a session of node `node`: forwarded there, answered
    /// [`LpAnswer::Unreachable`] at once when its link is down.
    pub fn longpoll_remote(
        &mut self,
        node: &str,
        handle: SessionHandle,
        body: LpBody,
    ) -> Rc<LpWait> {
        let ticket = self.ticket();
        let wait = Rc::new(LpWait::new(ticket));
        let (kind, body) = match body {
            LpBody::Poll => (Kind::Poll, String::new()),
            LpBody::Probe => (Kind::Probe, String::new()),
            LpBody::Send(b) => (Kind::Send, STANDARD.encode(b)),
        };
        let fwd = Fwd {
            sid: handle.encode(),
            kind,
            body,
        };
        let msg = NodeMsg::LpRequest {
            shard: handle.sid.shard().0,
            reply: self.id.0,
            ticket,
            req: to_raw(&fwd),
        };
        let sent = match &self.cluster {
            Some(c) => c.links().send(node, msg),
            None => Err(crate::cluster::SendError::Down),
        };
        match sent {
            Ok(()) => {
                self.lp_waits.insert(ticket, wait.clone());
                self.lp_remote.insert(ticket, node.to_owned());
            }
            Err(e) => {
                log::debug!("cluster: cannot forward a long poll to node {node}: {e:?}");
                wait.set(LpAnswer::Unreachable);
            }
        }
        wait
    }

    /// Origin: the client of a forwarded request went away. True when `ticket` was one.
    pub(super) fn lp_remote_gone(&mut self, handle: SessionHandle, ticket: u64) -> bool {
        let Some(peer) = self.lp_remote.remove(&ticket) else {
            return false;
        };
        self.lp_waits.remove(&ticket);
        let msg = NodeMsg::LpCancel {
            shard: handle.sid.shard().0,
            reply: self.id.0,
            ticket,
        };
        if let Some(c) = &self.cluster {
            let _ = c.links().send(&peer, msg);
        }
        true
    }

    /// Origin, every housekeeping tick: forwarded requests whose link went down are answered.
    pub(super) fn lp_remote_expire(&mut self) {
        let Some(c) = self.cluster.clone() else {
            return;
        };
        if self.lp_remote.is_empty() {
            return;
        }
        let lost: Vec<u64> = self
            .lp_remote
            .iter()
            .filter(|(_, peer)| !c.links().connected(peer))
            .map(|(t, _)| *t)
            .collect();
        for ticket in lost {
            self.lp_remote.remove(&ticket);
            log::info!("cluster: a forwarded long poll lost its link");
            if let Some(w) = self.lp_waits.remove(&ticket) {
                w.set(LpAnswer::Unreachable);
            }
        }
    }

    /// Session's node: the answer to a request some peer forwarded (`ticket` is this shard's);
    /// `Err` gives the answer back when the ticket is not one.
    pub(super) fn lp_served_answer(
        &mut self,
        ticket: u64,
        answer: LpAnswer,
    ) -> Result<(), LpAnswer> {
        let Some(s) = self.lp_served.remove(&ticket) else {
            return Err(answer);
        };
        let msg = NodeMsg::LpAnswer {
            reply: s.reply,
            ticket: s.ticket,
            answer: to_raw(&Ans::of(answer)),
        };
        if let Some(c) = &self.cluster {
            if let Err(e) = c.links().send(&s.peer, msg) {
                log::info!(
                    "cluster: the answer to a long poll from node {} is lost: {e:?}",
                    s.peer
                );
            }
        }
        Ok(())
    }

    /// Long-poll traffic from node `peer`.
    pub(super) fn lp_node_msg(&mut self, peer: String, msg: NodeMsg) {
        match msg {
            NodeMsg::LpRequest {
                shard,
                reply,
                ticket,
                req,
            } => self.lp_serve(peer, shard, reply, ticket, &req),
            NodeMsg::LpAnswer { ticket, answer, .. } => {
                if self.lp_remote.remove(&ticket).is_none() {
                    return;
                }
                let answer = from_raw::<Ans>(&answer).map_or_else(
                    || {
                        log::warn!("cluster: an unreadable long-poll answer from {peer}");
                        LpAnswer::Unreachable
                    },
                    Ans::answer,
                );
                self.longpoll_answered(ticket, answer);
            }
            NodeMsg::LpCancel { reply, ticket, .. } => {
                let found = self
                    .lp_served
                    .iter()
                    .find(|(_, s)| s.peer == peer && s.reply == reply && s.ticket == ticket)
                    .map(|(t, s)| (*t, s.home));
                if let Some((local, home)) = found {
                    self.lp_served.remove(&local);
                    let reply = LpReplyTo {
                        shard: self.id,
                        ticket: local,
                    };
                    self.send(home, Envelope::LongPollCancel { reply });
                }
            }
            _ => {}
        }
        self.run_work();
        self.flush();
    }

    /// Session's node: runs a request forwarded by `peer` like one of this shard's own.
    fn lp_serve(&mut self, peer: String, shard: u16, reply: u16, ticket: u64, req: &RawBox) {
        let fwd = from_raw::<Fwd>(req);
        let handle = fwd
            .as_ref()
            .and_then(|f| SessionHandle::decode(&f.sid))
            .filter(|h| h.sid.shard().0 == shard && h.sid.shard().idx() < self.n_shards);
        let body = fwd.and_then(|f| {
            Some(match f.kind {
                Kind::Poll => LpBody::Poll,
                Kind::Probe => LpBody::Probe,
                Kind::Send => LpBody::Send(STANDARD.decode(f.body).ok()?),
            })
        });
        let local = self.ticket();
        let home = handle.map_or(self.id, |h| h.sid.shard());
        self.lp_served.insert(
            local,
            Served {
                peer,
                reply,
                ticket,
                home,
            },
        );
        let (Some(handle), Some(body)) = (handle, body) else {
            let _ = self.lp_served_answer(local, LpAnswer::Invalid);
            return;
        };
        let reply = LpReplyTo {
            shard: self.id,
            ticket: local,
        };
        self.send(
            home,
            Envelope::LongPoll {
                handle,
                req: body.decoded(),
                reply,
            },
        );
    }
}

type RawBox = serde_json::value::RawValue;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_through_their_json() {
        let all = || {
            [
                LpAnswer::Accepted,
                LpAnswer::Empty,
                LpAnswer::Invalid,
                LpAnswer::Unreachable,
                LpAnswer::Frame(bytes::Bytes::from_static(br#"{"ctrl":{"code":200}}"#)),
            ]
        };
        for (a, want) in all().into_iter().zip(all()) {
            let raw = to_raw(&Ans::of(a));
            assert_eq!(from_raw::<Ans>(&raw).unwrap().answer(), want);
        }
    }

    #[test]
    fn a_sid_names_the_node_of_its_session() {
        let h = SessionHandle {
            sid: crate::ids::SessionId::new(ShardId(1), 77),
            secret: 5,
        };
        let bare = h.encode();
        let on = |n: &str| format!("{bare}.{n}");
        assert_eq!(target(&bare, "", 2), LpTarget::Here(h));
        assert_eq!(target(&bare, "", 1), LpTarget::Invalid, "no such shard");
        assert_eq!(
            target(&on("n1"), "", 2),
            LpTarget::Invalid,
            "a node's sid, standalone"
        );
        assert_eq!(target(&on("n1"), "n1", 2), LpTarget::Here(h));
        assert_eq!(target(&bare, "n1", 2), LpTarget::Here(h));
        assert_eq!(target(&on("n2"), "n1", 1), LpTarget::Node("n2".into(), h));
        for bad in [
            &bare[..21],
            &format!("{bare}n2"),
            &on(""),
            &on("a/b"),
            "!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(target(bad, "n1", 2), LpTarget::Invalid, "{bad}");
        }
    }

    #[test]
    fn node_names_in_sids_are_url_safe_names() {
        assert!(node_name_ok("node-1.eu_west"));
        assert!(!node_name_ok(""));
        assert!(!node_name_ok("a&b"));
        assert!(!node_name_ok(&"x".repeat(65)));
    }
}
