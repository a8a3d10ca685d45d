//! Detaching sessions and users: `{leave}` with and without `unsub`, silent detach of ended
//! sessions, evictions, the `on`/`off` presence they cause, and the `{pres acs}` that follows a
//! subscription change.

use crate::access::AccessMode;
use crate::ids::{SessionId, UserId};
use crate::proto::server::{DeltaAcs, Pres, ServerMsg};
use crate::proto::{Frame, Outcome};
use crate::routing::{Requester, SessionEvent};
use crate::store::WriteOp;
use crate::topic::{Pending, Reply, Topic, TopicCx, TopicKind, TopicOut};

impl Topic {
    /// `{pres on|off}` about `uid` to other users' attached sessions that have P (channel
    /// readers neither cause nor see member presence).
    pub(crate) fn announce(&self, uid: UserId, what: &'static str, cx: &mut TopicCx<'_>) {
        let src = uid.usr();
        self.fan(
            AccessMode::PRES,
            None,
            |u| u != uid,
            |view, reader| {
                (!reader).then(|| {
                    Frame::new(ServerMsg::Pres(Pres {
                        topic: view.to_owned(),
                        src: Some(src.clone()),
                        what,
                        ..Pres::default()
                    }))
                })
            },
            cx,
        );
    }

    /// Removes one session; announces `off` if it was the user's last.
    pub(crate) fn remove_session(
        &mut self,
        sid: SessionId,
        cx: &mut TopicCx<'_>,
    ) -> Option<UserId> {
        let a = self.attached.remove(&sid)?;
        if let Some(fnd) = self.fnd.as_mut() {
            fnd.queries.remove(&sid);
        }
        // A background session was never counted online and announced nothing.
        let last = match self.members.get_mut(&a.uid) {
            Some(m) if !a.background => {
                m.online = m.online.saturating_sub(1);
                m.online == 0
            }
            _ => false,
        };
        match self.kind {
            TopicKind::Me(_) => self.me_detached(sid, cx.now),
            TopicKind::Group | TopicKind::P2p(..) if last && !self.is_reader(a.uid) => {
                self.announce(a.uid, "off", cx)
            }
            _ => {}
        }
        Some(a.uid)
    }

    /// This node no longer masters the topic (the cluster moved it, or the node was fenced):
    /// every attached session gets `{pres what:"term"}` (the reference's answer to a rehash:
    /// the client must subscribe again) and is detached. Writes in flight still answer their
    /// requester; the runtime unloads the topic once it is idle.
    pub fn relinquish(&mut self, cx: &mut TopicCx<'_>) {
        let sids: Vec<SessionId> = self.attached.keys().copied().collect();
        for sid in sids {
            let Some(uid) = self.remove_session(sid, cx) else {
                continue;
            };
            let term = Frame::new(ServerMsg::Pres(Pres {
                topic: self.view_of(uid),
                what: "term",
                ..Pres::default()
            }));
            self.send(sid, vec![term], cx);
            cx.out.push(TopicOut::ToSession {
                sid,
                ev: SessionEvent::Detached {
                    topic: self.name.clone(),
                },
            });
        }
    }

    pub(crate) fn detach(&mut self, sid: SessionId, cx: &mut TopicCx<'_>) {
        self.remove_session(sid, cx);
        // A join still waiting for its write must not attach a session that has gone.
        self.pending
            .retain(|_, p| !matches!(p, Pending::Join(j) if j.req.sid == sid));
    }

    pub(crate) fn on_leave(
        &mut self,
        req: Requester,
        id: Option<String>,
        as_seen: String,
        unsub: bool,
        cx: &mut TopicCx<'_>,
    ) {
        if !self.attached.contains_key(&req.sid) {
            let outcome = if unsub {
                Outcome::AttachFirst
            } else {
                Outcome::NotJoined
            };
            self.reply_err(&req, outcome, id.as_deref(), &as_seen, cx);
            return;
        }
        if unsub {
            let is_owner = self.rec.as_ref().is_some_and(|r| r.owner == Some(req.uid));
            if matches!(self.kind, TopicKind::Me(_) | TopicKind::Fnd(_)) || is_owner {
                let msg = Outcome::PermissionDenied
                    .ctrl(id.as_deref(), Some(&as_seen), cx.now)
                    .msg();
                self.reply(req.sid, msg, cx);
                return;
            }
        }
        self.remove_session(req.sid, cx);
        let detached = TopicOut::ToSession {
            sid: req.sid,
            ev: SessionEvent::Detached {
                topic: self.name.clone(),
            },
        };
        let ok = Frame::new(
            Outcome::Ok
                .ctrl(id.as_deref(), Some(&as_seen), cx.now)
                .msg(),
        );
        if !unsub {
            self.send(req.sid, vec![ok], cx);
            cx.out.push(detached);
            return;
        }
        let reply = Reply {
            sid: Some(req.sid),
            id,
            as_seen: as_seen.clone(),
            frames: vec![ok],
            after: vec![detached],
            on_conflict: None,
        };
        self.unsubscribe(req.uid, Some(reply), &as_seen, cx);
    }

    /// Deletes `uid`'s subscription (kept as a deleted row so `given` survives) and, once that
    /// is durable, sends `reply` (the requester's `{ctrl}`) and tells the user's other
    /// sessions (`pres gone` on `me`, `205 evicted` here), the admins, the user's `me`
    /// contact list and, in P2P, the peer (`off` on its `me`).
    pub(crate) fn unsubscribe(
        &mut self,
        uid: UserId,
        reply: Option<Reply>,
        as_seen: &str,
        cx: &mut TopicCx<'_>,
    ) {
        let now = cx.now;
        let view = self.view_of(uid);
        let origin = reply.as_ref().and_then(|r| r.sid);
        let Some(m) = self.members.get_mut(&uid) else {
            if let Some(r) = reply {
                self.reply_persisted_now(r, cx);
            }
            return;
        };
        m.sub.deleted = Some(now);
        m.sub.updated = now;
        let batch = vec![WriteOp::PutSub(m.sub.clone())];
        // Everything below waits for the write: collect it apart.
        let mut later = Vec::new();
        {
            let mut lcx = TopicCx::new(cx.now, cx.limits, &mut later);
            let skip: Vec<SessionId> = origin.into_iter().collect();
            self.notify_acs(
                uid,
                "N".into(),
                "N".into(),
                origin.unwrap_or(SessionId(0)),
                &mut lcx,
            );
            let gone = Frame::new(ServerMsg::Pres(Pres {
                topic: "me".into(),
                src: Some(view),
                what: "gone",
                ..Pres::default()
            }));
            lcx.out.push(TopicOut::UserPres {
                frame: gone,
                targets: vec![(uid, skip)],
            });
            self.subs_changed(&[uid], true, &mut lcx);
            if let TopicKind::P2p(a, b) = self.kind {
                // The peer no longer sees the user in this conversation.
                let peer = if a == uid { b } else { a };
                lcx.out.push(TopicOut::ToTopic {
                    topic: crate::routing::me_topic(peer),
                    req: crate::routing::TopicRequest::Contact {
                        topic: self.name.clone(),
                        ev: crate::routing::ContactEvent::Off { ua: String::new() },
                    },
                });
            }
            self.evict_user(uid, as_seen, true, &mut lcx);
        }
        match reply {
            Some(mut r) => {
                r.after.extend(later);
                self.persist_reply(batch, r, cx);
            }
            None => {
                let r = Reply {
                    after: later,
                    ..Reply::default()
                };
                self.persist_reply(batch, r, cx);
            }
        }
    }

    /// Sends a reply that waits for nothing.
    fn reply_persisted_now(&mut self, r: Reply, cx: &mut TopicCx<'_>) {
        if let Some(sid) = r.sid {
            if !r.frames.is_empty() {
                self.send(sid, r.frames, cx);
            }
        }
        cx.out.extend(r.after);
    }

    /// Detaches every session of `uid` with `{ctrl 205 "evicted"}`.
    pub(crate) fn evict_user(
        &mut self,
        uid: UserId,
        as_seen: &str,
        unsub: bool,
        cx: &mut TopicCx<'_>,
    ) {
        let view = if as_seen.is_empty() {
            self.view_of(uid)
        } else {
            as_seen.to_owned()
        };
        let sids: Vec<SessionId> = self
            .attached
            .iter()
            .filter(|(_, a)| a.uid == uid)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in sids {
            self.remove_session(sid, cx);
            let frame = Frame::new(
                Outcome::Evicted
                    .ctrl(None, Some(&view), cx.now)
                    .param("unsub", unsub)
                    .msg(),
            );
            self.send(sid, vec![frame], cx);
            cx.out.push(TopicOut::ToSession {
                sid,
                ev: SessionEvent::Detached {
                    topic: self.name.clone(),
                },
            });
        }
    }
}

impl Topic {
    /// A subscription of `uid` was created, changed or deleted: `{pres acs}` with the new
    /// `dacs` to the topic's attached admins (A or O) other than the user, and on `me` to the
    /// user's other sessions (not `origin`).
    pub(crate) fn notify_acs(
        &self,
        uid: UserId,
        want: String,
        given: String,
        origin: SessionId,
        cx: &mut TopicCx<'_>,
    ) {
        let dacs = DeltaAcs {
            want: Some(want),
            given: Some(given),
        };
        let is_admin = |u: UserId| {
            self.members
                .get(&u)
                .is_some_and(|m| m.mode().0 & (AccessMode::APPROVE | AccessMode::OWNER) != 0)
        };
        let src = uid.usr();
        let d = dacs.clone();
        self.fan(
            0,
            None,
            |u| u != uid && is_admin(u),
            |view, _| {
                Some(Frame::new(ServerMsg::Pres(Pres {
                    topic: view.to_owned(),
                    src: Some(src.clone()),
                    what: "acs",
                    dacs: Some(d.clone()),
                    ..Pres::default()
                })))
            },
            cx,
        );
        let frame = Frame::new(ServerMsg::Pres(Pres {
            topic: "me".into(),
            src: Some(self.view_of(uid)),
            what: "acs",
            dacs: Some(dacs),
            ..Pres::default()
        }));
        cx.out.push(TopicOut::UserPres {
            frame,
            targets: vec![(uid, vec![origin])],
        });
    }

    /// Active subscribers counted against `topic.max_subscriber_count` (not channel readers).
    pub(crate) fn member_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_active() && !self.is_reader(m.sub.user))
            .count()
    }
}
