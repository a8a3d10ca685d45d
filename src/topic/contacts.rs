//! Presence between users and the topics they belong to, as seen on `me`: the contact list a
//! `me` topic keeps, the `on`/`off`/`ua`/`upd` it shows to its sessions, and the handshake
//! with P2P peers' `me` topics (each side announces itself and asks the other to answer, so
//! both learn who is online without a shared table).
//!
//! A user is online from the first session attaching to `me` until `me` unloads (the linger,
//! `topic.idle_unload_ms`, 4 s by default); re-attaching within the linger produces nothing.
//! Group topics announce themselves to their members' `me` when loaded and unloaded.

use crate::access::AccessMode;
use crate::ids::{SessionId, UserId};
use crate::proto::server::{Pres, ServerMsg};
use crate::proto::Frame;
use crate::routing::{me_topic, ContactEvent, TopicRequest};
use crate::store::{Answers, StoreError, SubRecord, WriteOp};
use crate::topic::{Map, Topic, TopicCx, TopicKind, TopicOut};

/// One contact of a user: a P2P conversation or a group the user is subscribed to.
#[derive(Clone, Debug)]
pub(crate) struct Contact {
    /// The contact's name as the user sees it (`usr…` peer, `grp…`, `chn…`).
    pub(crate) view: String,
    /// The other user of a P2P contact.
    pub(crate) peer: Option<UserId>,
    /// The user's own access mode on the subscription.
    pub(crate) mode: AccessMode,
    pub(crate) online: bool,
    pub(crate) ua: String,
    /// Added since `me` loaded (a new conversation): the client learns the peer's state from
    /// the `{get sub}` it sends on `pres acs`, so the first `on` is not shown (a `pres` for a
    /// contact the client does not know yet breaks the web app).
    pub(crate) fresh: bool,
}

/// A `me` topic's contact list, by routing name: a box made at the first contact, so that
/// every other topic, and a user without contacts, carries 8 bytes for it instead of a table's
/// 40 (W1: `Topic` fits mimalloc's 448-byte class).
#[derive(Debug, Default)]
pub(crate) struct Contacts(Option<Box<Map<String, Contact>>>);

impl Contacts {
    pub(crate) fn get(&self, topic: &str) -> Option<&Contact> {
        self.0.as_ref()?.get(topic)
    }

    pub(crate) fn get_mut(&mut self, topic: &str) -> Option<&mut Contact> {
        self.0.as_mut()?.get_mut(topic)
    }

    pub(crate) fn insert(&mut self, topic: String, c: Contact) {
        self.0.get_or_insert_with(Box::default).insert(topic, c);
    }

    pub(crate) fn remove(&mut self, topic: &str) {
        if let Some(m) = &mut self.0 {
            m.remove(topic);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Contact)> {
        self.0.iter().flat_map(|m| m.iter())
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Contact> {
        self.0.iter_mut().flat_map(|m| m.values_mut())
    }
}

impl Contact {
    fn from_sub(uid: UserId, sub: &SubRecord) -> Option<Contact> {
        let peer = match TopicKind::of(&sub.topic)? {
            TopicKind::P2p(a, b) => Some(if a == uid { b } else { a }),
            TopicKind::Group => None,
            _ => return None,
        };
        let view = match peer {
            Some(p) => p.usr(),
            None if sub.given == AccessMode::CHAN_READER => format!("chn{}", &sub.topic[3..]),
            None => sub.topic.clone(),
        };
        Some(Contact {
            view,
            peer,
            mode: sub.want.and(sub.given),
            online: false,
            ua: String::new(),
            fresh: false,
        })
    }
}

impl Topic {
    /// `me`: reads the user's active subscriptions into the contact list.
    pub(crate) fn load_contacts(&mut self, answers: &Answers) -> Result<(), StoreError> {
        let TopicKind::Me(uid) = self.kind else {
            return Ok(());
        };
        for sub in answers.subs_of_user(uid)? {
            if sub.deleted.is_some() {
                continue;
            }
            if let Some(c) = Contact::from_sub(uid, &sub) {
                self.contacts.insert(sub.topic.clone(), c);
            }
        }
        Ok(())
    }

    /// The user agent of the most recently attached session of `me`.
    pub(crate) fn current_ua(&self) -> String {
        self.uas
            .last()
            .map(|(_, ua)| ua.to_string())
            .unwrap_or_default()
    }

    /// Asks the `me` topic of `user` to process a contact event about `topic`.
    fn tell_me(&self, user: UserId, topic: &str, ev: ContactEvent, cx: &mut TopicCx<'_>) {
        cx.out.push(TopicOut::ToTopic {
            topic: me_topic(user),
            req: TopicRequest::Contact {
                topic: topic.to_owned(),
                ev,
            },
        });
    }

    /// `me`: a session attached. The first one since loading announces the user online to
    /// P2P peers; a different user agent than the current one is announced as `ua`.
    pub(crate) fn me_attached(&mut self, sid: SessionId, ua: &str, cx: &mut TopicCx<'_>) {
        let TopicKind::Me(uid) = self.kind else {
            return;
        };
        let previous = self.current_ua();
        self.uas.retain(|(s, _)| *s != sid);
        // Most users have one session: a first push would allocate room for four (W1).
        self.uas.reserve_exact(1);
        self.uas.push((sid, ua.into()));
        if !self.me_want.has(AccessMode::PRES) {
            // Muted: the user is invisible to contacts.
            self.announced = true;
        } else if !self.announced {
            self.announced = true;
            for (topic, c) in self.contacts.iter() {
                if let Some(peer) = c.peer {
                    let ev = ContactEvent::On {
                        peer: Some(uid),
                        ua: ua.to_owned(),
                        reply: true,
                    };
                    self.tell_me(peer, topic, ev, cx);
                }
            }
        } else if !ua.is_empty() && ua != previous && self.me_want.has(AccessMode::PRES) {
            for (topic, c) in self.contacts.iter() {
                if let Some(peer) = c.peer {
                    self.tell_me(peer, topic, ContactEvent::Ua { ua: ua.to_owned() }, cx);
                }
            }
        }
    }

    /// `me`: a session detached; the UA falls back to the previous session's. When it was the
    /// last one, the user was last seen now (recorded when `me` unloads, after the linger).
    pub(crate) fn me_detached(&mut self, sid: SessionId, now: crate::ids::UnixMillis) {
        if let Some(i) = self.uas.iter().position(|(s, _)| *s == sid) {
            let (_, ua) = self.uas.remove(i);
            if self.uas.is_empty() {
                self.last_left = Some(Box::new((now, ua)));
            }
        }
    }

    /// Group: the topic came online (first attachment since loading): members' `me` show
    /// `{pres on src:grp…}`.
    pub(crate) fn group_online(&mut self, cx: &mut TopicCx<'_>) {
        if self.announced || self.kind != TopicKind::Group {
            return;
        }
        self.announced = true;
        for (uid, m) in &self.members {
            if m.is_active() {
                let ev = ContactEvent::On {
                    peer: None,
                    ua: String::new(),
                    reply: false,
                };
                self.tell_me(*uid, &self.name, ev, cx);
            }
        }
    }

    /// The topic is about to be dropped from memory: `me` announces the user offline to P2P
    /// peers and records last-seen; a group announces itself offline to its members.
    pub(crate) fn on_unload(&mut self, cx: &mut TopicCx<'_>) {
        if self.unloaded || !self.announced {
            self.unloaded = true;
            return;
        }
        self.unloaded = true;
        match self.kind {
            TopicKind::Me(_) => {
                let (left, ua) = match self.last_left.as_deref() {
                    Some((when, ua)) => (*when, ua.to_string()),
                    None => (cx.now, String::new()),
                };
                if self.me_want.has(AccessMode::PRES) {
                    for (topic, c) in self.contacts.iter() {
                        if let Some(peer) = c.peer {
                            self.tell_me(peer, topic, ContactEvent::Off { ua: ua.clone() }, cx);
                        }
                    }
                }
                if let TopicKind::Me(uid) = self.kind {
                    let patch = crate::store::UserPatch {
                        id: uid,
                        last_seen: Some((left, ua)),
                        ..Default::default()
                    };
                    cx.out.push(TopicOut::Write {
                        batch: vec![WriteOp::PatchUser(patch)],
                    });
                }
            }
            TopicKind::Group => {
                for (uid, m) in &self.members {
                    if m.is_active() {
                        let ev = ContactEvent::Off { ua: String::new() };
                        self.tell_me(*uid, &self.name, ev, cx);
                    }
                }
            }
            _ => {}
        }
    }

    /// `me`: a `{pres}` about a contact to every attached session.
    fn show(&self, frame: Frame, cx: &mut TopicCx<'_>) {
        let to = self.recipients(self.attached.keys().copied());
        self.deliver(frame, to, cx);
    }

    fn contact_pres(view: &str, what: &'static str, ua: Option<String>) -> Frame {
        Frame::new(ServerMsg::Pres(Pres {
            topic: "me".into(),
            src: Some(view.to_owned()),
            what,
            ua,
            ..Pres::default()
        }))
    }

    /// `me`: handles an event about one of the user's contacts.
    pub(crate) fn on_contact(&mut self, topic: String, ev: ContactEvent, cx: &mut TopicCx<'_>) {
        let TopicKind::Me(uid) = self.kind else {
            return;
        };
        match ev {
            ContactEvent::SubGone => {
                self.contacts.remove(&topic);
                return;
            }
            ContactEvent::SubChanged | ContactEvent::NewContact => {
                let new_contact = matches!(ev, ContactEvent::NewContact);
                match cx.fetched.sub(&topic, uid) {
                    Ok(Some(sub)) if sub.deleted.is_none() => {
                        if let Some(mut c) = Contact::from_sub(uid, &sub) {
                            let known = self.contacts.get(&topic);
                            if let Some(old) = known {
                                c.online = old.online;
                                c.ua = old.ua.clone();
                                c.fresh = old.fresh;
                            } else {
                                c.fresh = new_contact;
                            }
                            let new_p2p = c.peer.filter(|_| known.is_none());
                            self.contacts.insert(topic.clone(), c);
                            // A new P2P contact: learn whether the peer is online.
                            if let Some(peer) = new_p2p {
                                let ev = ContactEvent::On {
                                    peer: Some(uid),
                                    ua: self.current_ua(),
                                    reply: true,
                                };
                                self.tell_me(peer, &topic, ev, cx);
                            }
                        }
                    }
                    Ok(_) => {
                        self.contacts.remove(&topic);
                    }
                    Err(e) => log::error!("me {uid}: cannot read subscription {topic}: {e}"),
                }
                return;
            }
            _ => {}
        }
        let Some(c) = self.contacts.get_mut(&topic) else {
            return;
        };
        let sees_presence = c.mode.has(AccessMode::PRES) && self.me_want.has(AccessMode::PRES);
        let visible = self.me_want.has(AccessMode::PRES);
        let view = c.view.clone();
        match ev {
            ContactEvent::On { peer, ua, reply } => {
                let was = c.online || c.fresh;
                c.online = true;
                c.ua = ua.clone();
                if reply && visible {
                    if let Some(peer) = peer {
                        let ev = ContactEvent::On {
                            peer: Some(uid),
                            ua: self.current_ua(),
                            reply: false,
                        };
                        self.tell_me(peer, &topic, ev, cx);
                    }
                }
                if !was && sees_presence {
                    let ua = (!ua.is_empty()).then_some(ua);
                    self.show(Topic::contact_pres(&view, "on", ua), cx);
                }
            }
            ContactEvent::Off { ua } => {
                let was = c.online;
                c.online = false;
                if !ua.is_empty() {
                    c.ua = ua;
                }
                if was && sees_presence {
                    self.show(Topic::contact_pres(&view, "off", None), cx);
                }
            }
            ContactEvent::Ua { ua } => {
                c.ua = ua.clone();
                if c.online && sees_presence {
                    self.show(Topic::contact_pres(&view, "ua", Some(ua)), cx);
                }
            }
            ContactEvent::Upd => {
                if c.mode.has(AccessMode::JOIN) {
                    self.show(Topic::contact_pres(&view, "upd", None), cx);
                }
            }
            ContactEvent::SubChanged | ContactEvent::NewContact | ContactEvent::SubGone => {}
        }
    }

    /// `me`: the user muted (`visible` false) or unmuted itself: P2P peers see it go `off`
    /// or come back `on` (and answer with their own state).
    pub(crate) fn me_visibility_changed(&self, visible: bool, cx: &mut TopicCx<'_>) {
        let TopicKind::Me(uid) = self.kind else {
            return;
        };
        for (topic, c) in self.contacts.iter() {
            if let Some(peer) = c.peer {
                let ev = if visible {
                    ContactEvent::On {
                        peer: Some(uid),
                        ua: self.current_ua(),
                        reply: true,
                    }
                } else {
                    ContactEvent::Off {
                        ua: self.current_ua(),
                    }
                };
                self.tell_me(peer, topic, ev, cx);
            }
        }
    }

    /// `me`: the client listed its contacts; new ones may now show presence.
    pub(crate) fn contacts_listed(&mut self) {
        for c in self.contacts.values_mut() {
            c.fresh = false;
        }
    }

    /// Tells the `me` topics of `users` that their subscription here changed (or is gone).
    pub(crate) fn subs_changed(&self, users: &[UserId], gone: bool, cx: &mut TopicCx<'_>) {
        for u in users {
            let ev = if gone {
                ContactEvent::SubGone
            } else {
                ContactEvent::SubChanged
            };
            self.tell_me(*u, &self.name, ev, cx);
        }
    }

    /// `me`: the user's `public` changed: online P2P peers show `{pres upd}`.
    pub(crate) fn me_public_changed(&self, cx: &mut TopicCx<'_>) {
        for (topic, c) in self.contacts.iter() {
            if let Some(peer) = c.peer {
                self.tell_me(peer, topic, ContactEvent::Upd, cx);
            }
        }
    }
}
