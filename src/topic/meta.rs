//! Queries: `{get}` and the `get` part of `{sub}` — `desc`, `sub` and `data` — answered from
//! the topic's memory and inline store reads, in the reference order
//! (desc, sub, data + closing ctrl).
//!
//! Tags, credentials, aux and deletion history are not served yet; asking only for them yields
//! the reference's empty answers.

use bytes::Bytes;

use crate::access::AccessMode;
use crate::proto::client::what;
use crate::proto::client::GetQuery;
use crate::proto::server::{raw, DefAcsOut, DescOut, Meta, ServerMsg, SubOut, Ts};
use crate::proto::{encode, Outcome};
use crate::routing::Requester;
use crate::store::MessageQuery;
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
            self.reply_err(
                &req,
                crate::proto::Outcome::AttachFirst,
                id.as_deref(),
                &as_seen,
                cx,
            );
            return;
        }
        let mut frames = Vec::new();
        self.get_frames(&req, id.as_deref(), &as_seen, &query, &mut frames, cx);
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
        frames: &mut Vec<Bytes>,
        cx: &mut TopicCx<'_>,
    ) {
        let bits = what::parse(&query.what);
        if bits & what::DESC != 0 {
            frames.push(self.desc_frame(req, id, as_seen, cx));
        }
        if bits & what::SUB != 0 {
            frames.push(self.sub_frame(req, id, as_seen, cx));
        }
        if bits & what::TAGS != 0 {
            let tags = match self.kind {
                TopicKind::Me(_) => self
                    .user
                    .as_ref()
                    .map(|u| u.tags.clone())
                    .unwrap_or_default(),
                TopicKind::Group => self
                    .rec
                    .as_ref()
                    .map(|r| r.tags.clone())
                    .unwrap_or_default(),
            };
            if tags.is_empty() {
                frames.push(encode(
                    &Outcome::NoContent
                        .ctrl(id, Some(as_seen), cx.now)
                        .param("what", "tags")
                        .msg(),
                ));
            } else {
                frames.push(encode(&ServerMsg::Meta(Meta {
                    id: id.map(str::to_owned),
                    topic: as_seen.to_owned(),
                    ts: Ts(cx.now),
                    tags: Some(tags),
                    ..Meta::default()
                })));
            }
        }
        let is_me = matches!(self.kind, TopicKind::Me(_));
        if bits & what::CRED != 0 {
            // No credential validation is configured: there are no credentials to list.
            frames.push(empty_or_not_allowed(is_me, "creds", id, as_seen, cx));
        }
        if bits & what::AUX != 0 {
            frames.push(empty_or_not_allowed(!is_me, "aux", id, as_seen, cx));
        }
        if bits & what::DATA != 0 {
            self.data_frames(req, id, as_seen, query, frames, cx);
        }
        if bits & what::DEL != 0 {
            frames.push(encode(
                &Outcome::NoContent
                    .ctrl(id, Some(as_seen), cx.now)
                    .param("what", "del")
                    .msg(),
            ));
        }
    }

    fn mode_of(&self, req: &Requester) -> AccessMode {
        match self.kind {
            TopicKind::Me(_) => AccessMode::SELF_ME,
            TopicKind::Group => self
                .members
                .get(&req.uid)
                .map(|m| m.mode())
                .unwrap_or_default(),
        }
    }

    fn desc_frame(
        &self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        cx: &mut TopicCx<'_>,
    ) -> Bytes {
        let mut desc = DescOut::default();
        match self.kind {
            TopicKind::Me(_) => {
                if let Some(u) = &self.user {
                    desc.created = Some(Ts(u.created));
                    desc.updated = Some(Ts(u.updated));
                    desc.touched = Some(Ts(u.updated));
                    desc.defacs = Some(DefAcsOut {
                        auth: u.access.auth.to_string(),
                        anon: u.access.anon.to_string(),
                    });
                    desc.public = u.public.as_deref().map(raw);
                    desc.trusted = u.trusted.as_deref().map(raw);
                }
                let m = AccessMode::SELF_ME.to_string();
                desc.acs = Some(crate::proto::server::AccessOut {
                    want: m.clone(),
                    given: m.clone(),
                    mode: m,
                });
            }
            TopicKind::Group => {
                let mode = self.mode_of(req);
                if let Some(r) = &self.rec {
                    desc.created = Some(Ts(r.created));
                    desc.updated = Some(Ts(r.updated));
                    let touched = if mode.has(AccessMode::READ) {
                        self.touched.unwrap_or(r.updated)
                    } else {
                        r.updated
                    };
                    desc.touched = Some(Ts(touched));
                    desc.chan = r.is_chan;
                    if mode.0 & (AccessMode::SHARE | AccessMode::APPROVE | AccessMode::OWNER) != 0 {
                        desc.defacs = Some(DefAcsOut {
                            auth: r.access.auth.to_string(),
                            anon: r.access.anon.to_string(),
                        });
                    }
                    desc.public = r.public.as_deref().map(raw);
                    desc.trusted = r.trusted.as_deref().map(raw);
                }
                if let Some(m) = self.members.get(&req.uid) {
                    desc.acs = Some(Topic::access_out(&m.sub));
                    desc.private = m.sub.private.as_deref().map(raw);
                    if mode.has(AccessMode::READ) {
                        desc.read = m.sub.read;
                        desc.recv = m.sub.recv;
                    }
                }
                if mode.has(AccessMode::READ) {
                    desc.seq = self.seq;
                }
                if mode.has(AccessMode::PRES) {
                    desc.online = self.members.values().any(|m| m.online > 0);
                }
                desc.subcnt = self.members.values().filter(|m| m.is_active()).count() as u64;
            }
        }
        encode(&ServerMsg::Meta(Meta {
            id: id.map(str::to_owned),
            topic: as_seen.to_owned(),
            ts: Ts(cx.now),
            desc: Some(desc),
            ..Meta::default()
        }))
    }

    fn sub_frame(
        &self,
        req: &Requester,
        id: Option<&str>,
        as_seen: &str,
        cx: &mut TopicCx<'_>,
    ) -> Bytes {
        let subs = match self.kind {
            TopicKind::Me(uid) => self.me_subs(uid, cx),
            TopicKind::Group => self.group_subs(req, cx),
        };
        if subs.is_empty() {
            return encode(
                &Outcome::NoContent
                    .ctrl(id, Some(as_seen), cx.now)
                    .param("what", "sub")
                    .msg(),
            );
        }
        encode(&ServerMsg::Meta(Meta {
            id: id.map(str::to_owned),
            topic: as_seen.to_owned(),
            ts: Ts(cx.now),
            sub: Some(subs),
            ..Meta::default()
        }))
    }

    /// Members of a group as `{meta sub}` items.
    fn group_subs(&self, req: &Requester, cx: &mut TopicCx<'_>) -> Vec<SubOut> {
        let req_mode = self.mode_of(req);
        let is_admin = req_mode.0 & (AccessMode::APPROVE | AccessMode::OWNER) != 0;
        let mut members: Vec<_> = self.members.values().filter(|m| m.is_active()).collect();
        members.sort_by_key(|m| m.sub.created);
        members
            .into_iter()
            .map(|m| {
                let user = cx.store.user(m.sub.user).ok().flatten();
                let own = m.sub.user == req.uid;
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

    /// The user's subscriptions (contact list) as `{meta sub}` items on `me`.
    fn me_subs(&self, uid: crate::ids::UserId, cx: &mut TopicCx<'_>) -> Vec<SubOut> {
        let subs = match cx.store.subs_of_user(uid) {
            Ok(s) => s,
            Err(e) => {
                log::error!("me {uid}: cannot list subscriptions: {e}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for sub in subs.into_iter().filter(|s| s.deleted.is_none()) {
            if !sub.topic.starts_with("grp") {
                continue;
            }
            let Ok(Some(rec)) = cx.store.topic(&sub.topic) else {
                continue;
            };
            let last = cx.store.last_message(&sub.topic).ok().flatten();
            let readable = sub.want.and(sub.given).has(AccessMode::READ);
            let subcnt = cx
                .store
                .subs_of_topic(&sub.topic)
                .map(|v| v.iter().filter(|s| s.deleted.is_none()).count())
                .unwrap_or(0);
            out.push(SubOut {
                topic: Some(
                    if rec.is_chan
                        && sub.given.0 == (AccessMode::JOIN | AccessMode::READ | AccessMode::PRES)
                    {
                        format!("chn{}", &sub.topic[3..])
                    } else {
                        sub.topic.clone()
                    },
                ),
                updated: Some(Ts(sub.updated.max(rec.updated))),
                touched: last.map(|l| Ts(l.ts)).or(Some(Ts(rec.updated))),
                acs: Some(Topic::access_out(&sub)),
                read: if readable { sub.read } else { 0 },
                recv: if readable { sub.recv } else { 0 },
                seq: if readable {
                    last.map(|l| l.seq).unwrap_or(0)
                } else {
                    0
                },
                public: rec.public.as_deref().map(raw),
                trusted: rec.trusted.as_deref().map(raw),
                private: sub.private.as_deref().map(raw),
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
        frames: &mut Vec<Bytes>,
        cx: &mut TopicCx<'_>,
    ) {
        if !self.mode_of(req).has(AccessMode::READ) || self.kind != TopicKind::Group {
            frames.push(encode(
                &Outcome::PermissionDenied
                    .ctrl(id, Some(as_seen), cx.now)
                    .msg(),
            ));
            return;
        }
        let opts = query.data.clone().unwrap_or_default();
        if opts.ims.is_some() || opts.user.is_some() || opts.topic.is_some() {
            frames.push(encode(
                &Outcome::Malformed.ctrl(id, Some(as_seen), cx.now).msg(),
            ));
            return;
        }
        let max = cx.limits.max_history;
        let limit = match opts.limit {
            Some(l) if l > 0 => (l as usize).min(max),
            _ => max,
        };
        let q = MessageQuery {
            since: opts.since.filter(|s| *s > 0).map(|s| s as u64),
            before: opts.before.filter(|s| *s > 0).map(|s| s as u64),
            limit,
        };
        let msgs = match &opts.ranges {
            Some(ranges) if !ranges.is_empty() => self.ranged_history(ranges, q, cx),
            _ => cx.store.messages(&self.name, q),
        };
        let msgs = match msgs {
            Ok(m) => m,
            Err(e) => {
                log::error!("topic {}: history read failed: {e}", self.name);
                frames.push(encode(
                    &Outcome::InternalError.ctrl(id, Some(as_seen), cx.now).msg(),
                ));
                return;
            }
        };
        if msgs.is_empty() {
            frames.push(encode(
                &Outcome::NoContent
                    .ctrl(id, Some(as_seen), cx.now)
                    .param("what", "data")
                    .msg(),
            ));
            return;
        }
        let count = msgs.len();
        frames.extend(msgs.iter().map(|m| data_frame(as_seen, m)));
        let done = Outcome::Delivered
            .ctrl(id, Some(as_seen), cx.now)
            .param("what", "data")
            .param("count", count);
        frames.push(encode(&done.msg()));
    }

    /// History within `[low, hi)` ranges (also bounded by since/before), newest first, at
    /// most `q.limit` messages.
    fn ranged_history(
        &self,
        ranges: &[crate::proto::client::SeqRange],
        q: MessageQuery,
        cx: &mut TopicCx<'_>,
    ) -> Result<Vec<crate::store::MessageRecord>, crate::store::StoreError> {
        let mut out = Vec::new();
        for r in ranges.iter().filter(|r| r.low > 0) {
            let low = r.low as u64;
            let hi = if r.hi > r.low { r.hi as u64 } else { low + 1 };
            let since = q.since.map_or(low, |s| s.max(low));
            let before = q.before.map_or(hi, |b| b.min(hi));
            if since >= before {
                continue;
            }
            let part = MessageQuery {
                since: Some(since),
                before: Some(before),
                limit: q.limit,
            };
            out.extend(cx.store.messages(&self.name, part)?);
        }
        out.sort_by_key(|m| std::cmp::Reverse(m.seq));
        out.dedup_by_key(|m| m.seq);
        out.truncate(q.limit);
        Ok(out)
    }
}

/// `{ctrl 204 what}` where the section applies (and is empty), else 405.
fn empty_or_not_allowed(
    applies: bool,
    what: &str,
    id: Option<&str>,
    as_seen: &str,
    cx: &TopicCx<'_>,
) -> Bytes {
    let msg = if applies {
        Outcome::NoContent
            .ctrl(id, Some(as_seen), cx.now)
            .param("what", what)
            .msg()
    } else {
        Outcome::OperationNotAllowed
            .ctrl(id, Some(as_seen), cx.now)
            .msg()
    };
    encode(&msg)
}
