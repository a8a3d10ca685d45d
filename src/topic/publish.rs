//! Publishing and notes: `{pub}` (seq assignment, durable append, then ack and fan-out),
//! `{note}` turned into `{info}`, and `{pres msg}` for members not attached to the topic.
//!
//! The `{data}` frame is serialized once and shared by every recipient on every shard.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::access::AccessMode;
use crate::ids::{SessionId, UserId};
use crate::proto::client::RawJson;
use crate::proto::server::{raw, Data, Info, Pres, ServerMsg, Ts};
use crate::proto::{Frame, Outcome};
use crate::routing::Requester;
use crate::store::{MessageRecord, StoreError, WriteOp};
use crate::topic::{Pending, Topic, TopicCx, TopicKind, TopicOut};

/// The parts of a `{pub}`.
pub(crate) struct PublishArgs {
    pub(crate) req: Requester,
    pub(crate) id: Option<String>,
    pub(crate) as_seen: String,
    pub(crate) noecho: bool,
    pub(crate) head: Option<Map<String, Value>>,
    pub(crate) content: RawJson,
}

/// A message waiting to be durable before it is acknowledged and delivered.
#[derive(Debug)]
pub(crate) struct PendingPublish {
    req: Requester,
    id: Option<String>,
    as_seen: String,
    noecho: bool,
    seq: u64,
    record: MessageRecord,
}

impl Topic {
    pub(crate) fn on_publish(&mut self, a: PublishArgs, cx: &mut TopicCx<'_>) {
        let id = a.id.as_deref();
        let is_sys = self.kind == TopicKind::Sys;
        if !is_sys && !self.attached.contains_key(&a.req.sid) {
            self.reply_err(&a.req, Outcome::AttachFirst, id, &a.as_seen, cx);
            return;
        }
        let allowed = match self.kind {
            // Anyone may write to `sys`.
            TopicKind::Sys => true,
            TopicKind::Group | TopicKind::P2p(..) => {
                self.mode_of_user(a.req.uid).has(AccessMode::WRITE) && !self.read_only
            }
            TopicKind::Me(_) | TopicKind::Fnd(_) => false,
        };
        if !allowed {
            let msg = Outcome::PermissionDenied
                .ctrl(id, Some(&a.as_seen), cx.now)
                .msg();
            self.reply(a.req.sid, msg, cx);
            return;
        }
        let mut head = a.head.unwrap_or_default();
        // Only the server sets `sender` (root acting on behalf of another user).
        head.remove("sender");
        let head_text = (!head.is_empty()).then(|| Value::Object(head).to_string());
        let seq = self.seq + 1;
        self.seq = seq;
        self.touch(cx.now);
        let record = MessageRecord {
            topic: self.name.clone(),
            seq,
            ts: cx.now,
            from: a.req.uid,
            head: head_text.clone(),
            content: a.content.get().to_owned(),
            deleted: false,
        };
        if let Some(m) = self.members.get_mut(&a.req.uid) {
            m.sub.read = m.sub.read.max(seq);
            m.sub.recv = m.sub.recv.max(seq);
        }
        let batch = vec![
            WriteOp::AppendMessage(record.clone()),
            WriteOp::Markers {
                topic: self.name.clone(),
                user: a.req.uid,
                read: seq,
                recv: seq,
            },
        ];
        let pending = PendingPublish {
            req: a.req,
            id: a.id,
            as_seen: a.as_seen,
            noecho: a.noecho,
            seq,
            record: record.clone(),
        };
        self.persist(batch, Pending::Publish(pending), cx);
    }

    pub(crate) fn publish_persisted(
        &mut self,
        p: PendingPublish,
        res: Result<(), StoreError>,
        cx: &mut TopicCx<'_>,
    ) {
        if let Err(e) = res {
            log::error!("topic {}: message {} not persisted: {e}", self.name, p.seq);
            let msg = Outcome::InternalError
                .ctrl(p.id.as_deref(), Some(&p.as_seen), cx.now)
                .msg();
            self.reply(p.req.sid, msg, cx);
            return;
        }
        if let Some(id) = p.id.as_deref() {
            let ack = Outcome::Accepted
                .ctrl(Some(id), Some(&p.as_seen), cx.now)
                .param("seq", p.seq)
                .msg();
            self.reply(p.req.sid, ack, cx);
        }
        self.notify_unattached(p.seq, p.req.uid, cx);
        let skip = p.noecho.then_some(p.req.sid);
        // One frame per view: P2P peers name the topic differently, channel readers get no
        // `from`.
        let rec = p.record;
        self.fan(
            AccessMode::READ,
            skip,
            |_| true,
            |view, reader| Some(data_frame(view, &rec, reader)),
            cx,
        );
    }

    /// The seq below which every message is acknowledged and broadcast: a session attached
    /// now has missed nothing after it (the cluster's re-join backfills from it).
    pub(crate) fn settled_seq(&self) -> u64 {
        let inflight = self.pending.values().filter_map(|p| match p {
            Pending::Publish(p) => Some(p.seq),
            _ => None,
        });
        inflight.min().map_or(self.seq, |low| low.saturating_sub(1))
    }

    /// `msgs` less the messages whose writes are still in flight. With the journal a message
    /// may reach the store (applied behind) before its journal round is synced and its
    /// publisher acknowledged; a history read must not show what a crash could still undo,
    /// just as fan-out waits for the acknowledgement.
    pub(crate) fn without_unacknowledged(
        &self,
        mut msgs: Vec<MessageRecord>,
    ) -> Vec<MessageRecord> {
        let inflight: Vec<u64> = self
            .pending
            .values()
            .filter_map(|p| match p {
                Pending::Publish(p) => Some(p.seq),
                _ => None,
            })
            .collect();
        if !inflight.is_empty() {
            msgs.retain(|m| !inflight.contains(&m.seq));
        }
        msgs
    }

    /// A P2P topic with a suspended or deleted participant, or a group whose owner is
    /// suspended, takes no messages. Checked when a session attaches (not per message: store
    /// reads stay off the publish path); a suspension evicts the user's sessions anyway. The
    /// users were fetched for the step (`Topic::read_only_reads`).
    pub(crate) fn check_read_only(&mut self, cx: &mut TopicCx<'_>) {
        self.read_only = self.compute_read_only(cx);
    }

    fn compute_read_only(&self, cx: &mut TopicCx<'_>) -> bool {
        let users: Vec<UserId> = match self.kind {
            TopicKind::P2p(a, b) => vec![a, b],
            TopicKind::Group => self.owner().into_iter().collect(),
            _ => Vec::new(),
        };
        users.into_iter().any(|u| {
            cx.fetched
                .user(u)
                .ok()
                .flatten()
                .is_some_and(|u| u.state != crate::store::UserState::Ok)
        })
    }

    /// `{pres topic:"me" src what:"msg" seq act}` to every member with R and P, for their
    /// sessions that are not attached here.
    fn notify_unattached(&self, seq: u64, actor: UserId, cx: &mut TopicCx<'_>) {
        // One pass over the attached sessions, then one over the members: linear in both
        // (the per-member scan of the sessions was quadratic, 19 % of CPU at 1,000 members).
        let mut here: HashMap<UserId, Vec<SessionId>, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(self.attached.len(), Default::default());
        for (sid, a) in &self.attached {
            here.entry(a.uid).or_default().push(*sid);
        }
        let chan = self.rec.as_ref().is_some_and(|r| r.is_chan);
        let p2p = matches!(self.kind, TopicKind::P2p(..));
        // (the P2P participant the view depends on, is the actor) → targets; one frame each.
        type Targets = Vec<(UserId, Vec<SessionId>)>;
        let mut groups: Vec<((Option<UserId>, bool), Targets)> = Vec::new();
        for (uid, m) in &self.members {
            if !m.is_active()
                || !m.mode().has(AccessMode::READ | AccessMode::PRES)
                || (chan && m.sub.given == AccessMode::CHAN_READER)
            {
                continue;
            }
            let skip = here.remove(uid).unwrap_or_default();
            let key = (p2p.then_some(*uid), *uid == actor);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, t)) => t.push((*uid, skip)),
                None => groups.push((key, vec![(*uid, skip)])),
            }
        }
        for ((peer_view, own), targets) in groups {
            let view = match peer_view {
                Some(uid) => self.view_of(uid),
                None => self.name.clone(),
            };
            // `act` is omitted for the actor's own sessions (it equals the recipient).
            let frame = Frame::new(ServerMsg::Pres(Pres {
                topic: "me".into(),
                src: Some(view),
                what: "msg",
                seq,
                act: (!own).then(|| actor.usr()),
                ..Pres::default()
            }));
            cx.out.push(TopicOut::UserPres { frame, targets });
        }
    }

    /// `{info topic:"me" src from what seq}` to every member with R and P, on their sessions
    /// that are not attached here (tinode-protocol.md §3.8), so contact lists show typing and
    /// receipts. Typing never goes to the sender's own sessions; `sender_sid` never gets it.
    fn info_unattached(
        &self,
        sender: UserId,
        what: &'static str,
        seq: u64,
        (event, payload): (Option<&str>, Option<&str>),
        sender_sid: SessionId,
        cx: &mut TopicCx<'_>,
    ) {
        let typing = what.starts_with("kp");
        let mut here: std::collections::HashMap<UserId, Vec<SessionId>> =
            std::collections::HashMap::new();
        for (sid, a) in &self.attached {
            here.entry(a.uid).or_default().push(*sid);
        }
        let chan = self.rec.as_ref().is_some_and(|r| r.is_chan);
        let p2p = matches!(self.kind, TopicKind::P2p(..));
        // The P2P participant the view depends on → targets; one frame per view.
        type Targets = Vec<(UserId, Vec<SessionId>)>;
        let mut groups: Vec<(Option<UserId>, Targets)> = Vec::new();
        for (uid, m) in &self.members {
            if !m.is_active()
                || !m.mode().has(AccessMode::READ | AccessMode::PRES)
                || (chan && m.sub.given == AccessMode::CHAN_READER)
                || (typing && *uid == sender)
            {
                continue;
            }
            let mut skip = here.remove(uid).unwrap_or_default();
            if *uid == sender && !skip.contains(&sender_sid) {
                skip.push(sender_sid);
            }
            let key = p2p.then_some(*uid);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, t)) => t.push((*uid, skip)),
                None => groups.push((key, vec![(*uid, skip)])),
            }
        }
        for (peer_view, targets) in groups {
            let view = match peer_view {
                Some(uid) => self.view_of(uid),
                None => self.name.clone(),
            };
            let frame = Frame::new(ServerMsg::Info(Info {
                topic: "me".into(),
                src: Some(view),
                from: sender.usr(),
                what: what.to_owned(),
                seq,
                event: event.map(str::to_owned),
                payload: payload.map(raw),
            }));
            cx.out.push(TopicOut::UserPres { frame, targets });
        }
    }

    /// Whether a user-level `{pres}` that skips `skip` would reach no session of this `me`
    /// topic now: every session attached here is in `skip` (attached to the source topic as
    /// well), and no read is under way (a request queued behind one runs later, against the
    /// sessions attached by then).
    pub(crate) fn user_pres_reaches_none(&self, skip: &[SessionId]) -> bool {
        self.reading.is_none() && self.attached.keys().all(|sid| skip.contains(sid))
    }

    /// A `me` topic shows a user-level `{pres}` on its sessions except those in `skip`.
    pub(crate) fn on_user_pres(&self, frame: Frame, skip: Vec<SessionId>, cx: &mut TopicCx<'_>) {
        let sids = self
            .attached
            .keys()
            .copied()
            .filter(|sid| !skip.contains(sid));
        let to = self.recipients(sids);
        self.deliver(frame, to, cx);
    }

    #[allow(clippy::too_many_arguments)] // One argument per field of the note.
    pub(crate) fn on_note(
        &mut self,
        req: Requester,
        as_seen: String,
        what: String,
        seq: u64,
        event: Option<String>,
        payload: Option<RawJson>,
        cx: &mut TopicCx<'_>,
    ) {
        let attached = self.attached.contains_key(&req.sid);
        // A session not attached reaches the topic only with a `recv` (the session gate);
        // anything else comes from a session the topic detached meanwhile.
        if !attached && what != "recv" {
            let msg = Outcome::AttachFirst
                .ctrl(None, Some(&as_seen), cx.now)
                .msg();
            self.reply(req.sid, msg, cx);
            return;
        }
        if !self.kind.has_members() || self.is_reader(req.uid) && what.starts_with("kp") {
            return;
        }
        let reader = self.is_reader(req.uid);
        let view = self.view_of(req.uid);
        // The user's sessions that must not see the receipt on `me`: those attached here
        // (they get the `{info}`) and the sender's.
        let mut own_other: Vec<SessionId> = self
            .attached
            .iter()
            .filter(|(_, a)| a.uid == req.uid)
            .map(|(s, _)| *s)
            .collect();
        if !attached {
            own_other.push(req.sid);
        }
        // A note from a user who is not a member is dropped silently, without a reply.
        let Some(member) = self.members.get_mut(&req.uid).filter(|m| m.is_active()) else {
            return;
        };
        let mode = member.mode();
        let what_static: &'static str = match what.as_str() {
            "kp" | "kpa" | "kpv" => {
                if !mode.has(AccessMode::WRITE) {
                    return;
                }
                match what.as_str() {
                    "kp" => "kp",
                    "kpa" => "kpa",
                    _ => "kpv",
                }
            }
            "read" | "recv" => {
                if !mode.has(AccessMode::READ) || seq == 0 || seq > self.seq {
                    return;
                }
                let sub = &mut member.sub;
                if what == "read" {
                    if seq <= sub.read {
                        return;
                    }
                    sub.read = seq;
                    sub.recv = sub.recv.max(seq);
                } else {
                    if seq <= sub.recv {
                        return;
                    }
                    sub.recv = seq;
                }
                let batch = vec![WriteOp::Markers {
                    topic: self.name.clone(),
                    user: req.uid,
                    read: sub.read,
                    recv: sub.recv,
                }];
                cx.out.push(TopicOut::Write { batch });
                // The user's other sessions not attached here see it on `me`.
                let frame = Frame::new(ServerMsg::Pres(Pres {
                    topic: "me".into(),
                    src: Some(view.clone()),
                    what: if what == "read" { "read" } else { "recv" },
                    seq,
                    ..Pres::default()
                }));
                cx.out.push(TopicOut::UserPres {
                    frame,
                    targets: vec![(req.uid, own_other.clone())],
                });
                if reader {
                    // Channel receipts are stored, never forwarded.
                    return;
                }
                if what == "read" {
                    "read"
                } else {
                    "recv"
                }
            }
            "data" => {
                if !mode.has(AccessMode::WRITE) {
                    return;
                }
                "data"
            }
            _ => return,
        };
        let typing = what_static.starts_with("kp");
        let sender = req.uid;
        let from = sender.usr();
        let (event, payload) = if what_static == "data" {
            (event, payload)
        } else {
            (None, None)
        };
        let payload_text = payload.map(|p| p.get().to_owned());
        // Members with P and R see it on `me` where they are not attached here.
        self.info_unattached(
            sender,
            what_static,
            seq,
            (event.as_deref(), payload_text.as_deref()),
            req.sid,
            cx,
        );
        // Typing indicators never go to the same user's other sessions; receipts do. Channel
        // readers never receive them.
        self.fan(
            AccessMode::READ,
            Some(req.sid),
            |u| !typing || u != sender,
            |view, reader| {
                (!reader).then(|| {
                    Frame::new(ServerMsg::Info(Info {
                        topic: view.to_owned(),
                        src: None,
                        from: from.clone(),
                        what: what_static.to_owned(),
                        seq,
                        event: event.clone(),
                        payload: payload_text.as_deref().map(raw),
                    }))
                })
            },
            cx,
        );
    }
}

/// A `{data}` frame for a stored message, as `as_seen` names the topic (channel readers see
/// no `from`).
pub(crate) fn data_frame(as_seen: &str, rec: &MessageRecord, reader: bool) -> Frame {
    Frame::new(ServerMsg::Data(Data {
        topic: as_seen.to_owned(),
        from: (!reader).then(|| rec.from.usr()),
        ts: Ts(rec.ts),
        seq: rec.seq,
        head: rec.head.as_deref().map(raw),
        content: raw(&rec.content),
    }))
}
