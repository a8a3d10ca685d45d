//! `{set}`: descriptions (public, private, trusted, default access, the `fnd` query),
//! subscriptions (`set_sub.rs`: own want, invitations, approvals, bans, ownership transfer), tags,
//! credentials and aux data — processed in the reference order desc → sub → tags → cred →
//! aux, one `{ctrl}` each, released together once the write batch is durable (a confirmed
//! credential is claimed by a write of its own, answered on its own).

use serde_json::Value;

use crate::access::{AccessMode, AuthLevel};
use crate::proto::client::{Credential, SetDesc, SetQuery};
use crate::proto::server::{Pres, ServerMsg};
use crate::proto::{Frame, Outcome};
use crate::routing::Requester;
use crate::store::{CredRecord, SubRecord, UserPatch, UserRecord, WriteOp};
use crate::topic::json::{merge_json, DEL_CHAR};
use crate::topic::tags::{merge_user_tags, normalize, TagError};
use crate::topic::{Reply, Topic, TopicCx, TopicKind, TopicOut};

/// What one `{set}` step accumulates.
#[derive(Default)]
pub(crate) struct Acc {
    pub(crate) frames: Vec<Frame>,
    pub(crate) batch: Vec<WriteOp>,
    pub(crate) after: Vec<TopicOut>,
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
                // `private` is the user's stored query, kept in the `fnd` subscription row as
                // the reference keeps it (durable before the reply); sessions without a query
                // of their own search with it.
                let fnd = self.fnd.get_or_insert_with(Box::default);
                let mut changed = false;
                if let Some(p) = d.private {
                    if let Some(v) = merge_json(fnd.private.as_ref(), p.get()) {
                        acc.batch.push(WriteOp::PutSub(SubRecord {
                            topic: self.name.clone(),
                            user: req.uid,
                            created: now,
                            updated: now,
                            deleted: None,
                            want: AccessMode::SELF_ME,
                            given: AccessMode::SELF_ME,
                            read: 0,
                            recv: 0,
                            del_id: 0,
                            private: v.clone(),
                        }));
                        fnd.private = v;
                        changed = true;
                    }
                }
                let Some(public) = d.public else {
                    return if changed {
                        Outcome::Ok
                    } else {
                        Outcome::NotModified
                    };
                };
                let query = serde_json::from_str::<String>(public.get()).unwrap_or_default();
                if query == DEL_CHAR || query.is_empty() {
                    fnd.queries.remove(&req.sid);
                } else {
                    fnd.queries.insert(req.sid, query);
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
                        acc.batch
                            .push(WriteOp::PutTopic(crate::store::TopicRecord::clone(&rec)));
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
    pub(crate) fn pres_to_own_sessions(&self, req: &Requester, what: &'static str, acc: &mut Acc) {
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
        // No valid tag at all (`tags:[]` included) changes nothing: 304, the tags stay
        // (tinode-protocol.md §3.6; the reference's `replySetTags`). Checked after the
        // category and owner checks, as there.
        let nothing = |tags: &[String]| normalize(tags.to_vec(), limits.max_tag_count).is_empty();
        match self.kind {
            TopicKind::Me(_) => {
                let Some(mut user) = self.user.clone() else {
                    return Err(Outcome::InternalError);
                };
                if nothing(&tags) {
                    return Ok(None);
                }
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
                if new.is_empty() {
                    return Ok(None);
                }
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
                acc.batch
                    .push(WriteOp::PutTopic(crate::store::TopicRecord::clone(&rec)));
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
        acc.batch
            .push(WriteOp::PutTopic(crate::store::TopicRecord::clone(&rec)));
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
