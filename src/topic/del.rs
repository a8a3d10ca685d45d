//! `{del}`: messages (soft, for the caller only; hard, for everyone, needing D), the topic
//! itself (owner) or one's own subscription to it, another member's subscription (managers),
//! and credentials on `me`. Every reply waits for its write to be durable.

use crate::access::AccessMode;
use crate::ids::UserId;
use crate::proto::client::{Credential, SeqRange};
use crate::proto::server::{Pres, RangeOut, ServerMsg};
use crate::proto::{Frame, Outcome};
use crate::routing::{DelWhat, Requester, SessionEvent};
use crate::store::{DelRecord, WriteOp};
use crate::topic::{Reply, Topic, TopicCx, TopicKind, TopicOut};

/// Most ids one `{del msg}` may name across several ranges.
const MAX_DEL_IDS: u64 = 1024;

/// Validates and merges `[low, hi)` ranges against the last seq; `None` is a 400.
pub(crate) fn normalize_ranges(ranges: &[SeqRange], last: u64) -> Option<Vec<(u64, u64)>> {
    if ranges.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for r in ranges {
        if r.low < 0 || r.hi < 0 || (r.low == 0 && r.hi == 0) {
            return None;
        }
        let low = r.low as u64;
        if low == 0 || low > last {
            return None;
        }
        let hi = if r.hi == 0 { low + 1 } else { r.hi as u64 };
        if hi < low {
            return None;
        }
        let hi = hi.min(last + 1).max(low + 1);
        out.push((low, hi));
    }
    out.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (lo, hi) in out {
        match merged.last_mut() {
            Some(m) if lo <= m.1 => m.1 = m.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    let total: u64 = merged.iter().map(|(l, h)| h - l).sum();
    if ranges.len() > 1 && total > MAX_DEL_IDS {
        return None;
    }
    Some(merged)
}

/// Ranges as the wire shows them (`hi` omitted for a single id).
pub(crate) fn ranges_out(r: &[(u64, u64)]) -> Vec<RangeOut> {
    r.iter()
        .map(|&(low, hi)| RangeOut {
            low,
            hi: if hi == low + 1 { 0 } else { hi },
        })
        .collect()
}

impl Topic {
    pub(crate) fn on_del(
        &mut self,
        req: Requester,
        id: Option<String>,
        as_seen: String,
        what: DelWhat,
        cx: &mut TopicCx<'_>,
    ) {
        let idr = id.as_deref();
        let result = match what {
            DelWhat::Msg { ranges, hard } => self.del_msg(&req, idr, &as_seen, &ranges, hard, cx),
            DelWhat::Topic { hard } => self.del_topic(&req, idr, &as_seen, hard, cx),
            DelWhat::Sub { user } => self.del_sub(&req, idr, &as_seen, &user, cx),
            DelWhat::Cred(c) => self.del_cred(&req, idr, &as_seen, &c, cx),
        };
        if let Err(o) = result {
            let msg = o.ctrl(idr, Some(&as_seen), cx.now).msg();
            self.reply(req.sid, msg, cx);
        }
    }

    fn del_msg(
        &mut self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        ranges: &[SeqRange],
        hard: bool,
        cx: &mut TopicCx<'_>,
    ) -> Result<(), Outcome> {
        if !self.attached.contains_key(&req.sid) {
            return Err(Outcome::AttachFirst);
        }
        if !self.kind.has_members() {
            return Err(Outcome::OperationNotAllowed);
        }
        if self.is_reader(req.uid) {
            return Err(Outcome::OperationNotAllowed);
        }
        let mode = self.mode_of_user(req.uid);
        let hard = hard && mode.has(AccessMode::DELETE);
        if !hard && !mode.has(AccessMode::READ) {
            return Err(Outcome::PermissionDenied);
        }
        let merged = normalize_ranges(ranges, self.seq).ok_or(Outcome::Malformed)?;
        if hard && cx.limits.msg_delete_age_ms > 0 {
            let oldest_allowed = cx.now.0.saturating_sub(cx.limits.msg_delete_age_ms);
            // The messages of the ranges were read before this step (`Topic::reads_for`).
            let msgs = cx.fetched_history().map_err(|_| Outcome::InternalError)?;
            if msgs.iter().any(|m| m.ts.0 < oldest_allowed) {
                return Err(Outcome::PermissionDenied);
            }
        }
        let Some(mut rec) = self.rec.clone() else {
            return Err(Outcome::InternalError);
        };
        rec.del_id += 1;
        let del_id = rec.del_id;
        let mut batch = vec![WriteOp::PutTopic(crate::store::TopicRecord::clone(&rec))];
        batch.push(WriteOp::DeleteMessages(DelRecord {
            topic: self.name.clone(),
            del_id,
            user: (!hard).then_some(req.uid),
            ts: cx.now,
            ranges: merged.clone(),
        }));
        if !hard {
            if let Some(m) = self.members.get_mut(&req.uid) {
                m.sub.del_id = del_id;
                batch.push(WriteOp::PutSub(m.sub.clone()));
            }
        }
        self.rec = Some(rec);
        let mut reply = Reply {
            sid: Some(req.sid),
            id: id.map(str::to_owned),
            as_seen: as_seen.to_owned(),
            frames: vec![Frame::new(
                Outcome::Ok
                    .ctrl(id, Some(as_seen), cx.now)
                    .param("del", del_id)
                    .msg(),
            )],
            after: Vec::new(),
            on_conflict: None,
        };
        let delseq = ranges_out(&merged);
        if hard {
            // Attached readers other than the requester see it on the topic…
            let act = req.uid.usr();
            let mut sub = Vec::new();
            let mut tmp = TopicCx::new(cx.now, cx.limits, &mut sub);
            self.fan(
                AccessMode::READ,
                Some(req.sid),
                |_| true,
                |view, _| {
                    Some(Frame::new(ServerMsg::Pres(Pres {
                        topic: view.to_owned(),
                        src: Some(view.to_owned()),
                        what: "del",
                        clear: del_id,
                        delseq: Some(delseq.clone()),
                        act: Some(act.clone()),
                        ..Pres::default()
                    })))
                },
                &mut tmp,
            );
            reply.after.extend(sub);
            // …and members' other sessions see it on `me`.
            for (uid, m) in &self.members {
                if !m.is_active() || !m.mode().has(AccessMode::READ) {
                    continue;
                }
                let skip: Vec<_> = self
                    .attached
                    .iter()
                    .filter(|(_, a)| a.uid == *uid)
                    .map(|(s, _)| *s)
                    .collect();
                let frame = Frame::new(ServerMsg::Pres(Pres {
                    topic: "me".into(),
                    src: Some(self.view_of(*uid)),
                    what: "del",
                    clear: del_id,
                    delseq: Some(delseq.clone()),
                    ..Pres::default()
                }));
                reply.after.push(TopicOut::UserPres {
                    frame,
                    targets: vec![(*uid, skip)],
                });
            }
        } else {
            // Soft: only the requester's other sessions.
            let others: Vec<_> = self
                .attached
                .iter()
                .filter(|(s, a)| a.uid == req.uid && **s != req.sid)
                .map(|(s, _)| *s)
                .collect();
            let view = self.view_of(req.uid);
            if !others.is_empty() {
                let frame = Frame::new(ServerMsg::Pres(Pres {
                    topic: view.clone(),
                    src: Some(view.clone()),
                    what: "del",
                    clear: del_id,
                    delseq: Some(delseq.clone()),
                    ..Pres::default()
                }));
                reply.after.push(TopicOut::Deliver {
                    frame,
                    to: self.recipients(others.iter().copied()),
                });
            }
            let mut skip = others;
            skip.push(req.sid);
            let frame = Frame::new(ServerMsg::Pres(Pres {
                topic: "me".into(),
                src: Some(view),
                what: "del",
                clear: del_id,
                delseq: Some(delseq),
                ..Pres::default()
            }));
            reply.after.push(TopicOut::UserPres {
                frame,
                targets: vec![(req.uid, skip)],
            });
        }
        self.persist_reply(batch, reply, cx);
        Ok(())
    }

    fn del_topic(
        &mut self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        _hard: bool,
        cx: &mut TopicCx<'_>,
    ) -> Result<(), Outcome> {
        let is_member = self.members.get(&req.uid).is_some_and(|m| m.is_active());
        match self.kind {
            TopicKind::Me(_) | TopicKind::Fnd(_) | TopicKind::Sys => {
                return Err(Outcome::PermissionDenied)
            }
            _ if !is_member => return Err(Outcome::NoAction),
            _ => {}
        }
        let others_active = self
            .members
            .iter()
            .filter(|(u, m)| **u != req.uid && m.is_active())
            .count();
        let deletes_topic = match self.kind {
            TopicKind::Group => self.owner() == Some(req.uid),
            TopicKind::P2p(..) => others_active == 0,
            _ => false,
        };
        let ok = Frame::new(Outcome::Ok.ctrl(id, Some(as_seen), cx.now).msg());
        if !deletes_topic {
            // Not the owner: the same as `{leave unsub:true}`.
            if self.attached.contains_key(&req.sid) {
                self.remove_session(req.sid, cx);
                cx.out.push(TopicOut::ToSession {
                    sid: req.sid,
                    ev: SessionEvent::Detached {
                        topic: self.name.clone(),
                    },
                });
            }
            let reply = Reply {
                sid: Some(req.sid),
                id: id.map(str::to_owned),
                as_seen: as_seen.to_owned(),
                frames: vec![ok],
                after: Vec::new(),
                on_conflict: None,
            };
            self.unsubscribe(req.uid, Some(reply), as_seen, cx);
            return Ok(());
        }
        // Everyone learns the topic is gone; attached sessions are detached silently.
        let mut after = Vec::new();
        for (uid, m) in &self.members {
            if !m.is_active() {
                continue;
            }
            let frame = Frame::new(ServerMsg::Pres(Pres {
                topic: "me".into(),
                src: Some(self.view_of(*uid)),
                what: "gone",
                ..Pres::default()
            }));
            let skip = if *uid == req.uid {
                vec![req.sid]
            } else {
                Vec::new()
            };
            after.push(TopicOut::UserPres {
                frame,
                targets: vec![(*uid, skip)],
            });
            after.push(TopicOut::ToTopic {
                topic: crate::routing::me_topic(*uid),
                req: crate::routing::TopicRequest::Contact {
                    topic: self.name.clone(),
                    ev: crate::routing::ContactEvent::SubGone,
                },
            });
        }
        let sids: Vec<_> = self.attached.keys().copied().collect();
        for sid in sids {
            self.attached.remove(&sid);
            cx.out.push(TopicOut::ToSession {
                sid,
                ev: SessionEvent::Detached {
                    topic: self.name.clone(),
                },
            });
        }
        self.members.clear();
        self.announced = false;
        self.unloaded = true;
        // A new `{sub}` finds the group gone (404); a P2P conversation starts afresh.
        self.rec = None;
        self.seq = 0;
        let reply = Reply {
            sid: Some(req.sid),
            id: id.map(str::to_owned),
            as_seen: as_seen.to_owned(),
            frames: vec![ok],
            after,
            on_conflict: None,
        };
        let batch = vec![WriteOp::DeleteTopic {
            name: self.name.clone(),
        }];
        self.persist_reply(batch, reply, cx);
        Ok(())
    }

    fn del_sub(
        &mut self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        user: &str,
        cx: &mut TopicCx<'_>,
    ) -> Result<(), Outcome> {
        if !self.attached.contains_key(&req.sid) {
            return Err(Outcome::AttachFirst);
        }
        let target = UserId::parse_usr(user).ok_or(Outcome::Malformed)?;
        if self.mode_of_user(req.uid).0 & (AccessMode::APPROVE | AccessMode::OWNER) == 0 {
            return Err(Outcome::PermissionDenied);
        }
        if target == req.uid
            || matches!(self.kind, TopicKind::P2p(..))
            || self.owner() == Some(target)
        {
            return Err(Outcome::PermissionDenied);
        }
        let Some(m) = self.members.get(&target).filter(|m| m.is_active()) else {
            return Err(Outcome::NoAction);
        };
        if !m.sub.want.has(AccessMode::JOIN) {
            return Err(Outcome::PermissionDenied);
        }
        let reply = Reply {
            sid: Some(req.sid),
            id: id.map(str::to_owned),
            as_seen: as_seen.to_owned(),
            frames: vec![Frame::new(
                Outcome::Ok.ctrl(id, Some(as_seen), cx.now).msg(),
            )],
            after: Vec::new(),
            on_conflict: None,
        };
        let view = self.view_of(target);
        self.unsubscribe(target, Some(reply), &view, cx);
        Ok(())
    }

    fn del_cred(
        &mut self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        c: &Credential,
        cx: &mut TopicCx<'_>,
    ) -> Result<(), Outcome> {
        if !matches!(self.kind, TopicKind::Me(_)) {
            return Err(Outcome::PermissionDenied);
        }
        let val = super::set::cred_value(c).ok_or(Outcome::Malformed)?;
        let method = c.meth.trim().to_lowercase();
        let Some(mut user) = self.user.clone() else {
            return Err(Outcome::InternalError);
        };
        let before = user.creds.len();
        user.creds
            .retain(|x| !(x.method == method && x.value == val));
        if user.creds.len() == before {
            return Err(Outcome::NoAction);
        }
        let tag = format!("{method}:{val}");
        user.tags.retain(|t| *t != tag);
        user.updated = cx.now;
        self.user = Some(user.clone());
        let frame = Frame::new(ServerMsg::Pres(Pres {
            topic: "me".into(),
            what: "tags",
            ..Pres::default()
        }));
        let reply = Reply {
            sid: Some(req.sid),
            id: id.map(str::to_owned),
            as_seen: as_seen.to_owned(),
            frames: vec![Frame::new(
                Outcome::Ok.ctrl(id, Some(as_seen), cx.now).msg(),
            )],
            after: vec![TopicOut::UserPres {
                frame,
                targets: vec![(req.uid, vec![req.sid])],
            }],
            on_conflict: None,
        };
        let batch = vec![
            WriteOp::PatchUser(crate::store::UserPatch::profile(&user)),
            // The value is free for other accounts again.
            WriteOp::ReleaseCred {
                unique: tag,
                user: user.id,
            },
        ];
        self.persist_reply(batch, reply, cx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(low: i64, hi: i64) -> SeqRange {
        SeqRange { low, hi }
    }

    #[test]
    fn ranges_are_validated_clamped_and_merged() {
        assert_eq!(normalize_ranges(&[r(3, 0)], 10), Some(vec![(3, 4)]));
        assert_eq!(normalize_ranges(&[r(2, 50)], 10), Some(vec![(2, 11)]));
        assert_eq!(
            normalize_ranges(&[r(5, 8), r(1, 3), r(7, 9)], 10),
            Some(vec![(1, 3), (5, 9)])
        );
        assert_eq!(normalize_ranges(&[], 10), None);
        assert_eq!(normalize_ranges(&[r(0, 0)], 10), None);
        assert_eq!(normalize_ranges(&[r(-1, 3)], 10), None);
        assert_eq!(normalize_ranges(&[r(11, 0)], 10), None);
        assert_eq!(normalize_ranges(&[r(5, 3)], 10), None);
        // More than 1024 ids across several ranges is refused; one big range is fine.
        assert_eq!(normalize_ranges(&[r(1, 2000)], 5000), Some(vec![(1, 2000)]));
        assert_eq!(normalize_ranges(&[r(1, 1000), r(2000, 2100)], 5000), None);
    }
}
