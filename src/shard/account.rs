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
use crate::proto::{encode, Outcome};
use crate::session::AccountRequest;
use crate::shard::{now, Envelope, ShardCtx, StoreWaiter};
use crate::store::{AuthRecord, StoreError, UserRecord, UserState, WriteOp};

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
}

/// A new account on its way to the store.
pub(crate) struct CreateWaiter {
    sid: SessionId,
    id: Option<String>,
    login: bool,
    user: UserRecord,
    unique: String,
    hash: Vec<u8>,
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
        frame: bytes::Bytes,
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
        let frame = encode(&outcome.ctrl(id, None, now()).msg());
        self.auth_reply(sid, frame, None);
    }

    fn submit_hash(&mut self, job: HashJob, waiter: HashWaiter) -> Result<(), AuthError> {
        let ticket = self.ticket();
        let service = self.service.clone();
        self.hasher.submit(
            job,
            Box::new(move |outcome| {
                let _ = service.send(Envelope::HashDone { ticket, outcome });
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
        let waiter = HashWaiter::Login {
            sid,
            id: id.clone(),
            uid: rec.user,
            level: rec.level,
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
        self.auth_reply(sid, encode(&msg), Some((uid, level)));
    }

    /// `{acc user:"new…" scheme:"basic"}`.
    pub(crate) fn create_account(&mut self, sid: SessionId, req: AccountRequest) {
        let id = req.id.clone();
        let fail = |ctx: &mut ShardCtx, outcome: Outcome, what: Option<&str>| {
            let mut c = outcome.ctrl(id.as_deref(), None, now());
            if let Some(w) = what {
                c = c.param("what", w);
            }
            let frame = encode(&c.msg());
            ctx.auth_reply(sid, frame, None);
        };
        let (login, password) = match basic::parse_secret(&req.secret) {
            Ok(v) => v,
            Err(_) => return fail(self, Outcome::Malformed, None),
        };
        let policy = self.policy();
        if policy.check_login(&login).is_err() || policy.check_password(&password).is_err() {
            return fail(self, Outcome::PolicyViolation, Some("auth"));
        }
        let unique = basic::unique_key(&login);
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
        let mut tags: Vec<String> = req
            .tags
            .iter()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| (2..=96).contains(&t.chars().count()))
            .collect();
        tags.sort();
        tags.dedup();
        tags.truncate(self.cfg.topic.max_tag_count);
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
        };
        let waiter = CreateWaiter {
            sid,
            id: req.id,
            login: req.login,
            user,
            unique,
            hash: Vec::new(),
        };
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
                w.user.id = self.fresh_uid();
                w.hash = hash;
                let batch = vec![
                    WriteOp::CreateUser(w.user.clone()),
                    WriteOp::CreateAuth(AuthRecord {
                        unique: w.unique.clone(),
                        user: w.user.id,
                        scheme: "basic".into(),
                        level: AuthLevel::Auth,
                        secret: w.hash.clone(),
                        expires: None,
                    }),
                ];
                let ticket = self.ticket();
                let (sid, id) = (w.sid, w.id.clone());
                self.store_waiters.insert(ticket, StoreWaiter::Account(*w));
                if let Err(e) = self.submit(ticket, batch) {
                    self.store_waiters.remove(&ticket);
                    log::error!("account creation refused by the store: {e}");
                    self.auth_fail(sid, id.as_deref(), Outcome::ServiceUnavailable);
                }
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
                let frame = encode(
                    &Outcome::DuplicateCredential
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
        if w.login {
            let (token, expires) = self.tokens.mint(uid, AuthLevel::Auth, now);
            let msg = Outcome::Ok
                .ctrl(w.id.as_deref(), None, now)
                .param("user", uid.usr())
                .param("authlvl", "auth")
                .param("token", STANDARD.encode(token))
                .param("expires", rfc3339(expires))
                .param("desc", desc)
                .msg();
            self.auth_reply(w.sid, encode(&msg), Some((uid, AuthLevel::Auth)));
        } else {
            let msg = Outcome::Created
                .ctrl(w.id.as_deref(), None, now)
                .param("user", uid.usr())
                .param("authlvl", "auth")
                .param("desc", desc)
                .msg();
            // Creating an account without login leaves this session as it was.
            self.auth_reply(w.sid, encode(&msg), None);
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
