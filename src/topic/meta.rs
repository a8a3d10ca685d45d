//! Queries: `{get}` and the `get` part of `{sub}` — `desc`, `sub`, `tags`, `cred`, `aux`,
//! `data` and `del` — answered from the topic's memory and the reads fetched for the step
//! (named in `reads.rs`), in the
//! reference order, with If-Modified-Since (`ims`) semantics for `desc` and `sub`. A session
//! that is not attached gets the limited answers the reference allows.

use crate::access::AccessMode;
use crate::ids::UnixMillis;
use crate::proto::client::what;
use crate::proto::client::GetQuery;
use crate::proto::server::{
    raw, CredOut, DefAcsOut, DelOut, DescOut, Meta, SeenOut, ServerMsg, SubOut, Ts,
};
use crate::proto::{Frame, Outcome};
use crate::routing::Requester;
use crate::topic::del::ranges_out;
use crate::topic::publish::data_frame;
use crate::topic::{Topic, TopicCx, TopicKind};

impl Topic {
    pub(crate) fn on_get(
        &mut self,
        req: Requester,
        id: Option<String>,
        as_seen: String,
        query: GetQuery,
        cx: &mut TopicCx<'_>,
    ) {
        if !self.attached.contains_key(&req.sid) {
            return self.get_unattached(req, id, as_seen, query, cx);
        }
        let mut frames = Vec::new();
        self.get_frames(&req, id.as_deref(), &as_seen, &query, &mut frames, cx);
        if matches!(self.kind, TopicKind::Me(_)) && what::parse(&query.what) & what::SUB != 0 {
            self.contacts_listed();
        }
        if !frames.is_empty() {
            self.send(req.sid, frames, cx);
        }
    }

    /// Appends the frames answering `query`, in the reference order.
    pub(crate) fn get_frames(
        &self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        query: &GetQuery,
        frames: &mut Vec<Frame>,
        cx: &mut TopicCx<'_>,
    ) {
        let bits = what::parse(&query.what);
        let ims_of = |o: &Option<crate::proto::client::GetOptsDesc>| {
            o.as_ref()
                .and_then(|d| d.ims.as_deref())
                .and_then(crate::proto::time::parse_rfc3339)
        };
        let malformed =
            |cx: &TopicCx<'_>| Frame::new(Outcome::Malformed.ctrl(id, Some(as_seen), cx.now).msg());
        if bits & what::DESC != 0 {
            // `desc` takes `ims` only.
            let bad = query.desc.as_ref().is_some_and(|d| {
                d.user.is_some() || d.limit.is_some() || d.since.is_some() || d.before.is_some()
            });
            if bad {
                frames.push(malformed(cx));
            } else {
                frames.push(self.desc_frame(req, id, as_seen, ims_of(&query.desc), cx));
            }
        }
        if bits & what::SUB != 0
            && query
                .sub
                .as_ref()
                .is_some_and(|s| s.since.is_some() || s.before.is_some())
        {
            frames.push(malformed(cx));
        } else if bits & what::SUB != 0 {
            let opts = query.sub.clone().unwrap_or_default();
            frames.push(self.sub_frame(
                req,
                id,
                as_seen,
                ims_of(&query.sub),
                opts.limit,
                opts.user.as_deref(),
                cx,
            ));
        }
        if bits & what::TAGS != 0 {
            frames.push(self.tags_frame(req, id, as_seen, cx));
        }
        if bits & what::CRED != 0 {
            frames.push(self.cred_frame(id, as_seen, cx));
        }
        if bits & what::AUX != 0 {
            frames.push(self.aux_frame(id, as_seen, cx));
        }
        if bits & what::DATA != 0 {
            self.data_frames(req, id, as_seen, query, frames, cx);
        }
        if bits & what::DEL != 0 {
            frames.push(self.del_frame(req, id, as_seen, query, cx));
        }
    }

    fn mode_of(&self, req: &Requester) -> AccessMode {
        self.mode_of_user(req.uid)
    }

    fn desc_frame(
        &self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        ims: Option<UnixMillis>,
        cx: &mut TopicCx<'_>,
    ) -> Frame {
        let mut desc = DescOut::default();
        let fresh = |updated: UnixMillis| ims.is_none_or(|t| updated.0 > t.0);
        match self.kind {
            TopicKind::Me(_) | TopicKind::Fnd(_) => {
                if let Some(u) = &self.user {
                    if ims.is_none() {
                        desc.created = Some(Ts(u.created));
                    }
                    desc.updated = Some(Ts(u.updated));
                    desc.touched = Some(Ts(u.updated));
                    if matches!(self.kind, TopicKind::Me(_)) {
                        desc.defacs = Some(DefAcsOut {
                            auth: u.access.auth.to_string(),
                            anon: u.access.anon.to_string(),
                        });
                        if fresh(u.updated) {
                            desc.public = u.public.as_deref().map(raw);
                            desc.trusted = u.trusted.as_deref().map(raw);
                        }
                        if req.level == crate::access::AuthLevel::Root {
                            desc.state = Some("ok".into());
                        }
                    }
                }
                if let Some(fnd) = self.fnd.as_deref() {
                    desc.private = fnd.private.as_deref().map(raw);
                }
                let given = AccessMode::SELF_ME;
                let want = if matches!(self.kind, TopicKind::Me(_)) {
                    self.me_want
                } else {
                    given
                };
                desc.acs = Some(crate::proto::server::AccessOut {
                    want: want.to_string(),
                    given: given.to_string(),
                    mode: want.and(given).to_string(),
                });
            }
            TopicKind::Group | TopicKind::P2p(..) | TopicKind::Sys => {
                let mode = self.mode_of(req);
                let peer = match self.kind {
                    TopicKind::P2p(a, b) => {
                        let p = if req.uid == a { b } else { a };
                        cx.fetched.user(p).ok().flatten()
                    }
                    _ => None,
                };
                if self.rec.is_none() {
                    // A P2P conversation not started yet: the peer's public description and
                    // the access a new conversation would give (what the web app shows
                    // before the first message).
                    if let Some(p) = &peer {
                        desc.created = Some(Ts(p.created));
                        desc.updated = Some(Ts(p.updated));
                        desc.public = p.public.as_deref().map(raw);
                        desc.trusted = p.trusted.as_deref().map(raw);
                        let m = match req.level {
                            crate::access::AuthLevel::Anon => p.access.anon,
                            _ => p.access.auth,
                        };
                        desc.acs = Some(crate::proto::server::AccessOut {
                            want: String::new(),
                            given: String::new(),
                            mode: m.to_string(),
                        });
                    }
                }
                if let Some(r) = &self.rec {
                    let updated = peer
                        .as_ref()
                        .map_or(r.updated, |p| p.updated.max(r.updated));
                    if ims.is_none() {
                        desc.created = Some(Ts(r.created));
                    }
                    desc.updated = Some(Ts(updated));
                    let touched = if mode.has(AccessMode::READ) {
                        self.touched().unwrap_or(r.updated)
                    } else {
                        r.updated
                    };
                    desc.touched = Some(Ts(touched));
                    desc.chan = r.is_chan && self.kind == TopicKind::Group;
                    if self.kind == TopicKind::Group
                        && mode.0 & (AccessMode::SHARE | AccessMode::APPROVE | AccessMode::OWNER)
                            != 0
                    {
                        desc.defacs = Some(DefAcsOut {
                            auth: r.access.auth.to_string(),
                            anon: r.access.anon.to_string(),
                        });
                    }
                    if fresh(updated) {
                        match &peer {
                            Some(p) => {
                                desc.public = p.public.as_deref().map(raw);
                                desc.trusted = p.trusted.as_deref().map(raw);
                            }
                            None => {
                                desc.public = r.public.as_deref().map(raw);
                                desc.trusted = r.trusted.as_deref().map(raw);
                            }
                        }
                    }
                    if mode.has(AccessMode::READ) {
                        desc.clear = r.del_id;
                    }
                }
                if let Some(m) = self.members.get(&req.uid).filter(|m| m.is_active()) {
                    desc.acs = Some(Topic::access_out(&m.sub));
                    if fresh(m.sub.updated) {
                        desc.private = m.sub.private.as_deref().map(raw);
                    }
                    if mode.has(AccessMode::READ) {
                        desc.read = m.sub.read;
                        desc.recv = m.sub.recv;
                        desc.clear = desc.clear.max(m.sub.del_id);
                    }
                }
                if mode.has(AccessMode::READ) {
                    desc.seq = self.seq;
                }
                if mode.has(AccessMode::PRES) && !self.is_reader(req.uid) {
                    desc.online = self.members.iter().any(|(u, m)| {
                        m.online > 0 && (*u != req.uid || self.kind == TopicKind::Group)
                    });
                    if let (TopicKind::P2p(..), Some(p)) = (self.kind, &peer) {
                        desc.online = self.members.get(&p.id).is_some_and(|m| m.online > 0);
                        if let Some((when, ua)) = &p.last_seen {
                            desc.seen = Some(SeenOut {
                                when: Ts(*when),
                                ua: (!ua.is_empty()).then(|| ua.clone()),
                            });
                        }
                    }
                }
                if self.kind == TopicKind::Group {
                    desc.subcnt = self.member_count() as u64;
                }
            }
        }
        Frame::new(ServerMsg::Meta(Meta {
            id: id.map(str::to_owned),
            topic: as_seen.to_owned(),
            ts: Ts(cx.now),
            desc: Some(desc),
            ..Meta::default()
        }))
    }

    #[allow(clippy::too_many_arguments)] // One argument per `{get sub}` option.
    fn sub_frame(
        &self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        ims: Option<UnixMillis>,
        limit: Option<i64>,
        user: Option<&str>,
        cx: &mut TopicCx<'_>,
    ) -> Frame {
        let mut subs = match self.kind {
            TopicKind::Me(uid) => self.me_subs(uid, ims, cx),
            TopicKind::Fnd(_) => self.fnd_results(req, cx),
            TopicKind::Group | TopicKind::P2p(..) => {
                let mut subs = self.group_subs(req, ims, cx);
                if let Some(u) = user.filter(|u| !u.is_empty()) {
                    subs.retain(|s| s.user.as_deref() == Some(u));
                }
                subs
            }
            TopicKind::Sys => Vec::new(),
        };
        let max = cx.limits.max_results;
        let limit = match limit {
            Some(l) if l > 0 => (l as usize).min(max),
            _ => max,
        };
        subs.truncate(limit);
        if subs.is_empty() {
            return Frame::new(
                Outcome::NoContent
                    .ctrl(id, Some(as_seen), cx.now)
                    .param("what", "sub")
                    .msg(),
            );
        }
        Frame::new(ServerMsg::Meta(Meta {
            id: id.map(str::to_owned),
            topic: as_seen.to_owned(),
            ts: Ts(cx.now),
            sub: Some(subs),
            ..Meta::default()
        }))
    }

    /// Members of a group (or the two users of a P2P topic) as `{meta sub}` items. Channel
    /// readers see only themselves; readers are never listed to others.
    fn group_subs(
        &self,
        req: &Requester,
        ims: Option<UnixMillis>,
        cx: &mut TopicCx<'_>,
    ) -> Vec<SubOut> {
        let req_mode = self.mode_of(req);
        let is_admin = req_mode.0 & (AccessMode::APPROVE | AccessMode::OWNER) != 0;
        let reader = self.is_reader(req.uid);
        let mut members: Vec<_> = self
            .members
            .values()
            .filter(|m| m.is_active() || ims.is_some_and(|t| m.sub.updated.0 > t.0))
            .filter(|m| ims.is_none_or(|t| m.sub.updated.0 > t.0))
            .filter(|m| {
                if reader {
                    m.sub.user == req.uid
                } else {
                    !self.is_reader(m.sub.user) || m.sub.user == req.uid
                }
            })
            .collect();
        members.sort_by_key(|m| m.sub.created);
        members
            .into_iter()
            .map(|m| {
                let user = cx.fetched.user(m.sub.user).ok().flatten();
                let own = m.sub.user == req.uid;
                if m.sub.deleted.is_some() {
                    return SubOut {
                        user: Some(m.sub.user.usr()),
                        updated: Some(Ts(m.sub.updated)),
                        deleted: m.sub.deleted.map(Ts),
                        ..SubOut::default()
                    };
                }
                let mode = m.mode();
                let readable = mode.has(AccessMode::READ);
                SubOut {
                    user: Some(m.sub.user.usr()),
                    updated: Some(Ts(m.sub.updated)),
                    online: m.online > 0 && req_mode.has(AccessMode::PRES),
                    acs: (own || is_admin || req_mode.has(AccessMode::SHARE))
                        .then(|| Topic::access_out(&m.sub)),
                    read: if readable { m.sub.read } else { 0 },
                    recv: if readable { m.sub.recv } else { 0 },
                    public: user.as_ref().and_then(|u| u.public.as_deref()).map(raw),
                    trusted: user.as_ref().and_then(|u| u.trusted.as_deref()).map(raw),
                    private: if own {
                        m.sub.private.as_deref().map(raw)
                    } else {
                        None
                    },
                    ..SubOut::default()
                }
            })
            .collect()
    }

    /// The user's subscriptions (contact list) as `{meta sub}` items on `me`: groups by name,
    /// P2P conversations by the peer's id, channels (as a reader) by their `chn…` name.
    fn me_subs(
        &self,
        uid: crate::ids::UserId,
        ims: Option<UnixMillis>,
        cx: &mut TopicCx<'_>,
    ) -> Vec<SubOut> {
        let rows = match cx.fetched_contacts(uid) {
            Ok(s) => s,
            Err(e) => {
                log::error!("me {uid}: cannot list subscriptions: {e}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for row in rows {
            let (sub, rec, last) = (row.sub, row.topic, row.last);
            let kind = TopicKind::of(&sub.topic);
            let peer = match kind {
                Some(TopicKind::P2p(a, b)) => Some(if a == uid { b } else { a }),
                Some(TopicKind::Group) => None,
                _ => continue,
            };
            let peer_user = peer.and_then(|p| cx.fetched.user(p).ok().flatten());
            if peer.is_some() && peer_user.is_none() {
                continue;
            }
            let public_updated = peer_user.as_ref().map_or(rec.updated, |u| u.updated);
            let updated = sub.updated.max(public_updated);
            let contact = self.contacts.get(&sub.topic);
            let online = contact.is_some_and(|c| c.online);
            if let Some(t) = ims {
                if updated.0 <= t.0 && !online {
                    continue;
                }
            }
            let view = match (peer, contact) {
                (Some(p), _) => p.usr(),
                (None, Some(c)) => c.view.clone(),
                (None, None) => sub.topic.clone(),
            };
            if let Some(deleted) = sub.deleted {
                if ims.is_some_and(|t| deleted.0 > t.0) {
                    out.push(SubOut {
                        topic: Some(view),
                        updated: Some(Ts(sub.updated)),
                        deleted: Some(Ts(deleted)),
                        ..SubOut::default()
                    });
                }
                continue;
            }
            let mode = sub.want.and(sub.given);
            let readable = mode.has(AccessMode::READ);
            let subcnt = if peer.is_none() { row.members } else { 0 };
            let fresh = ims.is_none_or(|t| public_updated.0 > t.0);
            let (public, trusted) = match &peer_user {
                Some(u) => (u.public.as_deref(), u.trusted.as_deref()),
                None => (rec.public.as_deref(), rec.trusted.as_deref()),
            };
            let seen = match (&peer_user, online) {
                (Some(u), false) => u.last_seen.as_ref().map(|(when, ua)| SeenOut {
                    when: Ts(*when),
                    ua: (!ua.is_empty()).then(|| ua.clone()),
                }),
                _ => None,
            };
            out.push(SubOut {
                topic: Some(view),
                updated: Some(Ts(updated)),
                touched: last.map(|l| Ts(l.ts)).or(Some(Ts(rec.updated))),
                online: online && mode.has(AccessMode::PRES),
                acs: Some(Topic::access_out(&sub)),
                read: if readable { sub.read } else { 0 },
                recv: if readable { sub.recv } else { 0 },
                seq: if readable {
                    last.map(|l| l.seq).unwrap_or(0)
                } else {
                    0
                },
                clear: if readable {
                    rec.del_id.max(sub.del_id)
                } else {
                    0
                },
                public: if fresh { public.map(raw) } else { None },
                trusted: if fresh { trusted.map(raw) } else { None },
                private: sub.private.as_deref().map(raw),
                seen,
                subcnt: subcnt as u64,
                ..SubOut::default()
            });
        }
        out
    }

    fn data_frames(
        &self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        query: &GetQuery,
        frames: &mut Vec<Frame>,
        cx: &mut TopicCx<'_>,
    ) {
        if !self.mode_of(req).has(AccessMode::READ) || !self.kind.has_members() {
            frames.push(Frame::new(
                Outcome::PermissionDenied
                    .ctrl(id, Some(as_seen), cx.now)
                    .msg(),
            ));
            return;
        }
        let opts = query.data.clone().unwrap_or_default();
        if opts.ims.is_some() || opts.user.is_some() || opts.topic.is_some() {
            frames.push(Frame::new(
                Outcome::Malformed.ctrl(id, Some(as_seen), cx.now).msg(),
            ));
            return;
        }
        // The page was read before this step (`Topic::get_reads`), the caller's soft
        // deletions excluded.
        let msgs = match cx.fetched_history() {
            Ok(m) => self.without_unacknowledged(m),
            Err(e) => {
                log::error!("topic {}: history read failed: {e}", self.name);
                frames.push(Frame::new(
                    Outcome::InternalError.ctrl(id, Some(as_seen), cx.now).msg(),
                ));
                return;
            }
        };
        if msgs.is_empty() {
            frames.push(Frame::new(
                Outcome::NoContent
                    .ctrl(id, Some(as_seen), cx.now)
                    .param("what", "data")
                    .msg(),
            ));
            return;
        }
        let count = msgs.len();
        let reader = self.is_reader(req.uid);
        frames.extend(msgs.iter().map(|m| data_frame(as_seen, m, reader)));
        let done = Outcome::Delivered
            .ctrl(id, Some(as_seen), cx.now)
            .param("what", "data")
            .param("count", count);
        frames.push(Frame::new(done.msg()));
    }
}

impl Topic {
    fn tags_frame(
        &self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        cx: &mut TopicCx<'_>,
    ) -> Frame {
        let tags = match self.kind {
            TopicKind::Me(_) => self
                .user
                .as_ref()
                .map(|u| u.tags.clone())
                .unwrap_or_default(),
            TopicKind::Group => {
                if self.owner() != Some(req.uid) {
                    return Frame::new(
                        Outcome::PermissionDenied
                            .ctrl(id, Some(as_seen), cx.now)
                            .msg(),
                    );
                }
                self.rec
                    .as_ref()
                    .map(|r| r.tags.clone())
                    .unwrap_or_default()
            }
            TopicKind::Fnd(_) => Vec::new(),
            _ => {
                return Frame::new(
                    Outcome::OperationNotAllowed
                        .ctrl(id, Some(as_seen), cx.now)
                        .msg(),
                )
            }
        };
        if tags.is_empty() {
            return no_content(id, as_seen, "tags", cx);
        }
        Frame::new(ServerMsg::Meta(Meta {
            id: id.map(str::to_owned),
            topic: as_seen.to_owned(),
            ts: Ts(cx.now),
            tags: Some(tags),
            ..Meta::default()
        }))
    }

    fn cred_frame(&self, id: Option<&str>, as_seen: &str, cx: &mut TopicCx<'_>) -> Frame {
        if !matches!(self.kind, TopicKind::Me(_)) {
            return Frame::new(
                Outcome::OperationNotAllowed
                    .ctrl(id, Some(as_seen), cx.now)
                    .msg(),
            );
        }
        let creds: Vec<CredOut> = self
            .user
            .as_ref()
            .map(|u| {
                u.creds
                    .iter()
                    .map(|c| CredOut {
                        meth: c.method.clone(),
                        val: c.value.clone(),
                        done: c.done,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if creds.is_empty() {
            return no_content(id, as_seen, "creds", cx);
        }
        Frame::new(ServerMsg::Meta(Meta {
            id: id.map(str::to_owned),
            topic: as_seen.to_owned(),
            ts: Ts(cx.now),
            cred: Some(creds),
            ..Meta::default()
        }))
    }

    fn aux_frame(&self, id: Option<&str>, as_seen: &str, cx: &mut TopicCx<'_>) -> Frame {
        if !matches!(self.kind, TopicKind::Group | TopicKind::P2p(..)) {
            return Frame::new(
                Outcome::OperationNotAllowed
                    .ctrl(id, Some(as_seen), cx.now)
                    .msg(),
            );
        }
        match self.rec.as_ref().and_then(|r| r.aux.as_deref()) {
            Some(aux) if aux != "{}" => Frame::new(ServerMsg::Meta(Meta {
                id: id.map(str::to_owned),
                topic: as_seen.to_owned(),
                ts: Ts(cx.now),
                aux: Some(raw(aux)),
                ..Meta::default()
            })),
            _ => no_content(id, as_seen, "aux", cx),
        }
    }

    /// `{meta del}`: the delete transactions visible to the caller (hard ones and its own
    /// soft ones) within `since..before`, or 204.
    fn del_frame(
        &self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        query: &GetQuery,
        cx: &mut TopicCx<'_>,
    ) -> Frame {
        let opts = query.del.clone().unwrap_or_default();
        if opts.ims.is_some() || opts.user.is_some() || opts.topic.is_some() {
            return Frame::new(Outcome::Malformed.ctrl(id, Some(as_seen), cx.now).msg());
        }
        if !self.kind.has_members() || !self.mode_of(req).has(AccessMode::READ) {
            return no_content(id, as_seen, "del", cx);
        }
        let limit = match opts.limit {
            Some(l) if l > 0 => (l as usize).min(cx.limits.max_results),
            _ => cx.limits.max_results,
        };
        // `since..before` bound the read named in `Topic::get_reads`.
        let log = match cx.fetched_del_log() {
            Ok(l) => l,
            Err(e) => {
                log::error!("topic {}: delete log read failed: {e}", self.name);
                return Frame::new(Outcome::InternalError.ctrl(id, Some(as_seen), cx.now).msg());
            }
        };
        let mine: Vec<_> = log
            .into_iter()
            .filter(|d| d.user.is_none() || d.user == Some(req.uid))
            .take(limit)
            .collect();
        let Some(clear) = mine.iter().map(|d| d.del_id).max() else {
            return no_content(id, as_seen, "del", cx);
        };
        let mut ranges: Vec<(u64, u64)> = mine.into_iter().flat_map(|d| d.ranges).collect();
        ranges.sort();
        Frame::new(ServerMsg::Meta(Meta {
            id: id.map(str::to_owned),
            topic: as_seen.to_owned(),
            ts: Ts(cx.now),
            del: Some(DelOut {
                clear,
                delseq: ranges_out(&ranges),
            }),
            ..Meta::default()
        }))
    }

    /// `{get}` from a session that is not attached: `desc` alone gets a limited description;
    /// any other query with `desc` or `sub` gets the caller's own subscription; the rest 403.
    fn get_unattached(
        &mut self,
        req: Requester,
        id: Option<String>,
        as_seen: String,
        query: GetQuery,
        cx: &mut TopicCx<'_>,
    ) {
        let idr = id.as_deref();
        let bits = what::parse(&query.what);
        let frame = if matches!(self.kind, TopicKind::Me(_) | TopicKind::Fnd(_)) {
            Frame::new(Outcome::AttachFirst.ctrl(idr, Some(&as_seen), cx.now).msg())
        } else if bits == what::DESC {
            self.desc_frame(&req, idr, &as_seen, None, cx)
        } else if bits & (what::DESC | what::SUB) != 0 {
            if let Some(u) = query.sub.as_ref().and_then(|s| s.user.as_deref()) {
                if !u.is_empty() && u != req.uid.usr() {
                    let msg = Outcome::PermissionDenied
                        .ctrl(idr, Some(&as_seen), cx.now)
                        .msg();
                    return self.reply(req.sid, msg, cx);
                }
            }
            match self.members.get(&req.uid).filter(|m| m.is_active()) {
                Some(m) => Frame::new(ServerMsg::Meta(Meta {
                    id: id.clone(),
                    topic: as_seen.clone(),
                    ts: Ts(cx.now),
                    sub: Some(vec![SubOut {
                        user: Some(req.uid.usr()),
                        updated: Some(Ts(m.sub.updated)),
                        acs: Some(Topic::access_out(&m.sub)),
                        read: m.sub.read,
                        recv: m.sub.recv,
                        private: m.sub.private.as_deref().map(raw),
                        ..SubOut::default()
                    }]),
                    ..Meta::default()
                })),
                None => Frame::new(Outcome::NotFound.ctrl(idr, Some(&as_seen), cx.now).msg()),
            }
        } else {
            Frame::new(
                Outcome::PermissionDenied
                    .ctrl(idr, Some(&as_seen), cx.now)
                    .msg(),
            )
        };
        self.send(req.sid, vec![frame], cx);
    }
}

/// `{ctrl 204 params:{what}}`.
fn no_content(id: Option<&str>, as_seen: &str, what: &str, cx: &TopicCx<'_>) -> Frame {
    Frame::new(
        Outcome::NoContent
            .ctrl(id, Some(as_seen), cx.now)
            .param("what", what)
            .msg(),
    )
}
