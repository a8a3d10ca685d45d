//! Account machine tests: each drives [`Accounts`] on a fixed clock with explicit inputs and
//! completions (read answers, hash outcomes, write results) and checks every output: what is
//! asked of the runtime, the records written, and the replies with their codes and effects.
//! This file holds the rig and the record builders; `create.rs`, `login.rs` and `change.rs`
//! the tests of each flow.

mod change;
mod create;
mod login;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::*;
use crate::access::{AccessMode, AuthLevel, DefaultAccess};
use crate::auth::basic::BasicPolicy;
use crate::auth::AuthError;
use crate::ids::ShardId;
use crate::proto::time::rfc3339;
use crate::routing::{
    p2p_topic, AccountChange, AccountRequest, AccountWhat, DelWhat, TopicRequest,
};
use crate::store::{CredRecord, UserState, WriteOp};

const NOW: UnixMillis = UnixMillis(1_700_000_000_000);
const LIFETIME_SECS: u64 = 3600;

fn sid(n: u64) -> SessionId {
    SessionId::new(ShardId(0), n)
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(vec![7; 32], 1, LIFETIME_SECS)
}

fn rules() -> AccountRules {
    AccountRules {
        basic: BasicPolicy::default(),
        bcrypt_cost: 4,
        root_users: vec!["root".into()],
        restricted_tags: vec!["basic".into(), "email".into(), "tel".into()],
        max_tag_count: 16,
    }
}

/// The machine, the clock and the entropy of the next step.
struct Rig {
    acc: Accounts,
    now: UnixMillis,
    entropy: u64,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            acc: Accounts::new(rules(), issuer()),
            now: NOW,
            entropy: 0x1234_5678,
        }
    }

    fn step(&mut self, input: impl FnOnce(&mut Accounts, &mut AccountCx<'_>)) -> Vec<AccountOut> {
        let mut out = Vec::new();
        let mut cx = AccountCx {
            now: self.now,
            entropy: self.entropy,
            out: &mut out,
        };
        input(&mut self.acc, &mut cx);
        out
    }

    fn login(&mut self, sid: SessionId, scheme: &str, secret: &[u8]) -> Vec<AccountOut> {
        let (scheme, secret) = (scheme.to_owned(), secret.to_vec());
        self.step(|a, cx| a.login(sid, Some("l1".into()), scheme, secret, cx))
    }

    fn create(&mut self, sid: SessionId, req: AccountRequest) -> Vec<AccountOut> {
        self.step(|a, cx| a.create(sid, req, cx))
    }

    fn change(
        &mut self,
        sid: SessionId,
        actor: (UserId, AuthLevel),
        target: UserId,
        what: AccountWhat,
    ) -> Vec<AccountOut> {
        let c = AccountChange {
            id: Some("c1".into()),
            actor,
            target,
            what,
        };
        self.step(|a, cx| a.change(sid, c, cx))
    }

    fn answer(&mut self, token: u64, answer: ReadAnswer) -> Vec<AccountOut> {
        self.step(|a, cx| a.read_done(token, Ok(answer), cx))
    }

    fn hashed(&mut self, token: u64, outcome: HashOutcome) -> Vec<AccountOut> {
        self.step(|a, cx| a.hashed(token, outcome, cx))
    }

    fn persisted(&mut self, token: u64, res: Result<(), StoreError>) -> Vec<AccountOut> {
        self.step(|a, cx| a.persisted(token, res, cx))
    }
}

/// The only output: a read.
fn read_of(out: Vec<AccountOut>) -> (u64, ReadQuery) {
    match <[AccountOut; 1]>::try_from(out) {
        Ok([AccountOut::Read { token, query }]) => (token, query),
        other => panic!("expected one read, got {other:?}"),
    }
}

/// The only output: a hash job.
fn hash_of(out: Vec<AccountOut>) -> (u64, HashJob) {
    match <[AccountOut; 1]>::try_from(out) {
        Ok([AccountOut::Hash { token, job }]) => (token, job),
        other => panic!("expected one hash job, got {other:?}"),
    }
}

/// The last output, a write (earlier ones are returned).
fn persist_of(mut out: Vec<AccountOut>) -> (u64, WriteBatch, Vec<AccountOut>) {
    match out.pop() {
        Some(AccountOut::Persist { token, batch }) => (token, batch, out),
        other => panic!("expected a write last, got {other:?} after {out:?}"),
    }
}

/// A reply: its session, `ctrl` object and effect.
fn reply(o: &AccountOut) -> (SessionId, Value, AuthEffect) {
    match o {
        AccountOut::Reply { sid, frame, effect } => {
            let v: Value = serde_json::from_slice(&frame.json()).expect("reply is JSON");
            (*sid, v["ctrl"].clone(), *effect)
        }
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// The only output: a reply.
fn only_reply(out: Vec<AccountOut>) -> (SessionId, Value, AuthEffect) {
    assert_eq!(out.len(), 1, "expected one reply, got {out:?}");
    reply(&out[0])
}

fn code_text(ctrl: &Value) -> (u64, &str) {
    (
        ctrl["code"].as_u64().expect("code"),
        ctrl["text"].as_str().expect("text"),
    )
}

/// The user id a token in `params.token` was minted for, checked at `NOW`.
fn token_user(ctrl: &Value) -> (UserId, AuthLevel) {
    let token = STANDARD
        .decode(ctrl["params"]["token"].as_str().expect("token param"))
        .expect("base64 token");
    let claims = issuer().verify(&token, NOW).expect("valid token");
    (claims.uid, claims.level)
}

fn basic_request(secret: &str, login: bool) -> AccountRequest {
    AccountRequest {
        id: Some("a1".into()),
        scheme: "basic".into(),
        secret: secret.as_bytes().to_vec(),
        login,
        tags: Vec::new(),
        creds: Vec::new(),
        public: None,
        private: None,
        auth_defacs: None,
        anon_defacs: None,
    }
}

fn user(id: UserId, state: UserState) -> UserRecord {
    UserRecord {
        id,
        created: UnixMillis(1),
        updated: UnixMillis(1),
        state,
        access: DefaultAccess {
            auth: AccessMode::USER_AUTH_DEFAULT,
            anon: AccessMode::NONE,
        },
        public: None,
        trusted: None,
        tags: vec!["basic:alice".into(), "email:a@b.c".into()],
        last_seen: None,
        creds: vec![CredRecord {
            method: "email".into(),
            value: "a@b.c".into(),
            done: true,
        }],
    }
}

fn auth(unique: &str, uid: UserId, level: AuthLevel) -> AuthRecord {
    AuthRecord {
        unique: unique.into(),
        user: uid,
        scheme: "basic".into(),
        level,
        secret: b"$2b$04$stored".to_vec(),
        expires: None,
    }
}

fn sub(topic: &str, uid: UserId, given: AccessMode, deleted: bool) -> SubRecord {
    SubRecord {
        topic: topic.into(),
        user: uid,
        created: UnixMillis(1),
        updated: UnixMillis(1),
        deleted: deleted.then_some(UnixMillis(2)),
        want: given,
        given,
        read: 0,
        recv: 0,
        del_id: 0,
        private: None,
    }
}

#[test]
fn unknown_and_stale_tokens_are_ignored() {
    let mut rig = Rig::new();
    assert!(rig.persisted(42, Ok(())).is_empty());
    let (t, _) = read_of(rig.login(sid(1), "basic", b"alice:secret1"));
    let _ = rig.answer(t, ReadAnswer::Auth(None));
    assert!(rig.answer(t, ReadAnswer::Auth(None)).is_empty());
}
