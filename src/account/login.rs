//! `{login}` with `basic` (auth record read, bcrypt compare on the hash pool, user read) or
//! `token` (HMAC check inline with the caller's `now`, user read), answered with the
//! reference's codes; a good login mints a token and authenticates the session.
//!
//! An unknown login name goes through the hash pool too (against `basic::dummy_hash` at the
//! configured cost) before its 401, so it is answered as late as a wrong password is.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{auth_answer, user_answer, AccountCx, Accounts, Asker, AuthEffect, Done, Pending};
use crate::access::AuthLevel;
use crate::auth::basic;
use crate::auth::hasher::{HashJob, HashOutcome};
use crate::auth::AuthError;
use crate::ids::{SessionId, UserId};
use crate::proto::time::rfc3339;
use crate::proto::Outcome;
use crate::store::{ReadQuery, UserState};

/// A login waiting for a completion.
pub(super) enum Login {
    /// The auth record of a basic login.
    Lookup {
        asker: Asker,
        login: String,
        password: String,
    },
    /// bcrypt comparing the password with the stored hash.
    Verify {
        asker: Asker,
        uid: UserId,
        level: AuthLevel,
    },
    /// bcrypt comparing the password with the dummy hash: the login name is unknown, and the
    /// answer is 401 whatever the comparison says.
    Unknown { asker: Asker },
    /// The user record of a login whose credentials are good.
    User {
        asker: Asker,
        uid: UserId,
        level: AuthLevel,
    },
}

impl Accounts {
    /// `{login}` with `basic` or `token` (the session refused other schemes).
    pub fn login(
        &mut self,
        sid: SessionId,
        id: Option<String>,
        scheme: String,
        secret: Vec<u8>,
        cx: &mut AccountCx<'_>,
    ) {
        let asker = Asker {
            sid,
            id,
            auth: true,
        };
        if scheme == "token" {
            match self.tokens.verify(&secret, cx.now) {
                Ok(claims) if !claims.no_login() => {
                    self.load_user(asker, claims.uid, claims.level, cx)
                }
                Ok(_) => asker.ctrl(Outcome::AuthFailed, None, cx),
                Err(AuthError::Malformed) => asker.ctrl(Outcome::Malformed, None, cx),
                Err(_) => asker.ctrl(Outcome::AuthFailed, None, cx),
            }
            return;
        }
        let (login, password) = match basic::parse_secret(&secret) {
            Ok(v) => v,
            Err(_) => return asker.ctrl(Outcome::Malformed, None, cx),
        };
        let query = ReadQuery::Auth(basic::unique_key(&login));
        self.read(
            Pending::Login(Login::Lookup {
                asker,
                login,
                password,
            }),
            query,
            cx,
        );
    }

    pub(super) fn login_step(&mut self, l: Login, done: Done, cx: &mut AccountCx<'_>) {
        match (l, done) {
            (
                Login::Lookup {
                    asker,
                    login,
                    password,
                },
                Done::Read(res),
            ) => match auth_answer(res) {
                Ok(Some(rec)) => {
                    let level = self.level_of(&login, rec.level);
                    let job = HashJob::Verify {
                        password,
                        hash: rec.secret,
                    };
                    let uid = rec.user;
                    self.hash(Pending::Login(Login::Verify { asker, uid, level }), job, cx);
                }
                Ok(None) => {
                    let job = HashJob::Verify {
                        password,
                        hash: basic::dummy_hash(self.rules.bcrypt_cost),
                    };
                    self.hash(Pending::Login(Login::Unknown { asker }), job, cx);
                }
                Err(e) => {
                    log::error!("login lookup failed: {e}");
                    asker.ctrl(Outcome::InternalError, None, cx);
                }
            },
            (Login::Verify { asker, uid, level }, Done::Hashed(HashOutcome::Verified(ok))) => {
                if ok {
                    self.load_user(asker, uid, level, cx);
                } else {
                    asker.ctrl(Outcome::AuthFailed, None, cx);
                }
            }
            (Login::Unknown { asker }, Done::Hashed(HashOutcome::Verified(_))) => {
                asker.ctrl(Outcome::AuthFailed, None, cx)
            }
            (Login::User { asker, uid, level }, Done::Read(res)) => match user_answer(res) {
                Ok(None) => asker.ctrl(Outcome::UserNotFound, None, cx),
                Ok(Some(u)) if u.state != UserState::Ok => {
                    asker.ctrl(Outcome::PermissionDenied, None, cx)
                }
                Ok(Some(_)) => {
                    let (token, expires) = self.tokens.mint(uid, level, cx.now);
                    let msg = Outcome::Ok
                        .ctrl(asker.id.as_deref(), None, cx.now)
                        .param("user", uid.usr())
                        .param("authlvl", level.as_str())
                        .param("token", STANDARD.encode(token))
                        .param("expires", rfc3339(expires))
                        .msg();
                    asker.send(msg, AuthEffect::Authenticated(uid, level), cx);
                }
                Err(e) => {
                    log::error!("login of {uid}: user read failed: {e}");
                    asker.ctrl(Outcome::InternalError, None, cx);
                }
            },
            (l, Done::Refused) => l.asker().ctrl(Outcome::ServiceUnavailable, None, cx),
            // A completion of another kind than the flow waits for.
            (l, _) => l.asker().ctrl(Outcome::InternalError, None, cx),
        }
    }

    /// Completes a login whose credentials are good: the account must exist and be usable.
    fn load_user(&mut self, asker: Asker, uid: UserId, level: AuthLevel, cx: &mut AccountCx<'_>) {
        let p = Pending::Login(Login::User { asker, uid, level });
        self.read(p, ReadQuery::User(uid), cx);
    }
}

impl Login {
    fn asker(&self) -> &Asker {
        match self {
            Login::Lookup { asker, .. }
            | Login::Verify { asker, .. }
            | Login::Unknown { asker }
            | Login::User { asker, .. } => asker,
        }
    }
}
