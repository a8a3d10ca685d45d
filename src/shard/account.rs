//! Login and account creation, carried out for sessions of this shard: password hashing on
//! the hash pool (never on the executor), records written durably through the store writer,
//! tokens minted and verified inline (a few µs of HMAC).
//!
//! The session state machine decided *that* a login or creation happens; this file decides
//! how, and answers the session with the reference's ctrl codes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::access::{AccessMode, AuthLevel, DefaultAccess};
use crate::auth::basic::{self, BasicPolicy};
use crate::auth::hasher::{HashJob, HashOutcome};
use crate::auth::AuthError;
use crate::ids::{SessionId, UnixMillis, UserId};
use crate::proto::time::rfc3339;
use crate::proto::{Frame, Outcome};
use crate::session::{AccountChange, AccountRequest, AccountWhat};
use crate::shard::{now, Local, ShardCtx, StoreWaiter};
use crate::store::{AuthRecord, CredRecord, StoreError, UserRecord, UserState, WriteOp};

/// What waits for a password hash job.
pub(crate) enum HashWaiter {
    /// A basic login: the password matched the stored hash or not.
    Login {
        sid: SessionId,
        id: Option<String>,
        uid: UserId,
        level: AuthLevel,
    },
    /// A new account: the hash to store.
    Create(Box<CreateWaiter>),
    /// A password change: the new hash for the auth record.
    Rehash(Box<RehashWaiter>),
}

/// A password (and maybe login) change waiting for its hash.
pub(crate) struct RehashWaiter {
    waiter: ChangeWaiter,
    /// The auth record with the new unique key (and old secret).
    rec: AuthRecord,
    /// The old unique key when the login changes.
    old_unique: Option<String>,
}

/// A new account on its way to the store.
pub(crate) struct CreateWaiter {
    sid: SessionId,
    id: Option<String>,
    login: bool,
    user: UserRecord,
    unique: String,
    hash: Vec<u8>,
    scheme: &'static str,
    level: AuthLevel,
}

/// An account change waiting for its write.
pub(crate) struct ChangeWaiter {
    sid: SessionId,
    id: Option<String>,
    /// Sessions of this user to evict once durable (suspension, deletion).
    evict: Option<UserId>,
    /// The requesting session ends too (it deleted its own account).
    end_self: bool,
    /// Loaded topics to tell that a participant's state changed (read-only or not).
    refresh: Vec<String>,
}

impl ShardCtx {
    fn policy(&self) -> BasicPolicy {
        BasicPolicy {
            min_login_len: self.cfg.auth.min_login_len,
            min_password_len: self.cfg.auth.min_password_len,
            ..BasicPolicy::default()
        }
    }

    /// Replies to a session of this shard and marks its auth attempt finished.
    fn auth_reply(
        &mut self,
        sid: SessionId,
        frame: Frame,
        authenticated: Option<(UserId, AuthLevel)>,
    ) {
        if let Some(slot) = self.sessions.get_mut(&sid) {
            match authenticated {
                Some((uid, level)) => slot.session.authenticated(uid, level),
                None => slot.session.auth_finished(),
            }
        }
        self.push_frame(sid, frame);
    }

    fn auth_fail(&mut self, sid: SessionId, id: Option<&str>, outcome: Outcome) {
        let frame = Frame::new(outcome.ctrl(id, None, now()).msg());
        self.auth_reply(sid, frame, None);
    }

    fn submit_hash(&mut self, job: HashJob, waiter: HashWaiter) -> Result<(), AuthError> {
        let ticket = self.ticket();
        let service = self.service.clone();
        self.hasher.submit(
            job,
            Box::new(move |outcome| {
                let _ = service.send(Local::HashDone { ticket, outcome });
            }),
        )?;
        self.hash_waiters.insert(ticket, waiter);
        Ok(())
    }

    /// `{login}` with `basic` or `token`.
    pub(crate) fn login(
        &mut self,
        sid: SessionId,
        id: Option<String>,
        scheme: String,
        secret: Vec<u8>,
    ) {
        if scheme == "token" {
            match self.tokens.verify(&secret, now()) {
                Ok(claims) if !claims.no_login() => {
                    self.finish_login(sid, id, claims.uid, claims.level)
                }
                Ok(_) => self.auth_fail(sid, id.as_deref(), Outcome::AuthFailed),
                Err(AuthError::Malformed) => self.auth_fail(sid, id.as_deref(), Outcome::Malformed),
                Err(_) => self.auth_fail(sid, id.as_deref(), Outcome::AuthFailed),
            }
            return;
        }
        let (login, password) = match basic::parse_secret(&secret) {
            Ok(v) => v,
            Err(_) => return self.auth_fail(sid, id.as_deref(), Outcome::Malformed),
        };
        let rec = match self.store.auth(&basic::unique_key(&login)) {
            Ok(r) => r,
            Err(e) => {
                log::error!("login lookup failed: {e}");
                return self.auth_fail(sid, id.as_deref(), Outcome::InternalError);
            }
        };
        let Some(rec) = rec else {
            return self.auth_fail(sid, id.as_deref(), Outcome::AuthFailed);
        };
        let level = if self.cfg.auth.root_users.contains(&login) {
            AuthLevel::Root
        } else {
            rec.level
        };
        let waiter = HashWaiter::Login {
            sid,
            id: id.clone(),
            uid: rec.user,
            level,
        };
        if self
            .submit_hash(
                HashJob::Verify {
                    password,
                    hash: rec.secret,
                },
                waiter,
            )
            .is_err()
        {
            self.auth_fail(sid, id.as_deref(), Outcome::ServiceUnavailable);
        }
    }

    /// Completes a login once the credentials are good: checks the account and issues a token.
    fn finish_login(&mut self, sid: SessionId, id: Option<String>, uid: UserId, level: AuthLevel) {
        let user = match self.store.user(uid) {
            Ok(u) => u,
            Err(e) => {
                log::error!("login of {uid}: user read failed: {e}");
                return self.auth_fail(sid, id.as_deref(), Outcome::InternalError);
            }
        };
        match user {
            None => return self.auth_fail(sid, id.as_deref(), Outcome::UserNotFound),
            Some(u) if u.state != UserState::Ok => {
                return self.auth_fail(sid, id.as_deref(), Outcome::PermissionDenied)
            }
            Some(_) => {}
        }
        let now = now();
        let (token, expires) = self.tokens.mint(uid, level, now);
        let msg = Outcome::Ok
            .ctrl(id.as_deref(), None, now)
            .param("user", uid.usr())
            .param("authlvl", level.as_str())
            .param("token", STANDARD.encode(token))
            .param("expires", rfc3339(expires))
            .msg();
        self.auth_reply(sid, Frame::new(msg), Some((uid, level)));
    }

    /// `{acc user:"new…" scheme:"basic"}`.
    pub(crate) fn create_account(&mut self, sid: SessionId, req: AccountRequest) {
        let id = req.id.clone();
        let fail = |ctx: &mut ShardCtx, outcome: Outcome, what: Option<&str>| {
            let mut c = outcome.ctrl(id.as_deref(), None, now());
            if let Some(w) = what {
                c = c.param("what", w);
            }
            let frame = Frame::new(c.msg());
            ctx.auth_reply(sid, frame, None);
        };
        let anonymous = req.scheme == "anonymous";
        let (login, password, unique) = if anonymous {
            let unique = format!("anonymous:{:016x}", rand::random::<u64>());
            (String::new(), String::new(), unique)
        } else {
            let (login, password) = match basic::parse_secret(&req.secret) {
                Ok(v) => v,
                Err(_) => return fail(self, Outcome::Malformed, None),
            };
            let policy = self.policy();
            if policy.check_login(&login).is_err() || policy.check_password(&password).is_err() {
                return fail(self, Outcome::PolicyViolation, Some("auth"));
            }
            let unique = basic::unique_key(&login);
            (login, password, unique)
        };
        match self.store.auth(&unique) {
            Ok(Some(_)) => return fail(self, Outcome::DuplicateCredential, Some("auth")),
            Ok(None) => {}
            Err(e) => {
                log::error!("account creation lookup failed: {e}");
                return fail(self, Outcome::InternalError, None);
            }
        }
        let mut access = DefaultAccess {
            auth: AccessMode::USER_AUTH_DEFAULT,
            anon: AccessMode::NONE,
        };
        for (text, slot) in [
            (&req.auth_defacs, &mut access.auth),
            (&req.anon_defacs, &mut access.anon),
        ] {
            if let Some(text) = text {
                match AccessMode::parse(text) {
                    // User defaults are masked to the P2P mode; A is forced unless N.
                    Ok(Some(m)) => {
                        let masked = m.and(AccessMode::USER_AUTH_DEFAULT);
                        *slot = if masked.0 == 0 {
                            masked
                        } else {
                            masked.with(AccessMode::APPROVE)
                        };
                    }
                    Ok(None) => {}
                    Err(_) => return fail(self, Outcome::Malformed, None),
                }
            }
        }
        let now = now();
        let restricted = &self.cfg.topic.restricted_tags;
        let mut tags = crate::topic::tags::normalize(req.tags.clone(), usize::MAX);
        if tags
            .iter()
            .any(|t| crate::topic::tags::is_restricted(t, restricted))
        {
            return fail(self, Outcome::PermissionDenied, Some("tags"));
        }
        // The login and confirmed credentials are searchable, in namespaces users cannot edit.
        if !login.is_empty() {
            tags.push(format!("basic:{login}"));
        }
        let mut creds = Vec::new();
        for (method, value) in &req.creds {
            let (method, value) = (method.trim().to_lowercase(), value.trim().to_lowercase());
            if !matches!(method.as_str(), "email" | "tel") || value.is_empty() {
                return fail(self, Outcome::Malformed, Some(method.as_str()));
            }
            // No validator is configured: credentials are confirmed at once.
            tags.push(format!("{method}:{value}"));
            creds.push(CredRecord {
                method,
                value,
                done: true,
            });
        }
        // A confirmed credential belongs to one account: `email:`/`tel:` tags are unique.
        for c in &creds {
            let tag = format!("{}:{}", c.method, c.value);
            match self.store.find_tags(std::slice::from_ref(&tag), 1) {
                Ok(found) if !found.is_empty() => {
                    return fail(self, Outcome::DuplicateCredential, Some(c.method.as_str()))
                }
                Ok(_) => {}
                Err(e) => {
                    log::error!("credential lookup failed: {e}");
                    return fail(self, Outcome::InternalError, None);
                }
            }
        }
        let mut tags = crate::topic::tags::normalize(tags, usize::MAX);
        tags.truncate(self.cfg.topic.max_tag_count);
        let level = if anonymous {
            AuthLevel::Anon
        } else if self.cfg.auth.root_users.contains(&login) {
            AuthLevel::Root
        } else {
            AuthLevel::Auth
        };
        let user = UserRecord {
            id: UserId(0),
            created: now,
            updated: now,
            state: UserState::Ok,
            access,
            public: req.public.map(|r| r.get().to_owned()),
            trusted: None,
            tags,
            last_seen: None,
            creds,
        };
        let waiter = CreateWaiter {
            sid,
            id: req.id,
            login: req.login,
            user,
            unique,
            hash: Vec::new(),
            scheme: if anonymous { "anonymous" } else { "basic" },
            level,
        };
        if anonymous {
            // Nothing to hash: the token issued at creation is the only way back in.
            return self.store_account(Box::new(waiter));
        }
        if self
            .submit_hash(
                HashJob::Hash {
                    password,
                    cost: self.cfg.auth.bcrypt_cost,
                },
                HashWaiter::Create(Box::new(waiter)),
            )
            .is_err()
        {
            fail(self, Outcome::ServiceUnavailable, None);
        }
    }

    /// Writes the records of a new account.
    fn store_account(&mut self, mut w: Box<CreateWaiter>) {
        w.user.id = self.fresh_uid();
        let batch = vec![
            WriteOp::CreateUser(w.user.clone()),
            WriteOp::CreateAuth(AuthRecord {
                unique: w.unique.clone(),
                user: w.user.id,
                scheme: w.scheme.into(),
                level: w.level,
                secret: w.hash.clone(),
                expires: None,
            }),
        ];
        let ticket = self.ticket();
        let (sid, id) = (w.sid, w.id.clone());
        self.store_waiters.insert(ticket, StoreWaiter::Account(w));
        if let Err(e) = self.submit(ticket, batch) {
            self.store_waiters.remove(&ticket);
            log::error!("account creation refused by the store: {e}");
            self.auth_fail(sid, id.as_deref(), Outcome::ServiceUnavailable);
        }
    }

    /// A hash job finished.
    pub(crate) fn hashed(&mut self, waiter: HashWaiter, outcome: HashOutcome) {
        match (waiter, outcome) {
            (
                HashWaiter::Login {
                    sid,
                    id,
                    uid,
                    level,
                },
                HashOutcome::Verified(ok),
            ) => {
                if ok {
                    self.finish_login(sid, id, uid, level);
                } else {
                    self.auth_fail(sid, id.as_deref(), Outcome::AuthFailed);
                }
            }
            (HashWaiter::Create(mut w), HashOutcome::Hashed(Ok(hash))) => {
                w.hash = hash;
                self.store_account(w);
            }
            (HashWaiter::Rehash(w), HashOutcome::Hashed(Ok(hash))) => {
                let mut batch = Vec::new();
                let mut rec = w.rec;
                if let Some(old) = w.old_unique {
                    batch.push(WriteOp::DeleteAuth { unique: old });
                    batch.push(WriteOp::CreateAuth(AuthRecord {
                        secret: hash,
                        ..rec
                    }));
                } else {
                    rec.secret = hash;
                    batch.push(WriteOp::PutAuth(rec));
                }
                self.submit_change(w.waiter, batch);
            }
            (HashWaiter::Rehash(w), _) => {
                self.auth_fail(w.waiter.sid, w.waiter.id.as_deref(), Outcome::InternalError)
            }
            (HashWaiter::Create(w), _) => {
                self.auth_fail(w.sid, w.id.as_deref(), Outcome::InternalError)
            }
            (HashWaiter::Login { sid, id, .. }, _) => {
                self.auth_fail(sid, id.as_deref(), Outcome::InternalError)
            }
        }
    }

    /// A user id not in use (random, so ids reveal nothing about sign-up order).
    fn fresh_uid(&self) -> UserId {
        loop {
            let uid = UserId(rand::random::<u64>() | 1);
            if matches!(self.store.user(uid), Ok(None)) {
                return uid;
            }
        }
    }

    /// The records of a new account are durable (or not).
    pub(crate) fn account_stored(&mut self, w: CreateWaiter, res: Result<(), StoreError>) {
        match res {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                let frame = Frame::new(
                    Outcome::DuplicateCredential
                        .ctrl(w.id.as_deref(), None, now())
                        .param("what", "auth")
                        .msg(),
                );
                return self.auth_reply(w.sid, frame, None);
            }
            Err(e) => {
                log::error!("account creation failed: {e}");
                return self.auth_fail(w.sid, w.id.as_deref(), Outcome::InternalError);
            }
        }
        let now = now();
        let uid = w.user.id;
        let desc = desc_param(&w.user);
        let level = w.level;
        if w.login || w.scheme == "anonymous" {
            let (token, expires) = self.tokens.mint(uid, level, now);
            let msg = Outcome::Ok
                .ctrl(w.id.as_deref(), None, now)
                .param("user", uid.usr())
                .param("authlvl", level.as_str())
                .param("token", STANDARD.encode(token))
                .param("expires", rfc3339(expires))
                .param("desc", desc)
                .msg();
            let auth = w.login.then_some((uid, level));
            self.auth_reply(w.sid, Frame::new(msg), auth);
        } else {
            let msg = Outcome::Created
                .ctrl(w.id.as_deref(), None, now)
                .param("user", uid.usr())
                .param("authlvl", level.as_str())
                .param("desc", desc)
                .msg();
            // Creating an account without login leaves this session as it was.
            self.auth_reply(w.sid, Frame::new(msg), None);
        }
    }
}

impl ShardCtx {
    /// `{acc}` updates and `{del user}`.
    pub(crate) fn account_change(&mut self, sid: SessionId, c: AccountChange) {
        let id = c.id.clone();
        let fail = |ctx: &mut ShardCtx, o: Outcome| {
            let frame = Frame::new(o.ctrl(id.as_deref(), None, now()).msg());
            ctx.push_frame(sid, frame);
        };
        let user = match self.store.user(c.target) {
            Ok(Some(u)) if u.state != UserState::Deleted => u,
            Ok(_) => return fail(self, Outcome::UserNotFound),
            Err(e) => {
                log::error!("account change: user read failed: {e}");
                return fail(self, Outcome::InternalError);
            }
        };
        let waiter = ChangeWaiter {
            sid,
            id: c.id.clone(),
            evict: None,
            end_self: false,
            refresh: Vec::new(),
        };
        match c.what {
            AccountWhat::Secret { secret, .. } => {
                let Some((login, password)) = secret
                    .iter()
                    .position(|b| *b == b':')
                    .map(|i| (&secret[..i], &secret[i + 1..]))
                    .and_then(|(l, p)| {
                        Some((std::str::from_utf8(l).ok()?, std::str::from_utf8(p).ok()?))
                    })
                else {
                    return fail(self, Outcome::Malformed);
                };
                let auths = match self.store.auths_of_user(c.target) {
                    Ok(a) => a,
                    Err(_) => return fail(self, Outcome::InternalError),
                };
                let Some(current) = auths.into_iter().find(|a| a.scheme == "basic") else {
                    return fail(self, Outcome::NotFound);
                };
                let policy = self.policy();
                let login = login.trim().to_lowercase();
                if policy.check_password(password).is_err()
                    || (!login.is_empty() && policy.check_login(&login).is_err())
                {
                    return fail(self, Outcome::PolicyViolation);
                }
                let mut rec = current.clone();
                let mut old_unique = None;
                if !login.is_empty() && basic::unique_key(&login) != current.unique {
                    let unique = basic::unique_key(&login);
                    if matches!(self.store.auth(&unique), Ok(Some(_))) {
                        return fail(self, Outcome::DuplicateCredential);
                    }
                    old_unique = Some(current.unique.clone());
                    rec.unique = unique;
                }
                let job = HashJob::Hash {
                    password: password.to_owned(),
                    cost: self.cfg.auth.bcrypt_cost,
                };
                let w = RehashWaiter {
                    waiter,
                    rec,
                    old_unique,
                };
                if self
                    .submit_hash(job, HashWaiter::Rehash(Box::new(w)))
                    .is_err()
                {
                    fail(self, Outcome::ServiceUnavailable);
                }
            }
            AccountWhat::State { suspend } => {
                let state = if suspend {
                    UserState::Suspended
                } else {
                    UserState::Ok
                };
                if user.state == state {
                    return fail(self, Outcome::NotModified);
                }
                let mut user = user;
                user.state = state;
                user.updated = now();
                // P2P conversations and owned groups become read-only (or writable again).
                let refresh = self
                    .store
                    .subs_of_user(c.target)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| {
                        matches!(
                            crate::topic::TopicKind::of(&s.topic),
                            Some(crate::topic::TopicKind::P2p(..))
                        ) || s.given.has(AccessMode::OWNER)
                    })
                    .map(|s| s.topic)
                    .collect();
                let w = ChangeWaiter {
                    evict: suspend.then_some(c.target),
                    refresh,
                    ..waiter
                };
                self.submit_change(w, vec![WriteOp::PutUser(user)]);
            }
            AccountWhat::Delete => {
                let auths = match self.store.auths_of_user(c.target) {
                    Ok(a) => a,
                    Err(_) => return fail(self, Outcome::InternalError),
                };
                let mut user = user;
                user.state = UserState::Deleted;
                user.updated = now();
                user.tags.clear();
                let mut batch = vec![WriteOp::PutUser(user)];
                batch.extend(
                    auths
                        .into_iter()
                        .map(|a| WriteOp::DeleteAuth { unique: a.unique }),
                );
                // Contacts learn the user is gone.
                if let Ok(subs) = self.store.subs_of_user(c.target) {
                    for s in subs.iter().filter(|s| s.deleted.is_none()) {
                        if crate::topic::TopicKind::of(&s.topic)
                            == Some(crate::topic::TopicKind::Group)
                            && s.given.has(AccessMode::OWNER)
                        {
                            // Groups the user owns are deleted with the account (members get
                            // `pres gone`); the topic does it on its home shard.
                            let req = crate::routing::Requester {
                                sid,
                                uid: c.target,
                                level: AuthLevel::Auth,
                                enc: crate::proto::Encoding::Json,
                            };
                            self.route(
                                s.topic.clone(),
                                crate::routing::TopicRequest::Del {
                                    req,
                                    id: None,
                                    as_seen: s.topic.clone(),
                                    what: crate::routing::DelWhat::Topic { hard: true },
                                },
                            );
                        }
                        if let Some(crate::topic::TopicKind::P2p(a, b)) =
                            crate::topic::TopicKind::of(&s.topic)
                        {
                            let peer = if a == c.target { b } else { a };
                            let frame = Frame::new(crate::proto::ServerMsg::Pres(
                                crate::proto::server::Pres {
                                    topic: "me".into(),
                                    src: Some(c.target.usr()),
                                    what: "gone",
                                    ..Default::default()
                                },
                            ));
                            self.user_pres(frame, vec![(peer, Vec::new())]);
                        }
                    }
                }
                let w = ChangeWaiter {
                    evict: Some(c.target),
                    end_self: c.target == c.actor.0,
                    ..waiter
                };
                self.submit_change(w, batch);
            }
        }
    }

    fn submit_change(&mut self, w: ChangeWaiter, batch: Vec<WriteOp>) {
        let ticket = self.ticket();
        let (sid, id) = (w.sid, w.id.clone());
        self.store_waiters.insert(ticket, StoreWaiter::Change(w));
        if let Err(e) = self.submit(ticket, batch) {
            self.store_waiters.remove(&ticket);
            log::error!("account change refused by the store: {e}");
            let frame = Frame::new(
                Outcome::ServiceUnavailable
                    .ctrl(id.as_deref(), None, now())
                    .msg(),
            );
            self.push_frame(sid, frame);
        }
    }

    /// An account change is durable (or failed).
    pub(crate) fn change_stored(&mut self, w: ChangeWaiter, res: Result<(), StoreError>) {
        let outcome = match res {
            Ok(()) => Outcome::Ok,
            Err(StoreError::Conflict(_)) => Outcome::DuplicateCredential,
            Err(e) => {
                log::error!("account change failed: {e}");
                Outcome::InternalError
            }
        };
        let frame = Frame::new(outcome.ctrl(w.id.as_deref(), None, now()).msg());
        self.push_frame(w.sid, frame);
        if outcome != Outcome::Ok {
            return;
        }
        if let Some(uid) = w.evict {
            self.evict_everywhere(uid, (!w.end_self).then_some(w.sid));
        }
        for topic in w.refresh {
            self.route(topic, crate::routing::TopicRequest::Refresh);
        }
    }
}

/// `params.desc` of an account creation reply.
fn desc_param(u: &UserRecord) -> Value {
    let ts = |t: UnixMillis| Value::String(rfc3339(t));
    let mut d = json!({
        "created": ts(u.created),
        "updated": ts(u.updated),
        "defacs": { "auth": u.access.auth.to_string(), "anon": u.access.anon.to_string() },
    });
    if let (Some(p), Some(obj)) = (&u.public, d.as_object_mut()) {
        obj.insert(
            "public".into(),
            serde_json::from_str(p).unwrap_or(Value::Null),
        );
    }
    d
}
