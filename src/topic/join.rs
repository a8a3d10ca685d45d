//! Attaching sessions: `{sub}` (including group creation, `sys` and channel readers), and the
//! reply sequence once the subscription is durable. Detaching is in `leave.rs`.
//!
//! Reply order follows the reference: `{ctrl 200}` first, then the `{meta}`/`{data}` parts the
//! `get` asked for. A join that creates a record replies only after the record is durable.

use crate::access::{AccessMode, AuthLevel, DefaultAccess};
use crate::ids::{SessionId, UserId};
use crate::proto::client::{GetQuery, SetQuery};
use crate::proto::{Frame, Outcome};
use crate::routing::{CreateSpec, Requester, SessionEvent};
use crate::store::{StoreError, SubRecord, TopicRecord, WriteOp};
use crate::topic::{Attachment, Member, Pending, Topic, TopicCx, TopicKind, TopicOut};

/// The parts of a `{sub}` request.
pub(crate) struct JoinArgs {
    pub(crate) req: Requester,
    pub(crate) id: Option<String>,
    pub(crate) as_seen: String,
    pub(crate) create: Option<CreateSpec>,
    pub(crate) set: Option<SetQuery>,
    pub(crate) get: Option<GetQuery>,
    pub(crate) ua: String,
    /// A background session: attach without counting it online or announcing it.
    pub(crate) bkg: bool,
}

/// A join waiting for its subscription (and maybe topic) to be durable.
#[derive(Debug)]
pub(crate) struct PendingJoin {
    pub(crate) req: Requester,
    pub(crate) id: Option<String>,
    /// Name in replies: the new `grp…` name for creations, else what the client sent.
    pub(crate) as_seen: String,
    pub(crate) get: Option<GetQuery>,
    pub(crate) tmpname: Option<String>,
    /// The subscription is new or its mode changed: report `params.acs`.
    pub(crate) acs_changed: bool,
    /// The user agent of the joining session (`me`).
    pub(crate) ua: String,
    /// A background session (may turn foreground while the join waits for its write).
    pub(crate) bkg: bool,
    /// Notifications to release once the join is durable (the P2P peer's `pres acs`).
    pub(crate) after: Vec<TopicOut>,
}

impl JoinArgs {
    /// The join of these arguments, waiting (or not) for a write.
    pub(crate) fn pending(self, acs_changed: bool, after: Vec<TopicOut>) -> PendingJoin {
        PendingJoin {
            req: self.req,
            id: self.id,
            as_seen: self.as_seen,
            get: self.get,
            tmpname: None,
            acs_changed,
            ua: self.ua,
            bkg: self.bkg,
            after,
        }
    }
}

impl Topic {
    /// Attaches now when nothing was written, else once `batch` is durable.
    pub(crate) fn join_after(&mut self, batch: Vec<WriteOp>, p: PendingJoin, cx: &mut TopicCx<'_>) {
        if batch.is_empty() {
            self.complete_join(p, cx);
        } else {
            self.persist(batch, Pending::Join(p), cx);
        }
    }

    pub(crate) fn on_join(&mut self, a: JoinArgs, cx: &mut TopicCx<'_>) {
        if self.attached.contains_key(&a.req.sid) {
            let msg = Outcome::AlreadySubscribed
                .ctrl(a.id.as_deref(), Some(&a.as_seen), cx.now)
                .msg();
            self.reply(a.req.sid, msg, cx);
            // The session may have lost track of it (a cluster origin whose answer to the
            // first join was lost with its link): confirm the attachment.
            cx.out.push(TopicOut::ToSession {
                sid: a.req.sid,
                ev: SessionEvent::Attached {
                    topic: self.name.clone(),
                },
            });
            return;
        }
        match self.kind {
            TopicKind::Me(uid) | TopicKind::Fnd(uid) => {
                if uid != a.req.uid {
                    let id = a.id.as_deref();
                    self.reply_err(&a.req, Outcome::PermissionDenied, id, &a.as_seen, cx);
                    return;
                }
                let p = a.pending(false, Vec::new());
                self.complete_join(p, cx);
            }
            TopicKind::Sys => self.join_sys(a, cx),
            TopicKind::P2p(..) => self.join_p2p(a, cx),
            TopicKind::Group => {
                if let Some(spec) = a.create {
                    self.create_group(a.req, a.id, spec, a.set, a.get, a.bkg, cx);
                } else if a.as_seen.starts_with("chn") {
                    self.join_channel(a, cx);
                } else {
                    self.join_group(a.req, a.id, a.as_seen, a.set, a.get, a.bkg, cx);
                }
            }
        }
    }

    /// `{sub sys}`: root only, with the fixed root access.
    fn join_sys(&mut self, a: JoinArgs, cx: &mut TopicCx<'_>) {
        if a.req.level != AuthLevel::Root {
            let id = a.id.as_deref();
            self.reply_err(&a.req, Outcome::PermissionDenied, id, &a.as_seen, cx);
            return;
        }
        let existing = self.members.get(&a.req.uid).filter(|m| m.is_active());
        let changed = existing.is_none();
        let sub = match existing {
            Some(m) => m.sub.clone(),
            None => SubRecord {
                topic: self.name.clone(),
                user: a.req.uid,
                created: cx.now,
                updated: cx.now,
                deleted: None,
                want: AccessMode::SYS_ROOT,
                given: AccessMode::SYS_ROOT,
                read: 0,
                recv: 0,
                del_id: 0,
                private: None,
            },
        };
        self.members.insert(
            a.req.uid,
            Member {
                sub: sub.clone(),
                online: 0,
            },
        );
        let batch = if changed {
            vec![WriteOp::PutSub(sub)]
        } else {
            Vec::new()
        };
        self.join_after(batch, a.pending(changed, Vec::new()), cx);
    }

    /// `{sub chn…}`: a channel reader, with the fixed reader access and no member limit.
    fn join_channel(&mut self, a: JoinArgs, cx: &mut TopicCx<'_>) {
        let id = a.id.as_deref();
        let Some(rec) = &self.rec else {
            self.reply_err(&a.req, Outcome::TopicNotFound, id, &a.as_seen, cx);
            return;
        };
        if !rec.is_chan {
            self.reply_err(&a.req, Outcome::NotFound, id, &a.as_seen, cx);
            return;
        }
        let existing = self.members.get(&a.req.uid).cloned();
        if let Some(m) = existing.as_ref().filter(|m| m.is_active()) {
            if m.sub.given != AccessMode::CHAN_READER {
                // Members use the group's own name.
                let msg = Outcome::UseOther
                    .ctrl(id, Some(&a.as_seen), cx.now)
                    .param("topic", self.name.as_str())
                    .msg();
                self.reply(a.req.sid, msg, cx);
                cx.out.push(TopicOut::ToSession {
                    sid: a.req.sid,
                    ev: SessionEvent::Detached {
                        topic: self.name.clone(),
                    },
                });
                return;
            }
        }
        let requested = a
            .set
            .as_ref()
            .and_then(|s| s.sub.as_ref())
            .and_then(|s| s.mode.as_deref())
            .map(AccessMode::parse);
        let want = match requested {
            Some(Err(_)) => {
                self.reply_err(&a.req, Outcome::Malformed, id, &a.as_seen, cx);
                return;
            }
            Some(Ok(Some(m))) => m
                .and(AccessMode::CHAN_READER)
                .with(AccessMode::JOIN | AccessMode::READ),
            _ => AccessMode::CHAN_READER,
        };
        let (sub, changed) = match existing.filter(|m| m.is_active()) {
            Some(m) if m.sub.want == want => (m.sub, false),
            Some(m) => {
                let mut sub = m.sub;
                sub.want = want;
                sub.updated = cx.now;
                (sub, true)
            }
            None => (
                SubRecord {
                    topic: self.name.clone(),
                    user: a.req.uid,
                    created: cx.now,
                    updated: cx.now,
                    deleted: None,
                    want,
                    given: AccessMode::CHAN_READER,
                    read: 0,
                    recv: 0,
                    del_id: 0,
                    private: None,
                },
                true,
            ),
        };
        let online = self.members.get(&a.req.uid).map(|m| m.online).unwrap_or(0);
        self.members.insert(
            a.req.uid,
            Member {
                sub: sub.clone(),
                online,
            },
        );
        let batch = if changed {
            vec![WriteOp::PutSub(sub)]
        } else {
            Vec::new()
        };
        self.join_after(batch, a.pending(changed, Vec::new()), cx);
    }

    #[allow(clippy::too_many_arguments)]
    fn create_group(
        &mut self,
        req: Requester,
        id: Option<String>,
        spec: CreateSpec,
        set: Option<SetQuery>,
        get: Option<GetQuery>,
        bkg: bool,
        cx: &mut TopicCx<'_>,
    ) {
        let now = cx.now;
        let (mut access, mut public, mut private, mut want) = (
            DefaultAccess {
                auth: if spec.is_chan {
                    AccessMode(
                        AccessMode::READ | AccessMode::WRITE | AccessMode::PRES | AccessMode::SHARE,
                    )
                } else {
                    AccessMode::PUBLIC
                },
                anon: AccessMode::NONE,
            },
            None,
            None,
            AccessMode::OWNER_FULL,
        );
        let mut tags = Vec::new();
        if let Some(set) = set {
            if let Some(desc) = set.desc {
                if desc.trusted.is_some() && req.level != AuthLevel::Root {
                    self.broken = true;
                    self.reply_err(
                        &req,
                        Outcome::PermissionDenied,
                        id.as_deref(),
                        &spec.tmpname,
                        cx,
                    );
                    return;
                }
                if let Some(d) = desc.defacs {
                    match super::topic_defacs(access, d.auth.as_deref(), d.anon.as_deref()) {
                        Some(acc) => access = acc,
                        None => {
                            self.broken = true;
                            self.reply_err(
                                &req,
                                Outcome::Malformed,
                                id.as_deref(),
                                &spec.tmpname,
                                cx,
                            );
                            return;
                        }
                    }
                }
                // `␡` values mean "no such key" on creation too.
                public = desc
                    .public
                    .and_then(|r| super::json::merge_json(None, r.get()).flatten());
                private = desc
                    .private
                    .and_then(|r| super::json::merge_json(None, r.get()).flatten());
            }
            if let Some(mode) = set.sub.and_then(|s| s.mode) {
                match AccessMode::parse(&mode) {
                    Ok(Some(m)) => want = m.with(AccessMode::JOIN | AccessMode::OWNER),
                    Ok(None) => {}
                    Err(_) => {
                        self.broken = true;
                        self.reply_err(&req, Outcome::Malformed, id.as_deref(), &spec.tmpname, cx);
                        return;
                    }
                }
            }
            if let Some(t) = set.tags {
                tags = super::tags::normalize(t, cx.limits.max_tag_count);
                if tags
                    .iter()
                    .any(|t| super::tags::is_restricted(t, &cx.limits.restricted_tags))
                {
                    self.broken = true;
                    self.reply_err(
                        &req,
                        Outcome::PermissionDenied,
                        id.as_deref(),
                        &spec.tmpname,
                        cx,
                    );
                    return;
                }
            }
        }
        let rec = TopicRecord {
            name: self.name.clone(),
            created: now,
            updated: now,
            owner: Some(req.uid),
            access,
            public,
            trusted: None,
            tags,
            is_chan: spec.is_chan,
            del_id: 0,
            aux: None,
        };
        let sub = SubRecord {
            topic: self.name.clone(),
            user: req.uid,
            created: now,
            updated: now,
            deleted: None,
            want,
            given: AccessMode::OWNER_FULL,
            read: 0,
            recv: 0,
            del_id: 0,
            private,
        };
        self.rec = Some(Box::new(rec.clone()));
        self.members.insert(
            req.uid,
            Member {
                sub: sub.clone(),
                online: 0,
            },
        );
        let pending = PendingJoin {
            req,
            id,
            as_seen: self.name.clone(),
            get,
            tmpname: Some(spec.tmpname),
            acs_changed: true,
            ua: String::new(),
            bkg,
            after: Vec::new(),
        };
        self.persist(
            vec![WriteOp::CreateTopic(rec), WriteOp::PutSub(sub)],
            Pending::Join(pending),
            cx,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn join_group(
        &mut self,
        req: Requester,
        id: Option<String>,
        as_seen: String,
        set: Option<SetQuery>,
        get: Option<GetQuery>,
        bkg: bool,
        cx: &mut TopicCx<'_>,
    ) {
        let Some(rec) = &self.rec else {
            self.reply_err(&req, Outcome::TopicNotFound, id.as_deref(), &as_seen, cx);
            return;
        };
        let is_chan_name = as_seen.starts_with("chn");
        if is_chan_name && !rec.is_chan {
            self.reply_err(&req, Outcome::NotFound, id.as_deref(), &as_seen, cx);
            return;
        }
        let requested_want = match set
            .as_ref()
            .and_then(|s| s.sub.as_ref())
            .and_then(|s| s.mode.as_deref())
        {
            Some(m) => match AccessMode::parse(m) {
                Ok(w) => w,
                Err(_) => {
                    self.reply_err(&req, Outcome::Malformed, id.as_deref(), &as_seen, cx);
                    return;
                }
            },
            None => None,
        };
        let private = set
            .and_then(|s| s.desc)
            .and_then(|d| d.private)
            .map(|r| r.get().to_owned());
        let default_given = self.default_given(req.level);
        let now = cx.now;
        let existing = self.members.get(&req.uid).cloned();
        let (sub, changed) = match existing {
            Some(m) if m.is_active() => {
                let mut sub = m.sub.clone();
                let mut changed = false;
                if let Some(w) = requested_want {
                    let w = if sub.given.has(AccessMode::OWNER) {
                        w.with(AccessMode::JOIN | AccessMode::OWNER)
                    } else {
                        w.without(AccessMode::OWNER)
                    };
                    if w != sub.want {
                        sub.want = w;
                        changed = true;
                    }
                }
                if private.is_some() && private != sub.private {
                    sub.private = private;
                    changed = true;
                }
                if changed {
                    sub.updated = now;
                }
                (sub, changed)
            }
            previous => {
                let active = self.member_count();
                if active >= cx.limits.max_subscriber_count {
                    self.reply_err(&req, Outcome::PolicyViolation, id.as_deref(), &as_seen, cx);
                    return;
                }
                // A deleted subscription keeps its `given`, so a ban survives re-subscribing.
                let given = previous
                    .as_ref()
                    .map(|m| m.sub.given)
                    .unwrap_or(default_given);
                let want = requested_want.unwrap_or(given).without(AccessMode::OWNER);
                let sub = SubRecord {
                    topic: self.name.clone(),
                    user: req.uid,
                    created: previous.as_ref().map(|m| m.sub.created).unwrap_or(now),
                    updated: now,
                    deleted: None,
                    want,
                    given,
                    read: previous.as_ref().map(|m| m.sub.read).unwrap_or(0),
                    recv: previous.as_ref().map(|m| m.sub.recv).unwrap_or(0),
                    del_id: previous.as_ref().map(|m| m.sub.del_id).unwrap_or(0),
                    private,
                };
                (sub, true)
            }
        };
        if !sub.given.has(AccessMode::JOIN) {
            self.reply_err(&req, Outcome::PermissionDenied, id.as_deref(), &as_seen, cx);
            return;
        }
        let self_banned = !sub.want.has(AccessMode::JOIN);
        let online = self.members.get(&req.uid).map(|m| m.online).unwrap_or(0);
        self.members.insert(
            req.uid,
            Member {
                sub: sub.clone(),
                online,
            },
        );
        let pending = PendingJoin {
            req,
            id,
            as_seen,
            get,
            tmpname: None,
            acs_changed: changed,
            ua: String::new(),
            bkg,
            after: Vec::new(),
        };
        if changed {
            self.persist(vec![WriteOp::PutSub(sub)], Pending::Join(pending), cx);
        } else if self_banned {
            let msg = Outcome::Ok
                .ctrl(pending.id.as_deref(), Some(&pending.as_seen), cx.now)
                .msg();
            self.reply(pending.req.sid, msg, cx);
            cx.out.push(TopicOut::ToSession {
                sid: pending.req.sid,
                ev: SessionEvent::Detached {
                    topic: self.name.clone(),
                },
            });
        } else {
            self.complete_join(pending, cx);
        }
    }

    pub(crate) fn join_persisted(
        &mut self,
        p: PendingJoin,
        res: Result<(), StoreError>,
        cx: &mut TopicCx<'_>,
    ) {
        if let Err(e) = res {
            log::error!(
                "topic {}: join of {} not persisted: {e}",
                self.name,
                p.req.uid
            );
            let as_seen = p.tmpname.clone().unwrap_or(p.as_seen.clone());
            if p.tmpname.is_some() {
                self.broken = true;
            }
            self.reply_err(
                &p.req,
                Outcome::InternalError,
                p.id.as_deref(),
                &as_seen,
                cx,
            );
            return;
        }
        let want_join = self
            .members
            .get(&p.req.uid)
            .is_none_or(|m| m.sub.want.has(AccessMode::JOIN));
        if !want_join {
            // Self-ban: the subscription is saved but the session does not attach.
            let mut msg = Outcome::Ok.ctrl(p.id.as_deref(), Some(&p.as_seen), cx.now);
            if let Some(m) = self.members.get(&p.req.uid) {
                msg = msg.param(
                    "acs",
                    serde_json::to_value(Topic::access_out(&m.sub)).unwrap_or_default(),
                );
            }
            self.reply(p.req.sid, msg.msg(), cx);
            cx.out.push(TopicOut::ToSession {
                sid: p.req.sid,
                ev: SessionEvent::Detached {
                    topic: self.name.clone(),
                },
            });
            return;
        }
        self.complete_join(p, cx);
    }

    /// Attaches the session and sends the reply sequence, once the reads it needs (the
    /// read-only check, the `get` part) are fetched.
    pub(crate) fn complete_join(&mut self, p: PendingJoin, cx: &mut TopicCx<'_>) {
        let mut need = Vec::new();
        if matches!(self.kind, TopicKind::Group | TopicKind::P2p(..)) {
            need.extend(self.read_only_reads());
        }
        if let Some(get) = &p.get {
            self.get_reads(&p.req, get, &cx.fetched, cx.limits, &mut need);
        }
        let need = super::reads::missing(need, &cx.fetched);
        if !need.is_empty() {
            let answers = std::mem::take(&mut cx.fetched);
            return self.read(need, Pending::CompleteJoin(p, answers), cx);
        }
        let uid = p.req.uid;
        if matches!(self.kind, TopicKind::Group | TopicKind::P2p(..)) {
            self.check_read_only(cx);
        }
        self.attached.insert(
            p.req.sid,
            Attachment {
                uid,
                enc: p.req.enc,
                background: p.bkg,
            },
        );
        cx.out.push(TopicOut::ToSession {
            sid: p.req.sid,
            ev: SessionEvent::Attached {
                topic: self.name.clone(),
            },
        });
        let mut ctrl = Outcome::Ok.ctrl(p.id.as_deref(), Some(&p.as_seen), cx.now);
        if let Some(tmp) = &p.tmpname {
            if let Some(rec) = &self.rec {
                ctrl = ctrl.ts(rec.created);
            }
            ctrl = ctrl.param("tmpname", tmp.as_str());
        }
        if p.acs_changed {
            if let Some(m) = self.members.get(&uid) {
                ctrl = ctrl.param(
                    "acs",
                    serde_json::to_value(Topic::access_out(&m.sub)).unwrap_or_default(),
                );
            }
        }
        // Counted online before the `get` part is answered: the session is attached, so
        // `desc.online` and its own `sub.online` already include it. A background session is
        // not counted until it turns foreground (`Topic::foreground`).
        let first = match self.members.get_mut(&uid) {
            Some(m) if !p.bkg => {
                m.online += 1;
                m.online == 1
            }
            _ => false,
        };
        let mut frames = vec![Frame::new(ctrl.msg())];
        if let Some(get) = &p.get {
            self.get_frames(&p.req, p.id.as_deref(), &p.as_seen, get, &mut frames, cx);
            if matches!(self.kind, TopicKind::Me(_))
                && crate::proto::client::what::parse(&get.what) & crate::proto::client::what::SUB
                    != 0
            {
                self.contacts_listed();
            }
        }
        if p.acs_changed && p.tmpname.is_none() {
            if let Some(m) = self.members.get(&uid) {
                let (want, given) = (m.sub.want.to_string(), m.sub.given.to_string());
                self.notify_acs(uid, want, given, p.req.sid, cx);
            }
        }
        if p.acs_changed {
            self.subs_changed(&[uid], false, cx);
        }
        self.send(p.req.sid, frames, cx);
        cx.out.extend(p.after);
        if !p.bkg {
            self.came_online(p.req.sid, uid, first, &p.ua, cx);
        }
    }

    /// A foreground session is attached (or an attached one turned foreground): `me` learns
    /// its user agent and announces the user to contacts, a group comes online, and the
    /// user's first session is announced `on` to the other members.
    fn came_online(
        &mut self,
        sid: SessionId,
        uid: UserId,
        first: bool,
        ua: &str,
        cx: &mut TopicCx<'_>,
    ) {
        match self.kind {
            TopicKind::Me(_) => self.me_attached(sid, ua, cx),
            TopicKind::Group => {
                self.group_online(cx);
                if first && !self.is_reader(uid) {
                    self.announce(uid, "on", cx);
                }
            }
            TopicKind::P2p(..) if first => self.announce(uid, "on", cx),
            _ => {}
        }
    }

    /// `TopicRequest::Foreground`: a background session turned foreground. An attached one is
    /// counted online now and its deferred `on` goes out; a join still waiting for its write
    /// completes as foreground. Anything else (the session left meanwhile) is ignored.
    pub(crate) fn foreground(&mut self, sid: SessionId, ua: &str, cx: &mut TopicCx<'_>) {
        for p in self.pending.values_mut() {
            match p {
                Pending::Join(j) if j.req.sid == sid => j.bkg = false,
                Pending::CompleteJoin(j, _) if j.req.sid == sid => j.bkg = false,
                _ => {}
            }
        }
        let Some(a) = self.attached.get_mut(&sid) else {
            return;
        };
        if !a.background {
            return;
        }
        a.background = false;
        let uid = a.uid;
        let first = match self.members.get_mut(&uid) {
            Some(m) => {
                m.online += 1;
                m.online == 1
            }
            None => false,
        };
        self.came_online(sid, uid, first, ua, cx);
    }
}
