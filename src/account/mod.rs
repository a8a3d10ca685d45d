//! Accounts as a runtime-free state machine: `{login}` (basic and token), account creation
//! (`{acc user:"new…"}`, basic and anonymous) and account changes (password or login change,
//! suspension, deletion).
//!
//! [`Accounts`] never reads the clock, draws no randomness, touches no socket, thread or store:
//! `now` and `entropy` come in an [`AccountCx`], and everything slow is an output whose result
//! comes back as an input under the same token — a bcrypt job ([`AccountOut::Hash`] →
//! [`Accounts::hashed`]), a store read ([`AccountOut::Read`] → [`Accounts::read_done`]), a
//! durable write ([`AccountOut::Persist`] → [`Accounts::persisted`]); a job the runtime could
//! not start is reported with [`Accounts::refused`]. Replies to the asking session carry the
//! authentication effect the runtime applies to it. Uniqueness (user ids, logins) is enforced
//! by the write's preconditions, never by a read before it. The runtime adapter is
//! `shard/account.rs`.

mod change;
mod create;
mod login;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::access::AuthLevel;
use crate::auth::basic::BasicPolicy;
use crate::auth::hasher::{HashJob, HashOutcome};
use crate::auth::token::TokenIssuer;
use crate::config::Config;
use crate::ids::{SessionId, UnixMillis, UserId};
use crate::proto::{Frame, Outcome, ServerMsg};
use crate::routing::TopicRequest;
use crate::store::{
    AuthRecord, CredRecord, ReadAnswer, ReadQuery, StoreError, SubRecord, UserRecord, WriteBatch,
};

/// The rules accounts follow, taken from the configuration once.
#[derive(Clone, Debug)]
pub struct AccountRules {
    /// Login and password rules of the `basic` scheme.
    pub basic: BasicPolicy,
    /// bcrypt cost of new password hashes.
    pub bcrypt_cost: u32,
    /// Logins that authenticate at root level.
    pub root_users: Vec<String>,
    /// Tag namespaces users cannot set themselves (`basic`, `email`, `tel`).
    pub restricted_tags: Vec<String>,
    /// Most tags an account keeps.
    pub max_tag_count: usize,
}

impl AccountRules {
    /// The rules of a server configuration.
    pub fn from_config(cfg: &Config) -> AccountRules {
        AccountRules {
            basic: BasicPolicy {
                min_login_len: cfg.auth.min_login_len,
                min_password_len: cfg.auth.min_password_len,
                ..BasicPolicy::default()
            },
            bcrypt_cost: cfg.auth.bcrypt_cost,
            root_users: cfg.auth.root_users.clone(),
            restricted_tags: cfg.topic.restricted_tags.clone(),
            max_tag_count: cfg.topic.max_tag_count,
        }
    }
}

/// Everything the machine needs from its caller for one step.
pub struct AccountCx<'a> {
    pub now: UnixMillis,
    /// Fresh randomness (new user ids, anonymous logins), so the machine stays deterministic.
    pub entropy: u64,
    pub out: &'a mut Vec<AccountOut>,
}

/// What a reply does to the asking session's authentication state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthEffect {
    /// Nothing (account changes of an authenticated session).
    Unchanged,
    /// The login or creation attempt is over without authenticating
    /// (`Session::auth_finished`).
    Finished,
    /// The session is now this user at this level (`Session::authenticated`).
    Authenticated(UserId, AuthLevel),
}

/// What a step of the machine produces, in order.
#[derive(Debug)]
pub enum AccountOut {
    /// A frame for session `sid` of this shard; apply `effect` to it first.
    Reply {
        sid: SessionId,
        frame: Frame,
        effect: AuthEffect,
    },
    /// Run a bcrypt job off the executor; its outcome comes back to [`Accounts::hashed`].
    Hash { token: u64, job: HashJob },
    /// Read from the store; the answer comes back to [`Accounts::read_done`], in the same step
    /// or later.
    Read { token: u64, query: ReadQuery },
    /// Write durably; the result comes back to [`Accounts::persisted`].
    Persist { token: u64, batch: WriteBatch },
    /// A request for a topic (refresh a participant's state, delete an owned group).
    Route { topic: String, req: TopicRequest },
    /// A `{pres}` for these users' `me` topics (each skipping the listed sessions).
    UserPres {
        frame: Frame,
        targets: Vec<(UserId, Vec<SessionId>)>,
    },
    /// End every session of `uid` on every shard, but `except`, with `{ctrl 205 "evicted"}`.
    Evict {
        uid: UserId,
        except: Option<SessionId>,
    },
}

/// A completion, as the flows see it.
pub(crate) enum Done {
    Hashed(HashOutcome),
    Read(Result<ReadAnswer, StoreError>),
    Persisted(Result<(), StoreError>),
    /// The runtime could not start the job (hash or writer queue full).
    Refused,
}

/// The session a flow answers, and whether its replies end an authentication attempt.
#[derive(Clone, Debug)]
pub(crate) struct Asker {
    sid: SessionId,
    id: Option<String>,
    /// Login and creation: every failure finishes the attempt.
    auth: bool,
}

impl Asker {
    fn send(&self, msg: ServerMsg, effect: AuthEffect, cx: &mut AccountCx<'_>) {
        cx.out.push(AccountOut::Reply {
            sid: self.sid,
            frame: Frame::new(msg),
            effect,
        });
    }

    /// A bare `{ctrl}` with `outcome` (and `params.what` when given); it finishes an
    /// authentication attempt.
    fn ctrl(&self, outcome: Outcome, what: Option<&str>, cx: &mut AccountCx<'_>) {
        let mut c = outcome.ctrl(self.id.as_deref(), None, cx.now);
        if let Some(w) = what {
            c = c.param("what", w);
        }
        let effect = if self.auth {
            AuthEffect::Finished
        } else {
            AuthEffect::Unchanged
        };
        self.send(c.msg(), effect, cx);
    }
}

/// Work waiting for a completion.
enum Pending {
    Login(login::Login),
    Create(create::Create),
    Change(change::Change),
}

/// The account machine of one shard: the rules, the token issuer, and the flows waiting for a
/// completion, by token.
pub struct Accounts {
    rules: AccountRules,
    tokens: TokenIssuer,
    pending: HashMap<u64, Pending>,
    next_token: u64,
}

impl Accounts {
    pub fn new(rules: AccountRules, tokens: TokenIssuer) -> Accounts {
        Accounts {
            rules,
            tokens,
            pending: HashMap::new(),
            next_token: 1,
        }
    }

    /// Flows waiting for a completion.
    pub fn n_pending(&self) -> usize {
        self.pending.len()
    }

    /// A bcrypt job finished.
    pub fn hashed(&mut self, token: u64, outcome: HashOutcome, cx: &mut AccountCx<'_>) {
        self.complete(token, Done::Hashed(outcome), cx);
    }

    /// A store read was answered.
    pub fn read_done(
        &mut self,
        token: u64,
        res: Result<ReadAnswer, StoreError>,
        cx: &mut AccountCx<'_>,
    ) {
        self.complete(token, Done::Read(res), cx);
    }

    /// A write is durable (or failed).
    pub fn persisted(&mut self, token: u64, res: Result<(), StoreError>, cx: &mut AccountCx<'_>) {
        self.complete(token, Done::Persisted(res), cx);
    }

    /// The runtime could not start the job of `token` (its queue is full): `503`.
    pub fn refused(&mut self, token: u64, cx: &mut AccountCx<'_>) {
        self.complete(token, Done::Refused, cx);
    }

    fn complete(&mut self, token: u64, done: Done, cx: &mut AccountCx<'_>) {
        match self.pending.remove(&token) {
            Some(Pending::Login(l)) => self.login_step(l, done, cx),
            Some(Pending::Create(c)) => self.create_step(c, done, cx),
            Some(Pending::Change(c)) => self.change_step(c, done, cx),
            None => {}
        }
    }

    fn wait(&mut self, p: Pending) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.pending.insert(token, p);
        token
    }

    fn hash(&mut self, p: Pending, job: HashJob, cx: &mut AccountCx<'_>) {
        let token = self.wait(p);
        cx.out.push(AccountOut::Hash { token, job });
    }

    fn read(&mut self, p: Pending, query: ReadQuery, cx: &mut AccountCx<'_>) {
        let token = self.wait(p);
        cx.out.push(AccountOut::Read { token, query });
    }

    fn persist(&mut self, p: Pending, batch: WriteBatch, cx: &mut AccountCx<'_>) {
        let token = self.wait(p);
        cx.out.push(AccountOut::Persist { token, batch });
    }

    /// The level of a basic login: root for `auth.root_users`, else the stored one.
    fn level_of(&self, login: &str, stored: AuthLevel) -> AuthLevel {
        if self.rules.root_users.iter().any(|r| r == login) {
            AuthLevel::Root
        } else {
            stored
        }
    }
}

/// The claim key of a credential (`WriteOp::ClaimCred`): `method:value`.
fn cred_unique(c: &CredRecord) -> String {
    format!("{}:{}", c.method, c.value)
}

/// The `stream`-th value drawn from one random `u64` (splitmix64), so that a step needing
/// several values (an anonymous login and a user id) takes them from one `entropy`.
fn mix(entropy: u64, stream: u64) -> u64 {
    let mut z = entropy.wrapping_add(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A read answer of another kind than asked: the runtime broke the contract.
fn unexpected(what: &str) -> StoreError {
    StoreError::Backend(format!("{what}: the answer is of another kind"))
}

/// The answer to [`ReadQuery::User`].
fn user_answer(res: Result<ReadAnswer, StoreError>) -> Result<Option<UserRecord>, StoreError> {
    match res? {
        ReadAnswer::User(u) => Ok(u),
        _ => Err(unexpected("user read")),
    }
}

/// The answer to [`ReadQuery::Auth`].
fn auth_answer(res: Result<ReadAnswer, StoreError>) -> Result<Option<AuthRecord>, StoreError> {
    match res? {
        ReadAnswer::Auth(a) => Ok(a),
        _ => Err(unexpected("auth read")),
    }
}

/// The answer to [`ReadQuery::AuthsOfUser`].
fn auths_answer(res: Result<ReadAnswer, StoreError>) -> Result<Vec<AuthRecord>, StoreError> {
    match res? {
        ReadAnswer::Auths(a) => Ok(a),
        _ => Err(unexpected("auths read")),
    }
}

/// The answer to [`ReadQuery::SubsOfUser`].
fn subs_answer(res: Result<ReadAnswer, StoreError>) -> Result<Vec<SubRecord>, StoreError> {
    match res? {
        ReadAnswer::Subs(s) => Ok(s),
        _ => Err(unexpected("subscriptions read")),
    }
}
