//! Changes to an existing account (`{acc}` on `usr…`, `{del what:"user"}`): a new password
//! and maybe login, suspension or restoration by root, deletion. Each reads what it needs,
//! writes once, and replies after the write is durable; then the user's sessions are evicted
//! on every shard (suspension, deletion) and loaded topics re-check the participant's state.
//!
//! A login taken by someone else is refused by the write (`CreateAuth`'s precondition, → 409),
//! not by a read before it. Deleting an account releases its credential claims in the same
//! write.

use super::{
    auths_answer, cred_unique, subs_answer, user_answer, AccountCx, Accounts, Asker, Done, Pending,
};
use crate::access::{AccessMode, AuthLevel};
use crate::auth::basic;
use crate::auth::hasher::{HashJob, HashOutcome};
use crate::ids::{SessionId, UserId};
use crate::proto::server::Pres;
use crate::proto::{Encoding, Frame, Outcome, ServerMsg};
use crate::routing::{
    is_group, p2p_users, AccountChange, AccountWhat, DelWhat, ReqHead, Requester, TopicRequest,
};
use crate::store::{AuthRecord, ReadQuery, StoreError, SubRecord, UserRecord, UserState, WriteOp};

/// A change waiting for a completion.
pub(super) enum Change {
    /// The target's user record.
    User {
        asker: Asker,
        actor: UserId,
        target: UserId,
        what: AccountWhat,
    },
    /// A new secret: the target's auth records.
    SecretAuths {
        asker: Asker,
        login: String,
        password: String,
    },
    /// A new secret: its hash, then the auth record `rec` (replacing `old_unique` when the
    /// login changes).
    Rehash {
        asker: Asker,
        rec: AuthRecord,
        old_unique: Option<String>,
    },
    /// Suspension or restoration: the target's subscriptions, to refresh the topics.
    StateSubs {
        asker: Asker,
        user: UserRecord,
        suspend: bool,
    },
    /// Deletion: the target's auth records.
    DeleteAuths {
        asker: Asker,
        actor: UserId,
        user: UserRecord,
    },
    /// Deletion: the target's subscriptions, to tell contacts and delete owned groups.
    DeleteSubs {
        asker: Asker,
        actor: UserId,
        target: UserId,
        batch: Vec<WriteOp>,
    },
    /// The write; then these effects.
    Write(After),
}

/// What follows a durable change.
pub(super) struct After {
    asker: Asker,
    /// Sessions of this user to evict (suspension, deletion).
    evict: Option<UserId>,
    /// The requesting session ends too (it deleted its own account).
    end_self: bool,
    /// Loaded topics to tell that a participant's state changed (read-only or not).
    refresh: Vec<String>,
}

impl Accounts {
    /// `{acc}` updates and `{del user}` (the session checked who may change whom).
    pub fn change(&mut self, sid: SessionId, c: AccountChange, cx: &mut AccountCx<'_>) {
        let asker = Asker {
            sid,
            id: c.id,
            auth: false,
        };
        let step = Change::User {
            asker,
            actor: c.actor.0,
            target: c.target,
            what: c.what,
        };
        self.read(Pending::Change(step), ReadQuery::User(c.target), cx);
    }

    pub(super) fn change_step(&mut self, step: Change, done: Done, cx: &mut AccountCx<'_>) {
        match (step, done) {
            (
                Change::User {
                    asker,
                    actor,
                    target,
                    what,
                },
                Done::Read(res),
            ) => match user_answer(res) {
                Ok(Some(u)) if u.state != UserState::Deleted => {
                    self.change_user(asker, actor, target, u, what, cx)
                }
                Ok(_) => asker.ctrl(Outcome::UserNotFound, None, cx),
                Err(e) => {
                    log::error!("account change: user read failed: {e}");
                    asker.ctrl(Outcome::InternalError, None, cx);
                }
            },
            (
                Change::SecretAuths {
                    asker,
                    login,
                    password,
                },
                Done::Read(res),
            ) => {
                let auths = match auths_answer(res) {
                    Ok(a) => a,
                    Err(_) => return asker.ctrl(Outcome::InternalError, None, cx),
                };
                self.new_secret(asker, auths, login, password, cx);
            }
            (
                Change::Rehash {
                    asker,
                    rec,
                    old_unique,
                },
                Done::Hashed(HashOutcome::Hashed(Ok(hash))),
            ) => {
                let mut batch = Vec::new();
                let mut rec = rec;
                if let Some(old) = old_unique {
                    batch.push(WriteOp::DeleteAuth { unique: old });
                    batch.push(WriteOp::CreateAuth(AuthRecord {
                        secret: hash,
                        ..rec
                    }));
                } else {
                    rec.secret = hash;
                    batch.push(WriteOp::PutAuth(rec));
                }
                let after = After {
                    asker,
                    evict: None,
                    end_self: false,
                    refresh: Vec::new(),
                };
                self.persist(Pending::Change(Change::Write(after)), batch, cx);
            }
            (
                Change::StateSubs {
                    asker,
                    user,
                    suspend,
                },
                Done::Read(res),
            ) => {
                // P2P conversations and owned groups become read-only (or writable again).
                let refresh = subs_answer(res)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| p2p_users(&s.topic).is_some() || s.given.has(AccessMode::OWNER))
                    .map(|s| s.topic)
                    .collect();
                let after = After {
                    asker,
                    evict: suspend.then_some(user.id),
                    end_self: false,
                    refresh,
                };
                let batch = vec![WriteOp::PutUser(user)];
                self.persist(Pending::Change(Change::Write(after)), batch, cx);
            }
            (
                Change::DeleteAuths {
                    asker,
                    actor,
                    mut user,
                },
                Done::Read(res),
            ) => {
                let auths = match auths_answer(res) {
                    Ok(a) => a,
                    Err(_) => return asker.ctrl(Outcome::InternalError, None, cx),
                };
                let target = user.id;
                let user_creds = user.creds.clone();
                user.state = UserState::Deleted;
                user.updated = cx.now;
                user.tags.clear();
                let mut batch = vec![WriteOp::PutUser(user)];
                batch.extend(
                    auths
                        .into_iter()
                        .map(|a| WriteOp::DeleteAuth { unique: a.unique }),
                );
                // Its credentials are free for other accounts again.
                batch.extend(user_creds.iter().map(|c| WriteOp::ReleaseCred {
                    unique: cred_unique(c),
                    user: target,
                }));
                let step = Change::DeleteSubs {
                    asker,
                    actor,
                    target,
                    batch,
                };
                self.read(Pending::Change(step), ReadQuery::SubsOfUser(target), cx);
            }
            (
                Change::DeleteSubs {
                    asker,
                    actor,
                    target,
                    batch,
                },
                Done::Read(res),
            ) => {
                // Contacts learn the user is gone (a failed read only skips the news).
                if let Ok(subs) = subs_answer(res) {
                    announce_deletion(asker.sid, target, &subs, cx);
                }
                let after = After {
                    asker,
                    evict: Some(target),
                    end_self: target == actor,
                    refresh: Vec::new(),
                };
                self.persist(Pending::Change(Change::Write(after)), batch, cx);
            }
            (Change::Write(after), Done::Persisted(res)) => changed(after, res, cx),
            (step, Done::Refused) => step.asker().ctrl(Outcome::ServiceUnavailable, None, cx),
            // A failed hash, or a completion of another kind than the flow waits for.
            (step, _) => step.asker().ctrl(Outcome::InternalError, None, cx),
        }
    }

    /// The target exists and is not deleted: start the change itself.
    fn change_user(
        &mut self,
        asker: Asker,
        actor: UserId,
        target: UserId,
        mut user: UserRecord,
        what: AccountWhat,
        cx: &mut AccountCx<'_>,
    ) {
        match what {
            AccountWhat::Secret { secret, .. } => {
                let Some((login, password)) = secret
                    .iter()
                    .position(|b| *b == b':')
                    .map(|i| (&secret[..i], &secret[i + 1..]))
                    .and_then(|(l, p)| {
                        Some((std::str::from_utf8(l).ok()?, std::str::from_utf8(p).ok()?))
                    })
                else {
                    return asker.ctrl(Outcome::Malformed, None, cx);
                };
                let step = Change::SecretAuths {
                    asker,
                    login: login.to_owned(),
                    password: password.to_owned(),
                };
                self.read(Pending::Change(step), ReadQuery::AuthsOfUser(target), cx);
            }
            AccountWhat::State { suspend } => {
                let state = if suspend {
                    UserState::Suspended
                } else {
                    UserState::Ok
                };
                if user.state == state {
                    return asker.ctrl(Outcome::NotModified, None, cx);
                }
                user.state = state;
                user.updated = cx.now;
                let step = Change::StateSubs {
                    asker,
                    user,
                    suspend,
                };
                self.read(Pending::Change(step), ReadQuery::SubsOfUser(target), cx);
            }
            AccountWhat::Delete => {
                let step = Change::DeleteAuths { asker, actor, user };
                self.read(Pending::Change(step), ReadQuery::AuthsOfUser(target), cx);
            }
        }
    }

    /// A new password (and maybe login) for the basic auth record among `auths`.
    fn new_secret(
        &mut self,
        asker: Asker,
        auths: Vec<AuthRecord>,
        login: String,
        password: String,
        cx: &mut AccountCx<'_>,
    ) {
        let Some(current) = auths.into_iter().find(|a| a.scheme == "basic") else {
            return asker.ctrl(Outcome::NotFound, None, cx);
        };
        let policy = &self.rules.basic;
        let login = login.trim().to_lowercase();
        if policy.check_password(&password).is_err()
            || (!login.is_empty() && policy.check_login(&login).is_err())
        {
            return asker.ctrl(Outcome::PolicyViolation, None, cx);
        }
        let mut rec = current.clone();
        let mut old_unique = None;
        if !login.is_empty() && basic::unique_key(&login) != current.unique {
            old_unique = Some(current.unique);
            rec.unique = basic::unique_key(&login);
        }
        let job = HashJob::Hash {
            password,
            cost: self.rules.bcrypt_cost,
        };
        let step = Change::Rehash {
            asker,
            rec,
            old_unique,
        };
        self.hash(Pending::Change(step), job, cx);
    }
}

/// A deleted account's contacts: groups it owns are deleted with it (members get `pres gone`;
/// the topic does it on its home shard), P2P peers get `{pres what:"gone"}` on `me`.
fn announce_deletion(sid: SessionId, target: UserId, subs: &[SubRecord], cx: &mut AccountCx<'_>) {
    for s in subs.iter().filter(|s| s.deleted.is_none()) {
        if is_group(&s.topic) && s.given.has(AccessMode::OWNER) {
            let req = Requester {
                sid,
                uid: target,
                level: AuthLevel::Auth,
                enc: Encoding::Json,
            };
            cx.out.push(super::AccountOut::Route {
                topic: s.topic.clone(),
                req: TopicRequest::Del {
                    hdr: ReqHead {
                        req,
                        id: None,
                        as_seen: s.topic.clone(),
                    },
                    what: DelWhat::Topic { hard: true },
                },
            });
        }
        if let Some((a, b)) = p2p_users(&s.topic) {
            let peer = if a == target { b } else { a };
            let frame = Frame::new(ServerMsg::Pres(Pres {
                topic: "me".into(),
                src: Some(target.usr()),
                what: "gone",
                ..Default::default()
            }));
            cx.out.push(super::AccountOut::UserPres {
                frame,
                targets: vec![(peer, Vec::new())],
            });
        }
    }
}

/// An account change is durable (or failed): reply, then evict and refresh.
fn changed(after: After, res: Result<(), StoreError>, cx: &mut AccountCx<'_>) {
    let outcome = match res {
        Ok(()) => Outcome::Ok,
        Err(StoreError::Conflict(_)) => Outcome::DuplicateCredential,
        Err(e) => {
            log::error!("account change failed: {e}");
            Outcome::InternalError
        }
    };
    after.asker.ctrl(outcome, None, cx);
    if outcome != Outcome::Ok {
        return;
    }
    if let Some(uid) = after.evict {
        let except = (!after.end_self).then_some(after.asker.sid);
        cx.out.push(super::AccountOut::Evict { uid, except });
    }
    for topic in after.refresh {
        cx.out.push(super::AccountOut::Route {
            topic,
            req: TopicRequest::Refresh,
        });
    }
}

impl Change {
    fn asker(&self) -> &Asker {
        match self {
            Change::User { asker, .. }
            | Change::SecretAuths { asker, .. }
            | Change::Rehash { asker, .. }
            | Change::StateSubs { asker, .. }
            | Change::DeleteAuths { asker, .. }
            | Change::DeleteSubs { asker, .. }
            | Change::Write(After { asker, .. }) => asker,
        }
    }
}
