//! P2P conversations: `{sub usrX}` creates the `p2p…` topic and both subscriptions on first
//! use, or attaches to it. Each user names the topic by the other's id; the internal name is
//! never shown to clients.
//!
//! Default access follows the reference (tinode-protocol.md §4.2, `initTopicP2P`): the
//! requester's `given` is what the peer's `defacs` gives users of the requester's level, in
//! full (root: the P2P mode); the peer's `given` is the requester's `defacs.auth` (or
//! `set.desc.defacs.auth`) masked to the P2P mode, with `A`; the requester's `want` is that
//! same mode (or `set.sub.mode`, masked, with `A` and `J`); the peer's `want` is the peer's own
//! `defacs` for the requester's level, masked, with `A`.

use crate::access::{AccessMode, AuthLevel};
use crate::ids::UserId;
use crate::proto::server::{DeltaAcs, Pres, ServerMsg};
use crate::proto::{Frame, Outcome};
use crate::store::{SubRecord, TopicRecord, UserRecord, UserState, WriteOp};
use crate::topic::join::JoinArgs;
use crate::topic::{Member, Topic, TopicCx, TopicKind, TopicOut};

/// A P2P mode set at creation: masked to the P2P mode `JRWPA` (P2P deletion, which would add
/// `D`, is not offered), with `A` always, as the reference's `mode & CP2P | A`.
fn p2p_mask(m: AccessMode) -> AccessMode {
    m.and(AccessMode::P2P).with(AccessMode::APPROVE)
}

/// What `user`'s defaults give a user of `level`.
fn given_by(user: &UserRecord, level: AuthLevel) -> AccessMode {
    match level {
        AuthLevel::Anon => user.access.anon,
        AuthLevel::Root => AccessMode::P2P,
        _ => user.access.auth,
    }
}

impl Topic {
    pub(crate) fn join_p2p(&mut self, a: JoinArgs, cx: &mut TopicCx<'_>) {
        let TopicKind::P2p(lo, hi) = self.kind else {
            return;
        };
        let me = a.req.uid;
        let id = a.id.clone();
        let id = id.as_deref();
        let peer = if me == lo { hi } else { lo };
        if me != lo && me != hi {
            self.reply_err(&a.req, Outcome::PermissionDenied, id, &a.as_seen, cx);
            return;
        }
        let requested = a
            .set
            .as_ref()
            .and_then(|s| s.sub.as_ref())
            .and_then(|s| s.mode.as_deref())
            .map(AccessMode::parse);
        let requested = match requested {
            Some(Err(_)) => {
                self.reply_err(&a.req, Outcome::Malformed, id, &a.as_seen, cx);
                return;
            }
            Some(Ok(m)) => m.map(|m| p2p_mask(m).with(AccessMode::JOIN)),
            None => None,
        };
        let private = a
            .set
            .as_ref()
            .and_then(|s| s.desc.as_ref())
            .and_then(|d| d.private.as_ref())
            .map(|r| r.get().to_owned());
        let now = cx.now;
        let mut batch = Vec::new();
        let mut after = Vec::new();
        let mine = self.members.get(&me).cloned();
        let changed;
        match mine {
            Some(m) if m.is_active() => {
                let mut sub = m.sub;
                let mut c = false;
                if let Some(w) = requested.filter(|w| *w != sub.want) {
                    sub.want = w;
                    c = true;
                }
                if private.is_some() && private != sub.private {
                    sub.private = private;
                    c = true;
                }
                if c {
                    sub.updated = now;
                    batch.push(WriteOp::PutSub(sub.clone()));
                    self.members.insert(
                        me,
                        Member {
                            sub,
                            online: m.online,
                        },
                    );
                }
                changed = c;
            }
            previous => {
                let users = (cx.fetched.user(me), cx.fetched.user(peer));
                let (my_user, peer_user) = match users {
                    (Ok(Some(u)), Ok(Some(p))) => (u, p),
                    (Err(e), _) | (_, Err(e)) => {
                        log::error!("p2p {}: user lookup failed: {e}", self.name);
                        self.reply_err(&a.req, Outcome::InternalError, id, &a.as_seen, cx);
                        return;
                    }
                    _ => {
                        self.reply_err(&a.req, Outcome::UserNotFound, id, &a.as_seen, cx);
                        return;
                    }
                };
                if peer_user.state == UserState::Deleted {
                    self.reply_err(&a.req, Outcome::UserNotFound, id, &a.as_seen, cx);
                    return;
                }
                // A deleted subscription keeps its `given`, so a block survives. A new one
                // gets the peer's default in full (e.g. `JRWPAS`), as the reference does.
                let given = match &previous {
                    Some(m) => m.sub.given,
                    None => given_by(&peer_user, a.req.level),
                };
                if !given.has(AccessMode::JOIN) {
                    self.reply_err(&a.req, Outcome::PermissionDenied, id, &a.as_seen, cx);
                    return;
                }
                // What the requester gives the peer (below), unless `set.sub.mode` says.
                let peer_defacs = a
                    .set
                    .as_ref()
                    .and_then(|s| s.desc.as_ref())
                    .and_then(|d| d.defacs.as_ref())
                    .and_then(|d| d.auth.as_deref())
                    .and_then(|s| AccessMode::parse(s).ok().flatten());
                let peer_given = match self.members.get(&peer) {
                    Some(p) => p.sub.given,
                    None => p2p_mask(peer_defacs.unwrap_or(my_user.access.auth)),
                };
                let want = requested.unwrap_or(peer_given.with(AccessMode::JOIN));
                let sub = SubRecord {
                    topic: self.name.clone(),
                    user: me,
                    created: previous.as_ref().map_or(now, |m| m.sub.created),
                    updated: now,
                    deleted: None,
                    want,
                    given,
                    read: previous.as_ref().map_or(0, |m| m.sub.read),
                    recv: previous.as_ref().map_or(0, |m| m.sub.recv),
                    del_id: previous.as_ref().map_or(0, |m| m.sub.del_id),
                    private,
                };
                if self.rec.is_none() {
                    let rec = TopicRecord {
                        name: self.name.clone(),
                        created: now,
                        updated: now,
                        owner: None,
                        access: Default::default(),
                        public: None,
                        trusted: None,
                        tags: Vec::new(),
                        is_chan: false,
                        del_id: 0,
                        aux: None,
                    };
                    batch.push(WriteOp::CreateTopic(rec.clone()));
                    self.rec = Some(Box::new(rec));
                }
                batch.push(WriteOp::PutSub(sub.clone()));
                self.members.insert(me, Member { sub, online: 0 });
                if !self.members.contains_key(&peer) {
                    let peer_want = p2p_mask(given_by(&peer_user, a.req.level));
                    let psub = SubRecord {
                        topic: self.name.clone(),
                        user: peer,
                        created: now,
                        updated: now,
                        deleted: None,
                        want: peer_want,
                        given: peer_given,
                        read: 0,
                        recv: 0,
                        del_id: 0,
                        private: None,
                    };
                    batch.push(WriteOp::PutSub(psub.clone()));
                    self.members.insert(
                        peer,
                        Member {
                            sub: psub.clone(),
                            online: 0,
                        },
                    );
                    // The peer learns of the new conversation on `me`.
                    let frame = Frame::new(ServerMsg::Pres(Pres {
                        topic: "me".into(),
                        src: Some(me.usr()),
                        what: "acs",
                        act: Some(me.usr()),
                        dacs: Some(DeltaAcs {
                            want: Some(psub.want.to_string()),
                            given: Some(psub.given.to_string()),
                        }),
                        ..Pres::default()
                    }));
                    after.push(TopicOut::UserPres {
                        frame,
                        targets: vec![(peer, Vec::new())],
                    });
                    after.push(TopicOut::ToTopic {
                        topic: crate::routing::me_topic(peer),
                        req: crate::routing::TopicRequest::Contact {
                            topic: self.name.clone(),
                            ev: crate::routing::ContactEvent::NewContact,
                        },
                    });
                }
                changed = true;
            }
        }
        self.join_after(batch, a.pending(changed, after), cx);
    }

    /// A `SubChanged` contact event for `user`'s `me`, as an output.
    pub(crate) fn contact_changed_out(&self, user: UserId) -> TopicOut {
        TopicOut::ToTopic {
            topic: crate::routing::me_topic(user),
            req: crate::routing::TopicRequest::Contact {
                topic: self.name.clone(),
                ev: crate::routing::ContactEvent::SubChanged,
            },
        }
    }
}
