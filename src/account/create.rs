//! Account creation (`{acc user:"new…"}`, `basic` or `anonymous`): validation, the password
//! hash on the hash pool, then one write of the user and auth records, replied to only once it
//! is durable.
//!
//! Uniqueness is the write's business: the batch's preconditions refuse a login that exists
//! (`CreateAuth`, → 409 `auth`), a credential another account claimed (`ClaimCred`, → 409 with
//! its method) and a user id that exists (`CreateUser`, → the write is retried under a fresh
//! id). Credentials are confirmed at once (no validator is configured), claimed for the new
//! account in the same batch, and become `email:`/`tel:` tags.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::{cred_unique, mix, AccountCx, Accounts, Asker, AuthEffect, Done, Pending};
use crate::access::{AccessMode, AuthLevel, DefaultAccess};
use crate::auth::basic;
use crate::auth::hasher::{HashJob, HashOutcome};
use crate::ids::{SessionId, UnixMillis, UserId};
use crate::proto::time::rfc3339;
use crate::proto::Outcome;
use crate::routing::{is_restricted_tag, normalize_tags, AccountRequest};
use crate::store::{AuthRecord, CredRecord, StoreError, UserRecord, UserState, WriteOp};

/// Writes of one creation that may fail on a colliding user id before it gives up (each try
/// draws a fresh 63-bit id, so a second collision means the entropy is broken).
const MAX_UID_TRIES: u32 = 4;

/// A creation waiting for a completion.
pub(super) enum Create {
    /// The password hash.
    Hash(Box<Creation>),
    /// The write of the records.
    Write(Box<Creation>),
}

/// A new account on its way to the store.
pub(super) struct Creation {
    asker: Asker,
    /// Log the session in once created.
    login: bool,
    anonymous: bool,
    /// The record to create; its id is drawn at each write.
    user: UserRecord,
    /// The auth record's unique key (`basic:alice`, `anonymous:…`).
    unique: String,
    /// The plaintext password until it is hashed.
    password: String,
    hash: Vec<u8>,
    level: AuthLevel,
    /// Writes tried so far.
    tries: u32,
}

impl Accounts {
    /// `{acc user:"new…"}`.
    pub fn create(&mut self, sid: SessionId, req: AccountRequest, cx: &mut AccountCx<'_>) {
        let asker = Asker {
            sid,
            id: req.id.clone(),
            auth: true,
        };
        let anonymous = req.scheme == "anonymous";
        let (login, password, unique) = if anonymous {
            let unique = format!("anonymous:{:016x}", mix(cx.entropy, 2));
            (String::new(), String::new(), unique)
        } else {
            let (login, password) = match basic::parse_secret(&req.secret) {
                Ok(v) => v,
                Err(_) => return asker.ctrl(Outcome::Malformed, None, cx),
            };
            let policy = &self.rules.basic;
            if policy.check_login(&login).is_err() || policy.check_password(&password).is_err() {
                return asker.ctrl(Outcome::PolicyViolation, Some("auth"), cx);
            }
            let unique = basic::unique_key(&login);
            (login, password, unique)
        };
        let mut access = DefaultAccess {
            auth: AccessMode::USER_AUTH_DEFAULT,
            anon: AccessMode::NONE,
        };
        let (auth, anon) = (req.auth_defacs.as_deref(), req.anon_defacs.as_deref());
        let Some(given) = access.parse_over(auth, anon) else {
            return asker.ctrl(Outcome::Malformed, None, cx);
        };
        // Defaults given at sign-up are masked to the P2P mode (`JRWPA`, not the `JRWPAS`
        // a user gets when giving none); A is forced unless N (the reference's
        // `replyCreateUser`).
        for (text, m, slot) in [
            (auth, given.auth, &mut access.auth),
            (anon, given.anon, &mut access.anon),
        ] {
            if text.is_some_and(|t| !t.trim().is_empty()) {
                let masked = m.and(AccessMode::P2P);
                *slot = if masked.0 == 0 {
                    masked
                } else {
                    masked.with(AccessMode::APPROVE)
                };
            }
        }
        let restricted = &self.rules.restricted_tags;
        let mut tags = normalize_tags(req.tags, usize::MAX);
        if tags.iter().any(|t| is_restricted_tag(t, restricted)) {
            return asker.ctrl(Outcome::PermissionDenied, Some("tags"), cx);
        }
        // The login and confirmed credentials are searchable, in namespaces users cannot edit.
        if !login.is_empty() {
            tags.push(format!("basic:{login}"));
        }
        let mut creds = Vec::new();
        for (method, value) in &req.creds {
            let (method, value) = (method.trim().to_lowercase(), value.trim().to_lowercase());
            if !matches!(method.as_str(), "email" | "tel") || value.is_empty() {
                return asker.ctrl(Outcome::Malformed, Some(method.as_str()), cx);
            }
            // No validator is configured: credentials are confirmed at once.
            tags.push(format!("{method}:{value}"));
            creds.push(CredRecord {
                method,
                value,
                done: true,
            });
        }
        let mut tags = normalize_tags(tags, usize::MAX);
        tags.truncate(self.rules.max_tag_count);
        let level = if anonymous {
            AuthLevel::Anon
        } else {
            self.level_of(&login, AuthLevel::Auth)
        };
        let mut c = Box::new(Creation {
            asker,
            login: req.login,
            anonymous,
            user: UserRecord {
                id: UserId(0),
                created: cx.now,
                updated: cx.now,
                state: UserState::Ok,
                access,
                public: req.public.map(|r| r.get().to_owned()),
                trusted: None,
                tags,
                last_seen: None,
                creds,
            },
            unique,
            password,
            hash: Vec::new(),
            level,
            tries: 0,
        });
        if c.anonymous {
            // Nothing to hash: the token issued at creation is the only way back in.
            return self.write_account(c, cx);
        }
        let job = HashJob::Hash {
            password: std::mem::take(&mut c.password),
            cost: self.rules.bcrypt_cost,
        };
        self.hash(Pending::Create(Create::Hash(c)), job, cx);
    }

    pub(super) fn create_step(&mut self, step: Create, done: Done, cx: &mut AccountCx<'_>) {
        match (step, done) {
            (Create::Hash(mut c), Done::Hashed(HashOutcome::Hashed(Ok(hash)))) => {
                c.hash = hash;
                self.write_account(c, cx);
            }
            (Create::Write(c), Done::Persisted(res)) => self.account_written(c, res, cx),
            (step, Done::Refused) => step.asker().ctrl(Outcome::ServiceUnavailable, None, cx),
            // A failed hash, or a completion of another kind than the flow waits for.
            (step, _) => step.asker().ctrl(Outcome::InternalError, None, cx),
        }
    }

    /// Writes the records of a new account under a fresh user id.
    fn write_account(&mut self, mut c: Box<Creation>, cx: &mut AccountCx<'_>) {
        // Random, so ids reveal nothing about sign-up order; a taken one fails the write.
        c.user.id = UserId(mix(cx.entropy, 1) | 1);
        c.tries += 1;
        let mut batch = vec![
            WriteOp::CreateUser(c.user.clone()),
            WriteOp::CreateAuth(AuthRecord {
                unique: c.unique.clone(),
                user: c.user.id,
                scheme: if c.anonymous { "anonymous" } else { "basic" }.into(),
                level: c.level,
                secret: c.hash.clone(),
                expires: None,
            }),
        ];
        // A confirmed credential belongs to one account: the write claims it.
        batch.extend(c.user.creds.iter().map(|cr| WriteOp::ClaimCred {
            unique: cred_unique(cr),
            user: c.user.id,
        }));
        self.persist(Pending::Create(Create::Write(c)), batch, cx);
    }

    /// The records of a new account are durable (or not).
    fn account_written(
        &mut self,
        c: Box<Creation>,
        res: Result<(), StoreError>,
        cx: &mut AccountCx<'_>,
    ) {
        match res {
            Ok(()) => {}
            Err(StoreError::Conflict(msg)) if names(&msg, &c.user.id.to_string()) => {
                if c.tries < MAX_UID_TRIES {
                    return self.write_account(c, cx);
                }
                log::error!("account creation: {} user ids in a row were taken", c.tries);
                return c.asker.ctrl(Outcome::InternalError, None, cx);
            }
            Err(StoreError::Conflict(msg)) => {
                // The batch checks the login before the credentials, as the reply's `what`
                // did when both were read first.
                let what = c
                    .user
                    .creds
                    .iter()
                    .find(|cr| names(&msg, &cred_unique(cr)))
                    .map_or("auth", |cr| cr.method.as_str());
                return c.asker.ctrl(Outcome::DuplicateCredential, Some(what), cx);
            }
            Err(e) => {
                log::error!("account creation failed: {e}");
                return c.asker.ctrl(Outcome::InternalError, None, cx);
            }
        }
        let uid = c.user.id;
        let desc = desc_param(&c.user);
        let level = c.level;
        let id = c.asker.id.as_deref();
        if c.login || c.anonymous {
            let (token, expires) = self.tokens.mint(uid, level, cx.now);
            let msg = Outcome::Ok
                .ctrl(id, None, cx.now)
                .param("user", uid.usr())
                .param("authlvl", level.as_str())
                .param("token", STANDARD.encode(token))
                .param("expires", rfc3339(expires))
                .param("desc", desc)
                .msg();
            let effect = if c.login {
                AuthEffect::Authenticated(uid, level)
            } else {
                AuthEffect::Finished
            };
            c.asker.send(msg, effect, cx);
        } else {
            let msg = Outcome::Created
                .ctrl(id, None, cx.now)
                .param("user", uid.usr())
                .param("authlvl", level.as_str())
                .param("desc", desc)
                .msg();
            // Creating an account without login leaves this session as it was.
            c.asker.send(msg, AuthEffect::Finished, cx);
        }
    }
}

impl Create {
    fn asker(&self) -> &Asker {
        match self {
            Create::Hash(c) | Create::Write(c) => &c.asker,
        }
    }
}

/// True when a store conflict message names `key` (a user id, a login, a credential) between
/// spaces or the message's ends, as the store's messages do (`user usr… exists`, `login
/// basic:alice exists`, `credential email:a@b.c is claimed by another user`).
pub(super) fn names(msg: &str, key: &str) -> bool {
    !key.is_empty()
        && msg.match_indices(key).any(|(i, _)| {
            let (before, after) = (&msg[..i], &msg[i + key.len()..]);
            (before.is_empty() || before.ends_with(' '))
                && (after.is_empty() || after.starts_with(' '))
        })
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
