//! `{set sub}`: a member's own want (and `me`'s mute), invitations, approvals of join
//! requests, bans, ownership transfer, and the `{pres acs}` each change causes. Part of the
//! `{set}` sequence in `set.rs`, which accumulates the writes and replies.

use crate::access::AccessMode;
use crate::ids::UserId;
use crate::proto::client::SetSub;
use crate::proto::server::{raw, DeltaAcs, Meta, Pres, ServerMsg, SubOut, Ts};
use crate::proto::{Frame, Outcome};
use crate::routing::Requester;
use crate::store::{SubRecord, UserState, WriteOp};
use crate::topic::set::Acc;
use crate::topic::{Member, Topic, TopicCx, TopicKind, TopicOut};

impl Topic {
    /// Returns the new `{want, given, mode}` and, for another user, their id; `None` when
    /// nothing changed.
    #[allow(clippy::type_complexity)]
    pub(crate) fn set_sub(
        &mut self,
        req: &Requester,
        s: SetSub,
        acc: &mut Acc,
        cx: &mut TopicCx<'_>,
    ) -> Result<Option<(crate::proto::server::AccessOut, Option<String>)>, Outcome> {
        let mode = match s.mode.as_deref().map(AccessMode::parse) {
            Some(Err(_)) => return Err(Outcome::Malformed),
            Some(Ok(m)) => m,
            None => None,
        };
        if let TopicKind::Me(uid) = self.kind {
            return self.set_me_want(uid, &s, mode, acc, cx);
        }
        if !self.kind.has_members() || self.kind == TopicKind::Sys {
            return Err(Outcome::OperationNotAllowed);
        }
        let target = match s.user.as_deref().filter(|u| !u.is_empty()) {
            None => req.uid,
            Some(u) => UserId::parse_usr(u).ok_or(Outcome::Malformed)?,
        };
        let now = cx.now;
        let is_p2p = matches!(self.kind, TopicKind::P2p(..));
        let p2p_fix = |m: AccessMode| {
            let m = m.and(AccessMode::P2P.with(AccessMode::DELETE));
            if m.0 == 0 {
                m
            } else {
                m.with(AccessMode::APPROVE)
            }
        };
        if target == req.uid {
            // Own want.
            let Some(m) = self
                .members
                .get(&req.uid)
                .filter(|m| m.is_active())
                .cloned()
            else {
                return Err(Outcome::AttachFirst);
            };
            let Some(mut want) = mode else {
                return Ok(None);
            };
            let mut sub = m.sub.clone();
            if is_p2p {
                want = p2p_fix(want);
            } else if self.owner() == Some(req.uid)
                && !want.has(AccessMode::JOIN | AccessMode::OWNER)
            {
                // The owner cannot give up O or J by itself: ownership is transferred.
                return Err(Outcome::PermissionDenied);
            }
            let admin = sub.given.0 & AccessMode::APPROVE != 0 && !is_p2p;
            if admin {
                // An admin may raise its own given to anything but O and D.
                let extra = want.without(AccessMode::OWNER | AccessMode::DELETE);
                sub.given = sub.given.with(extra.0);
            }
            let mut after_owner = None;
            if want.has(AccessMode::OWNER) && !sub.given.has(AccessMode::OWNER) {
                return Err(Outcome::PermissionDenied);
            }
            if want.has(AccessMode::OWNER) && self.owner() != Some(req.uid) && !is_p2p {
                // Accepting ownership: the old owner loses O.
                after_owner = self.owner();
            }
            if want == sub.want && after_owner.is_none() && sub.given == m.sub.given {
                return Ok(None);
            }
            let old_want = sub.want;
            sub.want = want;
            sub.updated = now;
            acc.batch.push(WriteOp::PutSub(sub.clone()));
            self.members.insert(
                req.uid,
                Member {
                    sub: sub.clone(),
                    online: m.online,
                },
            );
            if let Some(old) = after_owner {
                if let Some(om) = self.members.get_mut(&old) {
                    om.sub.given = om.sub.given.without(AccessMode::OWNER);
                    om.sub.want = om.sub.want.without(AccessMode::OWNER);
                    om.sub.updated = now;
                    acc.batch.push(WriteOp::PutSub(om.sub.clone()));
                }
                if let Some(mut rec) = self.rec.clone() {
                    rec.owner = Some(req.uid);
                    rec.updated = now;
                    acc.batch
                        .push(WriteOp::PutTopic(crate::store::TopicRecord::clone(&rec)));
                    self.rec = Some(rec);
                }
                acc.after.push(self.contact_changed_out(old));
            }
            self.acs_changed_after(req.uid, req, Some(old_want), None, acc);
            if !want.has(AccessMode::JOIN) {
                // Self-ban: leave the topic.
                let as_seen = self.view_of(req.uid);
                self.evict_user(req.uid, &as_seen, false, cx);
            }
            return Ok(Some((Topic::access_out(&sub), None)));
        }
        // Another user's given: invitations, approvals, bans, ownership transfer.
        let my_mode = self.mode_of_user(req.uid);
        let manager = my_mode.0 & (AccessMode::APPROVE | AccessMode::OWNER) != 0;
        if !manager && !my_mode.has(AccessMode::SHARE) {
            return Err(Outcome::PermissionDenied);
        }
        if mode.is_some() && !manager {
            return Err(Outcome::PermissionDenied);
        }
        if let Some(m) = mode {
            if m.has(AccessMode::OWNER) && self.owner() != Some(req.uid) {
                return Err(Outcome::PermissionDenied);
            }
        }
        if is_p2p && !self.members.contains_key(&target) {
            return Err(Outcome::PermissionDenied);
        }
        let existing = self.members.get(&target).cloned();
        // An invitee's user record: the inviter is shown their description (below).
        let mut invitee: Option<crate::store::UserRecord> = None;
        let (mut sub, online, old_given, old_want) = match existing {
            Some(m) if m.is_active() => {
                if self.owner() == Some(target) {
                    return Err(Outcome::PermissionDenied);
                }
                let (g, w) = (m.sub.given, m.sub.want);
                (m.sub, m.online, Some(g), Some(w))
            }
            previous => {
                // An invitation.
                let user = match cx.fetched.user(target) {
                    Ok(Some(u)) if u.state == UserState::Ok => u,
                    Ok(Some(_)) => return Err(Outcome::PermissionDenied),
                    Ok(None) => return Err(Outcome::UserNotFound),
                    Err(_) => return Err(Outcome::InternalError),
                };
                if self.member_count() >= cx.limits.max_subscriber_count {
                    return Err(Outcome::PolicyViolation);
                }
                let default_given = self
                    .rec
                    .as_ref()
                    .map(|r| r.access.auth)
                    .unwrap_or_default()
                    .with(AccessMode::JOIN);
                let given = mode.unwrap_or(default_given);
                let want = match &previous {
                    Some(p) => p.sub.want,
                    None => user.access.auth.and(given).with(AccessMode::JOIN),
                };
                if !want.has(AccessMode::JOIN) {
                    return Err(Outcome::PermissionDenied);
                }
                invitee = Some(user);
                let sub = SubRecord {
                    topic: self.name.clone(),
                    user: target,
                    created: previous.as_ref().map_or(now, |p| p.sub.created),
                    updated: now,
                    deleted: None,
                    want,
                    given: AccessMode::NONE,
                    read: previous.as_ref().map_or(0, |p| p.sub.read),
                    recv: previous.as_ref().map_or(0, |p| p.sub.recv),
                    del_id: previous.as_ref().map_or(0, |p| p.sub.del_id),
                    private: None,
                };
                (sub, 0, None, None)
            }
        };
        let new_given = match mode {
            Some(m) if is_p2p => p2p_fix(m),
            Some(m) => m,
            None if old_given.is_none() => self
                .rec
                .as_ref()
                .map(|r| r.access.auth)
                .unwrap_or_default()
                .with(AccessMode::JOIN),
            // Approval by a sharer: add J to what was given.
            None => sub.given.with(AccessMode::JOIN),
        };
        if old_given == Some(new_given) {
            return Ok(None);
        }
        sub.given = new_given;
        sub.updated = now;
        acc.batch.push(WriteOp::PutSub(sub.clone()));
        self.members.insert(
            target,
            Member {
                sub: sub.clone(),
                online,
            },
        );
        self.acs_changed_after(target, req, old_want, old_given, acc);
        acc.after.push(self.contact_changed_out(target));
        if let Some(user) = invitee {
            // The inviter's session gets no `{pres acs}` (it caused it), and the SDK adds the
            // new member from the `{ctrl}` without a description, so the web app would show
            // it "Unnamed" until a reload: after the `{ctrl}`, a `{meta sub}` (no id, which
            // would settle the request's promise) with the member's `public`.
            let frame = Frame::new(ServerMsg::Meta(Meta {
                id: None,
                topic: self.view_of(req.uid),
                ts: Ts(now),
                sub: Some(vec![SubOut {
                    user: Some(target.usr()),
                    updated: Some(Ts(sub.updated)),
                    acs: Some(Topic::access_out(&sub)),
                    public: user.public.as_deref().map(raw),
                    trusted: user.trusted.as_deref().map(raw),
                    ..SubOut::default()
                }]),
                ..Meta::default()
            }));
            acc.after.push(TopicOut::Deliver {
                frame,
                to: self.recipients([req.sid]),
            });
        }
        if !new_given.has(AccessMode::JOIN) {
            let view = self.view_of(target);
            self.evict_user(target, &view, false, cx);
        }
        Ok(Some((Topic::access_out(&sub), Some(target.usr()))))
    }

    /// `{set me sub:{mode}}`: the user's own want on `me`. Dropping `P` mutes: contacts see the
    /// user go `off` and the user stops receiving their presence; restoring it announces the
    /// user again.
    #[allow(clippy::type_complexity)]
    fn set_me_want(
        &mut self,
        uid: UserId,
        s: &SetSub,
        mode: Option<AccessMode>,
        acc: &mut Acc,
        cx: &mut TopicCx<'_>,
    ) -> Result<Option<(crate::proto::server::AccessOut, Option<String>)>, Outcome> {
        if s.user
            .as_deref()
            .is_some_and(|u| !u.is_empty() && u != uid.usr())
        {
            return Err(Outcome::PermissionDenied);
        }
        let Some(want) = mode else {
            return Ok(None);
        };
        let want = want.and(AccessMode::SELF_ME).with(AccessMode::JOIN);
        if want == self.me_want {
            return Ok(None);
        }
        let was_visible = self.me_want.has(AccessMode::PRES);
        self.me_want = want;
        let sub = SubRecord {
            topic: self.name.clone(),
            user: uid,
            created: cx.now,
            updated: cx.now,
            deleted: None,
            want,
            given: AccessMode::SELF_ME,
            read: 0,
            recv: 0,
            del_id: 0,
            private: None,
        };
        acc.batch.push(WriteOp::PutSub(sub.clone()));
        let visible = want.has(AccessMode::PRES);
        if was_visible != visible {
            let mut later = Vec::new();
            let mut lcx = TopicCx::new(cx.now, cx.limits, &mut later);
            self.me_visibility_changed(visible, &mut lcx);
            acc.after.extend(later);
        }
        Ok(Some((Topic::access_out(&sub), None)))
    }

    /// `{pres acs}` after `target`'s subscription changed: on the topic to admins, and on the
    /// target's `me` (all sessions but the requester's).
    fn acs_changed_after(
        &self,
        target: UserId,
        req: &Requester,
        old_want: Option<AccessMode>,
        old_given: Option<AccessMode>,
        acc: &mut Acc,
    ) {
        let Some(m) = self.members.get(&target) else {
            return;
        };
        let dacs = DeltaAcs {
            want: m.sub.want.delta_from(old_want.unwrap_or_default()),
            given: m.sub.given.delta_from(old_given.unwrap_or_default()),
        };
        let act = (req.uid != target).then(|| req.uid.usr());
        let frame = Frame::new(ServerMsg::Pres(Pres {
            topic: "me".into(),
            src: Some(self.view_of(target)),
            what: "acs",
            act: act.clone(),
            dacs: Some(dacs.clone()),
            ..Pres::default()
        }));
        // The target's sessions attached here see it on the topic instead of on `me`.
        let target_here: Vec<_> = self
            .attached
            .iter()
            .filter(|(_, a)| a.uid == target)
            .map(|(sid, _)| *sid)
            .collect();
        let mut skip = target_here.clone();
        skip.push(req.sid);
        acc.after.push(TopicOut::UserPres {
            frame,
            targets: vec![(target, skip)],
        });
        // Admins attached to the topic (other than the requester) and the target's own
        // attached sessions see it on the topic.
        let admins: Vec<_> = self
            .attached
            .iter()
            .filter(|(sid, a)| {
                **sid != req.sid
                    && (target_here.contains(sid)
                        || (a.uid != target
                            && self.mode_of_user(a.uid).0
                                & (AccessMode::APPROVE | AccessMode::OWNER)
                                != 0))
            })
            .map(|(sid, a)| (*sid, self.view_of(a.uid)))
            .collect();
        for (sid, view) in admins {
            let frame = Frame::new(ServerMsg::Pres(Pres {
                topic: view,
                src: Some(target.usr()),
                what: "acs",
                act: act.clone(),
                dacs: Some(dacs.clone()),
                ..Pres::default()
            }));
            acc.after.push(TopicOut::Deliver {
                frame,
                to: self.recipients([sid]),
            });
        }
    }
}
