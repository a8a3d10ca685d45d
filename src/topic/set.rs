//! `{set}`: descriptions (public, private, trusted, default access, the `fnd` query),
//! subscriptions (own want, invitations, approvals, bans, ownership transfer), tags,
//! credentials and aux data — processed in the reference order desc → sub → tags → cred →
//! aux, one `{ctrl}` each, released together once the write batch is durable (a confirmed
//! credential is claimed by a write of its own, answered on its own).

use serde_json::Value;

use crate::access::{AccessMode, AuthLevel};
use crate::ids::UserId;
use crate::proto::client::{Credential, SetDesc, SetQuery, SetSub};
use crate::proto::server::{DeltaAcs, Pres, ServerMsg};
use crate::proto::{Frame, Outcome};
use crate::routing::Requester;
use crate::store::{CredRecord, SubRecord, UserPatch, UserRecord, UserState, WriteOp};
use crate::topic::json::{merge_json, DEL_CHAR};
use crate::topic::tags::{merge_user_tags, normalize, TagError};
use crate::topic::{Member, Reply, Topic, TopicCx, TopicKind, TopicOut};

/// What one `{set}` step accumulates.
#[derive(Default)]
struct Acc {
    frames: Vec<Frame>,
    batch: Vec<WriteOp>,
    after: Vec<TopicOut>,
    /// A confirmed credential: its own write (the claim may conflict without failing the
    /// other parts), what it releases, and the user record to restore on a conflict.
    cred: Option<(Vec<WriteOp>, Vec<TopicOut>, UserRecord)>,
}

impl Topic {
    pub(crate) fn on_set(
        &mut self,
        req: Requester,
        id: Option<String>,
        as_seen: String,
        q: SetQuery,
        cx: &mut TopicCx<'_>,
    ) {
        let idr = id.as_deref();
        let attached = self.attached.contains_key(&req.sid);
        if !attached {
            // Not attached: only the own `desc.private` and own `sub.mode` may change.
            let desc_ok = q
                .desc
                .as_ref()
                .is_none_or(|d| d.public.is_none() && d.trusted.is_none() && d.defacs.is_none());
            let sub_ok = q.sub.as_ref().is_none_or(|s| {
                s.user
                    .as_deref()
                    .is_none_or(|u| u.is_empty() || u == req.uid.usr())
            });
            let known = self.kind.has_members() && self.members.contains_key(&req.uid);
            if !known
                || !desc_ok
                || !sub_ok
                || q.tags.is_some()
                || q.cred.is_some()
                || q.aux.is_some()
            {
                let outcome = if known {
                    Outcome::PermissionDenied
                } else {
                    Outcome::AttachFirst
                };
                let msg = outcome.ctrl(idr, Some(&as_seen), cx.now).msg();
                self.reply(req.sid, msg, cx);
                return;
            }
        }
        let mut acc = Acc::default();
        let ctrl =
            |o: Outcome, cx: &TopicCx<'_>| Frame::new(o.ctrl(idr, Some(&as_seen), cx.now).msg());
        if let Some(desc) = q.desc {
            let o = self.set_desc(&req, desc, &mut acc, cx);
            acc.frames.push(ctrl(o, cx));
        }
        if let Some(sub) = q.sub {
            match self.set_sub(&req, sub, &mut acc, cx) {
                Ok(Some((acs, user))) => {
                    let mut c = Outcome::Ok
                        .ctrl(idr, Some(&as_seen), cx.now)
                        .param("acs", serde_json::to_value(acs).unwrap_or_default());
                    if let Some(u) = user {
                        c = c.param("user", u);
                    }
                    acc.frames.push(Frame::new(c.msg()));
                }
                Ok(None) => acc.frames.push(ctrl(Outcome::NotModified, cx)),
                Err(o) => acc.frames.push(ctrl(o, cx)),
            }
        }
        if let Some(tags) = q.tags {
            match self.set_tags(&req, tags, &mut acc, cx) {
                Ok(Some((added, removed))) => {
                    let mut c = Outcome::Ok.ctrl(idr, Some(&as_seen), cx.now);
                    if added > 0 {
                        c = c.param("added", added);
                    }
                    if removed > 0 {
                        c = c.param("removed", removed);
                    }
                    acc.frames.push(Frame::new(c.msg()));
                }
                Ok(None) => acc.frames.push(ctrl(Outcome::NotModified, cx)),
                Err(o) => acc.frames.push(ctrl(o, cx)),
            }
        }
        let mut cred_reply = None;
        if let Some(cred) = q.cred {
            let o = self.set_cred(&req, &cred, &mut acc, cx);
            match acc.cred.take() {
                // Answered once the claim is durable, or with 409 if another account holds it.
                Some((batch, after, before)) => cred_reply = Some((batch, after, before, o)),
                None => acc.frames.push(ctrl(o, cx)),
            }
        }
        if let Some(aux) = q.aux {
            let o = self.set_aux(&req, aux.get(), &mut acc, cx);
            acc.frames.push(ctrl(o, cx));
        }
        let reply = Reply {
            sid: Some(req.sid),
            id: id.clone(),
            as_seen: as_seen.clone(),
            frames: acc.frames,
            after: acc.after,
            on_conflict: None,
        };
        if acc.batch.is_empty() {
            self.send(req.sid, reply.frames, cx);
            cx.out.extend(reply.after);
        } else {
            self.persist_reply(acc.batch, reply, cx);
        }
        if let Some((batch, after, before, o)) = cred_reply {
            let frame = Frame::new(o.ctrl(id.as_deref(), Some(&as_seen), cx.now).msg());
            let reply = Reply {
                sid: Some(req.sid),
                id,
                as_seen,
                frames: vec![frame],
                after,
                on_conflict: Some(Box::new((Outcome::DuplicateCredential, Some(before)))),
            };
            self.persist_reply(batch, reply, cx);
        }
    }

    fn set_desc(
        &mut self,
        req: &Requester,
        d: SetDesc,
        acc: &mut Acc,
        cx: &mut TopicCx<'_>,
    ) -> Outcome {
        if d.trusted.is_some() && req.level != AuthLevel::Root {
            return Outcome::PermissionDenied;
        }
        let now = cx.now;
        match self.kind {
            TopicKind::Fnd(_) => {
                let Some(public) = d.public else {
                    return if d.private.is_some() {
                        Outcome::Ok
                    } else {
                        Outcome::NotModified
                    };
                };
                let query = serde_json::from_str::<String>(public.get()).unwrap_or_default();
                if query == DEL_CHAR || query.is_empty() {
                    self.queries.remove(&req.sid);
                } else {
                    self.queries.insert(req.sid, query);
                }
                Outcome::Ok
            }
            TopicKind::Me(_) => {
                let Some(mut user) = self.user.clone() else {
                    return Outcome::InternalError;
                };
                let mut changed = false;
                let mut public_changed = false;
                if let Some(defacs) = d.defacs {
                    let (auth, anon) = (defacs.auth.as_deref(), defacs.anon.as_deref());
                    // Parsed over "nothing given" to see what the client named.
                    let Some(given) =
                        crate::access::DefaultAccess::default().parse_over(auth, anon)
                    else {
                        return Outcome::Malformed;
                    };
                    if given.auth.has(AccessMode::OWNER) || given.anon.has(AccessMode::OWNER) {
                        return Outcome::Malformed;
                    }
                    // A user's defaults are masked (to the P2P maximum for authenticated
                    // users); A is forced unless the mode is N.
                    let fix = |m: AccessMode, mask: AccessMode| {
                        let m = m.and(mask);
                        if m.0 == 0 {
                            m
                        } else {
                            m.with(AccessMode::APPROVE)
                        }
                    };
                    if auth.is_some_and(|s| !s.trim().is_empty()) {
                        let m = fix(given.auth, AccessMode::USER_AUTH_DEFAULT);
                        changed |= m != user.access.auth;
                        user.access.auth = m;
                    }
                    if anon.is_some_and(|s| !s.trim().is_empty()) {
                        let m = fix(given.anon, AccessMode::P2P);
                        changed |= m != user.access.anon;
                        user.access.anon = m;
                    }
                }
                if let Some(p) = d.public {
                    if let Some(v) = merge_json(user.public.as_ref(), p.get()) {
                        user.public = v;
                        changed = true;
                        public_changed = true;
                    }
                }
                if let Some(t) = d.trusted {
                    if let Some(v) = merge_json(user.trusted.as_ref(), t.get()) {
                        user.trusted = v;
                        changed = true;
                    }
                }
                if !changed {
                    return Outcome::NotModified;
                }
                user.updated = now;
                acc.batch
                    .push(WriteOp::PatchUser(UserPatch::profile(&user)));
                self.user = Some(user);
                if public_changed {
                    // Peers re-read the description on `upd`: only once it is durable.
                    let mut later = Vec::new();
                    let mut lcx = TopicCx::new(cx.now, cx.limits, &mut later);
                    self.me_public_changed(&mut lcx);
                    acc.after.extend(later);
                }
                self.pres_to_own_sessions(req, "upd", acc);
                Outcome::Ok
            }
            _ => {
                let mode = self.mode_of_user(req.uid);
                let is_owner = self.owner() == Some(req.uid) || mode.has(AccessMode::OWNER);
                let wants_topic_change =
                    d.public.is_some() || d.trusted.is_some() || d.defacs.is_some();
                if wants_topic_change && (!is_owner || matches!(self.kind, TopicKind::P2p(..))) {
                    let root_trusted = req.level == AuthLevel::Root
                        && d.public.is_none()
                        && d.defacs.is_none()
                        && self.kind == TopicKind::Group;
                    if !root_trusted {
                        return Outcome::PermissionDenied;
                    }
                }
                let mut topic_changed = false;
                if let Some(mut rec) = self.rec.clone() {
                    if let Some(defacs) = &d.defacs {
                        match super::topic_defacs(
                            rec.access,
                            defacs.auth.as_deref(),
                            defacs.anon.as_deref(),
                        ) {
                            Some(a) if a != rec.access => {
                                rec.access = a;
                                topic_changed = true;
                            }
                            Some(_) => {}
                            None => return Outcome::Malformed,
                        }
                    }
                    if let Some(p) = &d.public {
                        if let Some(v) = merge_json(rec.public.as_ref(), p.get()) {
                            rec.public = v;
                            topic_changed = true;
                        }
                    }
                    if let Some(t) = &d.trusted {
                        if let Some(v) = merge_json(rec.trusted.as_ref(), t.get()) {
                            rec.trusted = v;
                            topic_changed = true;
                        }
                    }
                    if topic_changed {
                        rec.updated = now;
                        acc.batch.push(WriteOp::PutTopic(rec.clone()));
                        self.rec = Some(rec);
                    }
                }
                let mut sub_changed = false;
                if let Some(p) = d.private {
                    if let Some(m) = self.members.get_mut(&req.uid).filter(|m| m.is_active()) {
                        if let Some(v) = merge_json(m.sub.private.as_ref(), p.get()) {
                            m.sub.private = v;
                            m.sub.updated = now;
                            acc.batch.push(WriteOp::PutSub(m.sub.clone()));
                            sub_changed = true;
                        }
                    } else {
                        return Outcome::PermissionDenied;
                    }
                }
                if topic_changed {
                    for (uid, m) in &self.members {
                        if m.is_active() && *uid != req.uid {
                            acc.after.push(TopicOut::ToTopic {
                                topic: crate::routing::me_topic(*uid),
                                req: crate::routing::TopicRequest::Contact {
                                    topic: self.name.clone(),
                                    ev: crate::routing::ContactEvent::Upd,
                                },
                            });
                        }
                    }
                }
                if topic_changed || sub_changed {
                    self.pres_to_own_sessions(req, "upd", acc);
                    Outcome::Ok
                } else {
                    Outcome::NotModified
                }
            }
        }
    }

    /// `{pres topic:"me" src:<view> what}` to the requester's other sessions.
    fn pres_to_own_sessions(&self, req: &Requester, what: &'static str, acc: &mut Acc) {
        let src = match self.kind {
            TopicKind::Me(_) => None,
            _ => Some(self.view_of(req.uid)),
        };
        let frame = Frame::new(ServerMsg::Pres(Pres {
            topic: "me".into(),
            src,
            what,
            ..Pres::default()
        }));
        acc.after.push(TopicOut::UserPres {
            frame,
            targets: vec![(req.uid, vec![req.sid])],
        });
    }

    /// Returns the new `{want, given, mode}` and, for another user, their id; `None` when
    /// nothing changed.
    #[allow(clippy::type_complexity)]
    fn set_sub(
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
                    acc.batch.push(WriteOp::PutTopic(rec.clone()));
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

    /// Returns (added, removed) counts, `None` when unchanged.
    fn set_tags(
        &mut self,
        req: &Requester,
        tags: Vec<String>,
        acc: &mut Acc,
        cx: &mut TopicCx<'_>,
    ) -> Result<Option<(usize, usize)>, Outcome> {
        let limits = cx.limits;
        let diff = |old: &[String], new: &[String]| {
            let added = new.iter().filter(|t| !old.contains(t)).count();
            let removed = old.iter().filter(|t| !new.contains(t)).count();
            (added, removed)
        };
        match self.kind {
            TopicKind::Me(_) => {
                let Some(mut user) = self.user.clone() else {
                    return Err(Outcome::InternalError);
                };
                let new = merge_user_tags(
                    &user.tags,
                    tags,
                    &limits.restricted_tags,
                    limits.max_tag_count,
                )
                .map_err(|TagError::Restricted| Outcome::PermissionDenied)?;
                if new == user.tags {
                    return Ok(None);
                }
                let d = diff(&user.tags, &new);
                user.tags = new;
                user.updated = cx.now;
                acc.batch
                    .push(WriteOp::PatchUser(UserPatch::profile(&user)));
                self.user = Some(user);
                self.pres_to_own_sessions(req, "tags", acc);
                Ok(Some(d))
            }
            TopicKind::Group => {
                if self.owner() != Some(req.uid) {
                    return Err(Outcome::PermissionDenied);
                }
                let Some(mut rec) = self.rec.clone() else {
                    return Err(Outcome::InternalError);
                };
                let new = normalize(tags, limits.max_tag_count);
                if new
                    .iter()
                    .any(|t| super::tags::is_restricted(t, &limits.restricted_tags))
                {
                    return Err(Outcome::PermissionDenied);
                }
                if new == rec.tags {
                    return Ok(None);
                }
                let d = diff(&rec.tags, &new);
                rec.tags = new;
                rec.updated = cx.now;
                acc.batch.push(WriteOp::PutTopic(rec.clone()));
                self.rec = Some(rec);
                self.pres_to_own_sessions(req, "tags", acc);
                Ok(Some(d))
            }
            _ => Err(Outcome::OperationNotAllowed),
        }
    }

    /// Adds (or confirms) a credential. No validator is configured, so a credential is
    /// confirmed at once and becomes the restricted tag `method:value`.
    fn set_cred(
        &mut self,
        req: &Requester,
        c: &Credential,
        acc: &mut Acc,
        cx: &mut TopicCx<'_>,
    ) -> Outcome {
        if !matches!(self.kind, TopicKind::Me(_)) {
            return Outcome::OperationNotAllowed;
        }
        let Some(val) = cred_value(c) else {
            return Outcome::Malformed;
        };
        let method = c.meth.trim().to_lowercase();
        if !matches!(method.as_str(), "email" | "tel") {
            return Outcome::Malformed;
        }
        let Some(mut user) = self.user.clone() else {
            return Outcome::InternalError;
        };
        if user
            .creds
            .iter()
            .any(|x| x.method == method && x.value == val && x.done)
        {
            return Outcome::NotModified;
        }
        // A confirmed credential belongs to one account: the write claims it, and fails if
        // another account holds it (decided by the store, so two shards cannot both accept).
        let before = user.clone();
        let tag = format!("{method}:{val}");
        user.creds
            .retain(|x| !(x.method == method && x.value == val));
        user.creds.push(CredRecord {
            method: method.clone(),
            value: val.clone(),
            done: true,
        });
        if !user.tags.contains(&tag) && user.tags.len() < cx.limits.max_tag_count {
            user.tags.push(tag.clone());
            user.tags.sort();
        }
        user.updated = cx.now;
        let batch = vec![
            WriteOp::ClaimCred {
                unique: tag,
                user: user.id,
            },
            WriteOp::PatchUser(UserPatch::profile(&user)),
        ];
        self.user = Some(user);
        let mut own = Acc::default();
        self.pres_to_own_sessions(req, "tags", &mut own);
        acc.cred = Some((batch, own.after, before));
        Outcome::Ok
    }

    fn set_aux(
        &mut self,
        req: &Requester,
        aux: &str,
        acc: &mut Acc,
        cx: &mut TopicCx<'_>,
    ) -> Outcome {
        if !matches!(self.kind, TopicKind::Group | TopicKind::P2p(..)) {
            return Outcome::OperationNotAllowed;
        }
        if self.mode_of_user(req.uid).0 & (AccessMode::APPROVE | AccessMode::OWNER) == 0 {
            return Outcome::PermissionDenied;
        }
        if !serde_json::from_str::<Value>(aux).is_ok_and(|v| v.is_object()) {
            return Outcome::Malformed;
        }
        let Some(mut rec) = self.rec.clone() else {
            return Outcome::InternalError;
        };
        let Some(v) = merge_json(rec.aux.as_ref(), aux) else {
            return Outcome::NotModified;
        };
        rec.aux = v;
        rec.updated = cx.now;
        acc.batch.push(WriteOp::PutTopic(rec.clone()));
        self.rec = Some(rec);
        // Other attached sessions learn that aux changed.
        let sids: Vec<_> = self
            .attached
            .iter()
            .filter(|(sid, _)| **sid != req.sid)
            .map(|(sid, a)| (*sid, self.view_of(a.uid)))
            .collect();
        for (sid, view) in sids {
            let frame = Frame::new(ServerMsg::Pres(Pres {
                topic: view,
                src: Some(req.uid.usr()),
                what: "aux",
                ..Pres::default()
            }));
            acc.after.push(TopicOut::Deliver {
                frame,
                to: self.recipients([sid]),
            });
        }
        Outcome::Ok
    }
}

/// The credential value as a string (`val` may be a JSON string or another scalar).
pub(crate) fn cred_value(c: &Credential) -> Option<String> {
    let v = match c.val.as_ref()? {
        Value::String(s) => s.trim().to_lowercase(),
        Value::Null => return None,
        other => other.to_string(),
    };
    (!v.is_empty()).then_some(v)
}
