//! Per-message handling of client input: the gates (handshake, authentication, attachment),
//! validation, topic-name expansion, and the translation into routed topic requests.
//!
//! Every rejection is a `{ctrl}` with the reference server's code, built through
//! [`Outcome`]; nothing here panics on client input.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::access::AuthLevel;
use crate::ids::{random_body, UserId};
use crate::proto::client::what;
use crate::proto::client::*;
use crate::proto::{Decoded, Outcome};
use crate::routing::{me_topic, p2p_topic, CreateSpec, DelWhat, ReqHead, Requester, TopicRequest};
use crate::session::{
    AccountChange, AccountWhat, Lifecycle, Session, SessionCx, SessionOut, SubState,
};

/// Lowest accepted client version, 0.20.
const MIN_VERSION: u32 = 20 << 8;

/// Parses `"0.25"`, `"0.25.3-rc2"`, `"v0.25"` into `major<<16 | minor<<8 | patch`; 0 if unusable.
pub(crate) fn parse_version(v: &str) -> u32 {
    let v = v.trim();
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let mut parts = [0u32; 3];
    for (i, part) in v.split('.').take(3).enumerate() {
        let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n: u32 = digits.parse().unwrap_or(0);
        parts[i] = if n <= 0x1fff { n } else { 0 };
    }
    (parts[0] << 16) | (parts[1] << 8) | parts[2].min(0xff)
}

/// A topic name after expansion for routing.
struct Expanded {
    routing: String,
    create: Option<CreateSpec>,
}

impl Session {
    /// Handles one decoded client message.
    pub fn handle(&mut self, decoded: Decoded, cx: &mut SessionCx<'_>) {
        let Decoded { msg, extra } = decoded;
        self.last_action = cx.now;
        let id = msg.id().map(str::to_owned);
        let id = id.as_deref();
        if self.lifecycle == Lifecycle::Terminating {
            self.reply(Outcome::Locked, id, msg.topic(), cx);
            return;
        }
        if !self.admit(&msg, cx) {
            return;
        }
        if let Some(extra) = &extra {
            let wants_obo = extra.obo.as_deref().is_some_and(|s| !s.is_empty())
                || extra.authlevel.as_deref().is_some_and(|s| !s.is_empty());
            if wants_obo && !matches!(self.user, Some((_, AuthLevel::Root))) {
                self.reply(Outcome::PermissionDenied, None, None, cx);
                return;
            }
        }
        match msg {
            ClientMsg::Hi(m) => self.on_hi(m, cx),
            ClientMsg::Login(m) => {
                if self.gate_versioned(id, None, cx) {
                    self.on_login(m, cx);
                }
            }
            ClientMsg::Acc(m) => {
                if self.gate_versioned(id, None, cx) {
                    self.on_acc(m, cx);
                }
            }
            ClientMsg::Note(m) => {
                if self.lifecycle == Lifecycle::Versioned && self.user.is_some() {
                    self.on_note(m, cx);
                }
            }
            other => {
                let topic = other.topic().map(str::to_owned);
                if !self.gate_versioned(id, topic.as_deref(), cx) {
                    return;
                }
                if self.user.is_none() {
                    self.reply(Outcome::AuthRequired, id, topic.as_deref(), cx);
                    return;
                }
                match other {
                    ClientMsg::Sub(m) => self.on_sub(m, cx),
                    ClientMsg::Leave(m) => self.on_leave(m, cx),
                    ClientMsg::Pub(m) => self.on_pub(m, cx),
                    ClientMsg::Get(m) => self.on_get(m, cx),
                    ClientMsg::Set(m) => self.on_set(m, cx),
                    ClientMsg::Del(m) => self.on_del(m, cx),
                    ClientMsg::Hi(_)
                    | ClientMsg::Login(_)
                    | ClientMsg::Acc(_)
                    | ClientMsg::Note(_) => {
                        unreachable!("handled above")
                    }
                }
            }
        }
    }

    /// The per-session rate limit: one token per message from the message bucket (notes from
    /// their own). A refused message is answered `429` with its id and topic; a refused note
    /// is dropped, as invalid notes are.
    fn admit(&mut self, msg: &ClientMsg, cx: &mut SessionCx<'_>) -> bool {
        let now = cx.now;
        let is_note = matches!(msg, ClientMsg::Note(_));
        let (bucket, rate) = if is_note {
            (&mut self.note_bucket, cx.limits.note_rate)
        } else {
            (&mut self.msg_bucket, cx.limits.msg_rate)
        };
        if bucket.take(rate, now) {
            return true;
        }
        self.limited += 1;
        if !is_note {
            let id = msg.id().map(str::to_owned);
            let topic = msg.topic().map(str::to_owned);
            self.reply(
                Outcome::TooManyRequests,
                id.as_deref(),
                topic.as_deref(),
                cx,
            );
        }
        false
    }

    /// The stricter per-session bucket of password logins and account creations; `false`
    /// after answering `429`.
    fn admit_auth(&mut self, id: Option<&str>, cx: &mut SessionCx<'_>) -> bool {
        let (now, rate) = (cx.now, cx.limits.auth_rate);
        if self.auth_bucket.take(rate, now) {
            return true;
        }
        self.limited += 1;
        self.reply(Outcome::TooManyRequests, id, None, cx);
        false
    }

    fn reply(
        &self,
        outcome: Outcome,
        id: Option<&str>,
        topic: Option<&str>,
        cx: &mut SessionCx<'_>,
    ) {
        self.send(outcome.ctrl(id, topic, cx.now).msg(), cx.out);
    }

    /// Requires a prior `{hi}`; otherwise replies 409.
    fn gate_versioned(
        &self,
        id: Option<&str>,
        topic: Option<&str>,
        cx: &mut SessionCx<'_>,
    ) -> bool {
        if self.lifecycle == Lifecycle::New {
            self.reply(Outcome::CommandOutOfSequence, id, topic, cx);
            return false;
        }
        true
    }

    fn requester(&self) -> Option<Requester> {
        self.user.map(|(uid, level)| Requester {
            sid: self.sid,
            uid,
            level,
            enc: self.kind.encoding(),
        })
    }

    fn on_hi(&mut self, m: MsgHi, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        let ver_str = m.ver.as_deref().unwrap_or("");
        if self.lifecycle == Lifecycle::New {
            let ver = parse_version(ver_str);
            if ver == 0 {
                self.reply(Outcome::Malformed, id, None, cx);
                return;
            }
            if ver < MIN_VERSION {
                self.reply(Outcome::VersionNotSupported, id, None, cx);
                return;
            }
            self.ver = ver;
            self.client = self.client.with_hi(
                m.ua.as_deref().unwrap_or(""),
                m.lang.as_deref().unwrap_or(""),
                m.platf.as_deref().unwrap_or(""),
            );
            self.background = m.bkg && cx.limits.background_delay_ms > 0;
            if self.background {
                let at = cx.now.plus_ms(cx.limits.background_delay_ms);
                self.foreground_at = std::num::NonZeroU64::new(at.0);
            }
            self.lifecycle = Lifecycle::Versioned;
            let outcome = if self.kind == super::SessionKind::LongPoll {
                Outcome::Ok
            } else {
                Outcome::Created
            };
            let msg = outcome.ctrl(id, None, cx.now);
            let mut msg = msg;
            if let serde_json::Value::Object(params) = &cx.limits.hi_params {
                for (k, v) in params {
                    msg = msg.param(k, v.clone());
                }
            }
            if let Some(t) = self.kind.transport() {
                let size = cx.limits.max_message_size[t as usize];
                if size > 0 {
                    msg = msg.param("maxMessageSize", size);
                }
            }
            self.send(msg.msg(), cx.out);
            if let Some(at) = self.foreground_at() {
                cx.out.push(SessionOut::WakeAt(at));
            }
            return;
        }
        // A later {hi}: the version may not change; it updates language (and device id).
        if !ver_str.is_empty() && parse_version(ver_str) != self.ver {
            self.reply(Outcome::CommandOutOfSequence, id, None, cx);
            return;
        }
        if self.user.is_none() {
            self.reply(Outcome::AuthRequired, id, None, cx);
            return;
        }
        if let Some(lang) = m.lang {
            self.client = self.client.with_lang(&lang);
        }
        let outcome = if m.dev.is_some() || self.kind == super::SessionKind::LongPoll {
            Outcome::Ok
        } else {
            Outcome::Created
        };
        self.reply(outcome, id, None, cx);
    }

    fn on_login(&mut self, m: MsgLogin, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        if self.user.is_some() {
            self.reply(Outcome::AlreadyAuthenticated, id, None, cx);
            return;
        }
        if self.auth_pending {
            self.reply(Outcome::CommandOutOfSequence, id, None, cx);
            return;
        }
        let scheme = m.scheme.as_deref().unwrap_or("").to_ascii_lowercase();
        // Invalid base64 makes the whole frame malformed; a missing secret is only an error for
        // the schemes that need one, so an unknown scheme is reported as such.
        let secret = match m.secret.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match decode_secret(Some(s)) {
                Some(secret) => Some(secret),
                None => return self.reply(Outcome::Malformed, id, None, cx),
            },
        };
        match scheme.as_str() {
            "basic" | "token" => {
                let Some(secret) = secret else {
                    return self.reply(Outcome::Malformed, id, None, cx);
                };
                // Tokens are 256-bit HMACs checked without bcrypt: nothing to guess or burn.
                if scheme == "basic" && !self.admit_auth(id, cx) {
                    return;
                }
                self.auth_pending = true;
                cx.out.push(SessionOut::Login {
                    id: m.id,
                    scheme,
                    secret,
                });
            }
            "anonymous" | "reset" => self.reply(Outcome::NotImplemented, id, None, cx),
            _ => self.reply(Outcome::UnknownAuthScheme, id, None, cx),
        }
    }

    fn on_acc(&mut self, m: MsgAcc, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        let user = m.user.as_deref().unwrap_or("");
        if !user.starts_with("new") {
            return self.on_acc_update(m, cx);
        }
        if m.login && self.user.is_some() {
            self.reply(Outcome::AlreadyAuthenticated, id, None, cx);
            return;
        }
        if self.auth_pending {
            self.reply(Outcome::CommandOutOfSequence, id, None, cx);
            return;
        }
        let scheme = m.scheme.as_deref().unwrap_or("").to_ascii_lowercase();
        let secret = match scheme.as_str() {
            "basic" => match decode_secret(m.secret.as_deref()) {
                Some(secret) => secret,
                None => return self.reply(Outcome::Malformed, id, None, cx),
            },
            // Anonymous accounts have no secret: the token issued at creation is the way back.
            "anonymous" => Vec::new(),
            _ => return self.reply(Outcome::Malformed, id, None, cx),
        };
        if !self.admit_auth(id, cx) {
            return;
        }
        let creds = m
            .cred
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| {
                let val = match c.val? {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (!c.meth.is_empty() && !val.is_empty()).then_some((c.meth, val))
            })
            .collect();
        let (public, private, auth_defacs, anon_defacs) = match m.desc {
            Some(d) => {
                let (auth, anon) = d.defacs.map(|a| (a.auth, a.anon)).unwrap_or_default();
                (d.public, d.private, auth, anon)
            }
            None => (None, None, None, None),
        };
        self.auth_pending = m.login;
        cx.out
            .push(SessionOut::CreateAccount(super::AccountRequest {
                id: m.id,
                scheme,
                secret,
                login: m.login,
                tags: m.tags.unwrap_or_default(),
                creds,
                public,
                private,
                auth_defacs,
                anon_defacs,
            }));
    }

    /// Expands a client topic name into its routing name. `Err` is the reply to send.
    fn expand(&self, name: &str, for_sub: bool, entropy: u64) -> Result<Expanded, Outcome> {
        let Some((uid, _)) = self.user else {
            return Err(Outcome::AuthRequired);
        };
        let plain = |routing: String| {
            Ok(Expanded {
                routing,
                create: None,
            })
        };
        match name {
            "" => Err(Outcome::Malformed),
            "me" => plain(me_topic(uid)),
            "fnd" => plain(uid.prefixed("fnd")),
            "slf" => plain(uid.prefixed("slf")),
            _ if name.starts_with("usr") => match UserId::parse_usr(name) {
                None => Err(Outcome::Malformed),
                Some(peer) if peer == uid => Err(Outcome::PermissionDenied),
                Some(peer) => plain(p2p_topic(uid, peer)),
            },
            _ if for_sub && (name.starts_with("new") || name.starts_with("nch")) => {
                let routing = format!("grp{}", random_body(entropy.to_le_bytes()));
                let create = CreateSpec {
                    tmpname: name.to_owned(),
                    is_chan: name.starts_with("nch"),
                };
                Ok(Expanded {
                    routing,
                    create: Some(create),
                })
            }
            _ if name.starts_with("chn") => plain(format!("grp{}", &name[3..])),
            _ => plain(name.to_owned()),
        }
    }

    fn on_sub(&mut self, m: MsgSub, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        let ex = match self.expand(&m.topic, true, cx.entropy) {
            Ok(ex) => ex,
            Err(outcome) => return self.reply(outcome, id, Some(&m.topic), cx),
        };
        if self.subs.contains_key(ex.routing.as_str()) {
            return self.reply(Outcome::AlreadySubscribed, id, Some(&m.topic), cx);
        }
        if self.subs.len() >= cx.limits.max_subscriptions {
            return self.reply(Outcome::PolicyViolation, id, Some(&m.topic), cx);
        }
        if let Some(set) = &m.set {
            if set
                .sub
                .as_ref()
                .and_then(|s| s.user.as_deref())
                .is_some_and(|u| !u.is_empty())
            {
                return self.reply(Outcome::Malformed, id, Some(&m.topic), cx);
            }
        }
        if let Some(get) = &m.get {
            if !get.what.is_empty() && what::parse(&get.what) == 0 {
                return self.reply(Outcome::Malformed, id, Some(&m.topic), cx);
            }
        }
        let Some(req) = self.requester() else { return };
        self.subs
            .insert(ex.routing.as_str().into(), SubState::Joining);
        cx.out.push(SessionOut::Route {
            topic: ex.routing,
            req: TopicRequest::Join {
                hdr: ReqHead {
                    req,
                    id: m.id,
                    as_seen: m.topic,
                },
                create: ex.create,
                set: m.set.map(Box::new),
                get: m.get.map(Box::new),
                ua: self.client.ua().to_owned(),
                bkg: self.background,
            },
        });
    }

    fn on_leave(&mut self, m: MsgLeave, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        let ex = match self.expand(&m.topic, false, 0) {
            Ok(ex) => ex,
            Err(outcome) => return self.reply(outcome, id, Some(&m.topic), cx),
        };
        if m.unsub && (m.topic == "me" || m.topic == "fnd") {
            return self.reply(Outcome::PermissionDenied, id, Some(&m.topic), cx);
        }
        if self.subs.get(ex.routing.as_str()) != Some(&SubState::Attached) {
            let outcome = if m.unsub {
                Outcome::AttachFirst
            } else {
                Outcome::NotJoined
            };
            return self.reply(outcome, id, Some(&m.topic), cx);
        }
        let Some(req) = self.requester() else { return };
        cx.out.push(SessionOut::Route {
            topic: ex.routing,
            req: TopicRequest::Leave {
                hdr: ReqHead {
                    req,
                    id: m.id,
                    as_seen: m.topic,
                },
                unsub: m.unsub,
            },
        });
    }

    fn on_pub(&mut self, m: MsgPub, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        let ex = match self.expand(&m.topic, false, 0) {
            Ok(ex) => ex,
            Err(outcome) => return self.reply(outcome, id, Some(&m.topic), cx),
        };
        // `sys` takes messages from anyone without a subscription.
        if ex.routing != "sys" && self.subs.get(ex.routing.as_str()) != Some(&SubState::Attached) {
            return self.reply(Outcome::AttachFirst, id, Some(&m.topic), cx);
        }
        let Some(content) = m.content else {
            return self.reply(Outcome::Malformed, id, Some(&m.topic), cx);
        };
        let Some(req) = self.requester() else { return };
        cx.out.push(SessionOut::Route {
            topic: ex.routing,
            req: TopicRequest::Publish {
                hdr: ReqHead {
                    req,
                    id: m.id,
                    as_seen: m.topic,
                },
                noecho: m.noecho,
                head: m.head,
                content,
            },
        });
    }

    fn on_get(&mut self, m: MsgGet, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        if what::parse(&m.what) == 0 {
            return self.reply(Outcome::Malformed, id, Some(&m.topic), cx);
        }
        let ex = match self.expand(&m.topic, false, 0) {
            Ok(ex) => ex,
            Err(outcome) => return self.reply(outcome, id, Some(&m.topic), cx),
        };
        // Not attached: the topic answers the limited desc/sub query the reference allows.
        let Some(req) = self.requester() else { return };
        let topic = m.topic.clone();
        let id_owned = m.id.clone();
        cx.out.push(SessionOut::Route {
            topic: ex.routing,
            req: TopicRequest::Get {
                hdr: ReqHead {
                    req,
                    id: id_owned,
                    as_seen: topic,
                },
                query: Box::new(m.into_query()),
            },
        });
    }

    fn on_note(&mut self, m: MsgNote, cx: &mut SessionCx<'_>) {
        let Ok(ex) = self.expand(&m.topic, false, 0) else {
            return;
        };
        let valid = match m.what.as_str() {
            "kp" | "kpa" | "kpv" => m.seq == 0,
            "read" | "recv" => m.seq > 0,
            "data" => m.payload.is_some(),
            _ => false,
        };
        if !valid {
            // Invalid notes are dropped silently, as the reference server does.
            return;
        }
        // Not attached: a `recv` still goes to the topic (a client that fetched messages after
        // a push or a `{pres msg}` and detached reports them delivered); the topic drops it
        // silently unless the user is a member with R. Anything else must attach first.
        if self.subs.get(ex.routing.as_str()) != Some(&SubState::Attached) && m.what != "recv" {
            let topic = m.topic.clone();
            self.send(
                Outcome::AttachFirst.ctrl(None, Some(&topic), cx.now).msg(),
                cx.out,
            );
            return;
        }
        let Some(req) = self.requester() else { return };
        cx.out.push(SessionOut::Route {
            topic: ex.routing,
            req: TopicRequest::Note {
                hdr: ReqHead {
                    req,
                    id: None,
                    as_seen: m.topic,
                },
                what: m.what,
                seq: m.seq as u64,
                event: m.event,
                payload: m.payload,
            },
        });
    }
}

impl Session {
    fn on_set(&mut self, m: MsgSet, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        if m.desc.is_none()
            && m.sub.is_none()
            && m.tags.is_none()
            && m.cred.is_none()
            && m.aux.is_none()
        {
            return self.reply(Outcome::Malformed, id, Some(&m.topic), cx);
        }
        let ex = match self.expand(&m.topic, false, 0) {
            Ok(ex) => ex,
            Err(outcome) => return self.reply(outcome, id, Some(&m.topic), cx),
        };
        let Some(req) = self.requester() else { return };
        let (id, as_seen) = (m.id.clone(), m.topic.clone());
        cx.out.push(SessionOut::Route {
            topic: ex.routing,
            req: TopicRequest::Set {
                hdr: ReqHead { req, id, as_seen },
                query: Box::new(m.into_query()),
            },
        });
    }

    fn on_del(&mut self, m: MsgDel, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        let what = match m.what.as_str() {
            "" | "msg" => {
                let ranges = m.delseq.unwrap_or_default();
                if ranges.is_empty() {
                    return self.reply(Outcome::Malformed, id, Some(&m.topic), cx);
                }
                DelWhat::Msg {
                    ranges,
                    hard: m.hard,
                }
            }
            "topic" => DelWhat::Topic { hard: m.hard },
            "sub" => match m.user.filter(|u| !u.is_empty()) {
                Some(user) => DelWhat::Sub { user },
                None => return self.reply(Outcome::Malformed, id, Some(&m.topic), cx),
            },
            "cred" => {
                if m.topic != "me" {
                    return self.reply(Outcome::PermissionDenied, id, Some(&m.topic), cx);
                }
                match m.cred {
                    Some(c) if !c.meth.is_empty() && c.val.is_some() => DelWhat::Cred(Box::new(c)),
                    _ => return self.reply(Outcome::Malformed, id, Some(&m.topic), cx),
                }
            }
            "user" => {
                let Some((uid, level)) = self.user else {
                    return;
                };
                let target = match m.user.as_deref().filter(|u| !u.is_empty()) {
                    None => uid,
                    Some(u) => match UserId::parse_usr(u) {
                        Some(t) if t == uid => t,
                        Some(t) if level == AuthLevel::Root => t,
                        Some(_) => {
                            return self.reply(Outcome::PermissionDenied, id, None, cx);
                        }
                        None => return self.reply(Outcome::Malformed, id, None, cx),
                    },
                };
                cx.out.push(SessionOut::Account(AccountChange {
                    id: m.id,
                    actor: (uid, level),
                    target,
                    what: AccountWhat::Delete,
                }));
                return;
            }
            _ => return self.reply(Outcome::Malformed, id, Some(&m.topic), cx),
        };
        let ex = match self.expand(&m.topic, false, 0) {
            Ok(ex) => ex,
            Err(outcome) => return self.reply(outcome, id, Some(&m.topic), cx),
        };
        let Some(req) = self.requester() else { return };
        cx.out.push(SessionOut::Route {
            topic: ex.routing,
            req: TopicRequest::Del {
                hdr: ReqHead {
                    req,
                    id: m.id,
                    as_seen: m.topic,
                },
                what,
            },
        });
    }

    /// `{acc}` on an existing account: change the secret, or (root) the account state.
    fn on_acc_update(&mut self, m: MsgAcc, cx: &mut SessionCx<'_>) {
        let id = m.id.as_deref();
        let Some((uid, level)) = self.user else {
            // Unauthenticated updates need `tmpscheme` (password reset), not supported.
            let outcome = if m.tmpscheme.is_some() {
                Outcome::NotImplemented
            } else {
                Outcome::PermissionDenied
            };
            return self.reply(outcome, id, None, cx);
        };
        let target = match m.user.as_deref().filter(|u| !u.is_empty()) {
            None => uid,
            Some(u) => match UserId::parse_usr(u) {
                Some(t) if t == uid => t,
                Some(t) if level == AuthLevel::Root => t,
                Some(_) => return self.reply(Outcome::PermissionDenied, id, None, cx),
                None => return self.reply(Outcome::Malformed, id, None, cx),
            },
        };
        let what = if let Some(scheme) = m.scheme.as_deref().filter(|s| !s.is_empty()) {
            let scheme = scheme.to_ascii_lowercase();
            match scheme.as_str() {
                "basic" => match decode_secret(m.secret.as_deref()) {
                    Some(secret) => AccountWhat::Secret { scheme, secret },
                    None => return self.reply(Outcome::Malformed, id, None, cx),
                },
                // Nothing to change for an anonymous account.
                "anonymous" => return self.reply(Outcome::Ok, id, None, cx),
                "token" => return self.reply(Outcome::NotImplemented, id, None, cx),
                _ => return self.reply(Outcome::Malformed, id, None, cx),
            }
        } else if let Some(status) = m.status.as_deref().filter(|s| !s.is_empty()) {
            if level != AuthLevel::Root {
                return self.reply(Outcome::PermissionDenied, id, None, cx);
            }
            match status {
                "ok" => AccountWhat::State { suspend: false },
                "susp" | "suspended" => AccountWhat::State { suspend: true },
                _ => return self.reply(Outcome::Malformed, id, None, cx),
            }
        } else {
            return self.reply(Outcome::Malformed, id, None, cx);
        };
        cx.out.push(SessionOut::Account(AccountChange {
            id: m.id,
            actor: (uid, level),
            target,
            what,
        }));
    }
}

/// Decodes a standard-base64 secret (padding optional).
pub(crate) fn decode_secret(s: Option<&str>) -> Option<Vec<u8>> {
    let s = s?.trim();
    if s.is_empty() {
        return None;
    }
    STANDARD.decode(s).ok().or_else(|| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(s.trim_end_matches('='))
            .ok()
    })
}
