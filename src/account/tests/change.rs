//! Account changes: password and login, suspension and restoration by root, deletion (own and
//! by root) with its evictions and contact news, and a failing store.

use super::*;
use crate::routing::ReqHead;

#[test]
fn password_and_login_change() {
    let mut rig = Rig::new();
    let uid = UserId(0x51);
    let me = (uid, AuthLevel::Auth);
    let secret = |s: &str| AccountWhat::Secret {
        scheme: "basic".into(),
        secret: s.as_bytes().to_vec(),
    };
    // New login and password: the old record goes, the new one is created (its uniqueness is
    // the write's precondition).
    let (t, q) = read_of(rig.change(sid(1), me, uid, secret(" Bob :newpass")));
    assert_eq!(q, ReadQuery::User(uid));
    let (t, q) = read_of(rig.answer(t, ReadAnswer::User(Some(user(uid, UserState::Ok)))));
    assert_eq!(q, ReadQuery::AuthsOfUser(uid));
    let current = auth("basic:alice", uid, AuthLevel::Auth);
    let (t, job) = hash_of(rig.answer(t, ReadAnswer::Auths(vec![current.clone()])));
    assert!(matches!(job, HashJob::Hash { ref password, cost: 4 } if password == "newpass"));
    let (t, batch, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"new".to_vec()))));
    assert_eq!(
        batch,
        vec![
            WriteOp::DeleteAuth {
                unique: "basic:alice".into()
            },
            WriteOp::CreateAuth(AuthRecord {
                unique: "basic:bob".into(),
                secret: b"new".to_vec(),
                ..current.clone()
            }),
        ]
    );
    let (s, ctrl, effect) = only_reply(rig.persisted(t, Ok(())));
    assert_eq!(
        (s, code_text(&ctrl), effect),
        (sid(1), (200, "ok"), AuthEffect::Unchanged)
    );
    assert_eq!(ctrl["id"], "c1");

    // Password only: the record is replaced.
    let (t, _) = read_of(rig.change(sid(1), me, uid, secret(":newpass")));
    let (t, _) = read_of(rig.answer(t, ReadAnswer::User(Some(user(uid, UserState::Ok)))));
    let (t, _) = hash_of(rig.answer(t, ReadAnswer::Auths(vec![current.clone()])));
    let (t, batch, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"new".to_vec()))));
    let mut replaced = current.clone();
    replaced.secret = b"new".to_vec();
    assert_eq!(batch, vec![WriteOp::PutAuth(replaced)]);

    // Someone else has the login: the write's precondition fails.
    let conflict = StoreError::Conflict("login basic:bob exists".into());
    let (_, ctrl, _) = only_reply(rig.persisted(t, Err(conflict)));
    assert_eq!(code_text(&ctrl), (409, "duplicate credential"));
    assert!(ctrl.get("params").is_none());

    // Refusals before any write.
    let (t, _) = read_of(rig.change(sid(1), me, uid, secret("alice:x")));
    let (t, _) = read_of(rig.answer(t, ReadAnswer::User(Some(user(uid, UserState::Ok)))));
    let (_, ctrl, _) = only_reply(rig.answer(t, ReadAnswer::Auths(vec![current.clone()])));
    assert_eq!(code_text(&ctrl), (422, "policy violation"));
    let (t, _) = read_of(rig.change(sid(1), me, uid, secret("alice:secret1")));
    let (t, _) = read_of(rig.answer(t, ReadAnswer::User(Some(user(uid, UserState::Ok)))));
    let (_, ctrl, _) = only_reply(rig.answer(t, ReadAnswer::Auths(Vec::new())));
    assert_eq!(code_text(&ctrl), (404, "not found"));
    let (t, _) = read_of(rig.change(sid(1), me, uid, secret("nocolon")));
    let (_, ctrl, _) = only_reply(rig.answer(t, ReadAnswer::User(Some(user(uid, UserState::Ok)))));
    assert_eq!(code_text(&ctrl), (400, "malformed"));
    let (t, _) = read_of(rig.change(sid(1), me, uid, secret(":newpass")));
    let gone = ReadAnswer::User(Some(user(uid, UserState::Deleted)));
    let (_, ctrl, effect) = only_reply(rig.answer(t, gone));
    assert_eq!(
        (code_text(&ctrl), effect),
        ((404, "user not found"), AuthEffect::Unchanged)
    );
    assert_eq!(rig.acc.n_pending(), 0);
}

#[test]
fn suspension_by_root_evicts_the_user_and_refreshes_its_topics() {
    let mut rig = Rig::new();
    let (root, target, peer) = (UserId(0x11), UserId(0x51), UserId(0x99));
    let p2p = p2p_topic(target, peer);
    let (t, _) = read_of(rig.change(
        sid(3),
        (root, AuthLevel::Root),
        target,
        AccountWhat::State { suspend: true },
    ));
    let (t, q) = read_of(rig.answer(t, ReadAnswer::User(Some(user(target, UserState::Ok)))));
    assert_eq!(q, ReadQuery::SubsOfUser(target));
    let subs = vec![
        sub(&p2p, target, AccessMode::P2P, false),
        sub("grpOwned", target, AccessMode::OWNER_FULL, false),
        sub("grpMember", target, AccessMode::PUBLIC, false),
    ];
    let (t, batch, before) = persist_of(rig.answer(t, ReadAnswer::Subs(subs)));
    assert!(before.is_empty());
    let mut suspended = user(target, UserState::Suspended);
    suspended.updated = NOW;
    assert_eq!(batch, vec![WriteOp::PutUser(suspended)]);
    let out = rig.persisted(t, Ok(()));
    assert_eq!(out.len(), 4, "{out:?}");
    let (s, ctrl, effect) = reply(&out[0]);
    assert_eq!(
        (s, code_text(&ctrl), effect),
        (sid(3), (200, "ok"), AuthEffect::Unchanged)
    );
    assert!(
        matches!(out[1], AccountOut::Evict { uid, except: Some(s) } if uid == target && s == sid(3))
    );
    let refreshed: Vec<&str> = out[2..]
        .iter()
        .map(|o| match o {
            AccountOut::Route {
                topic,
                req: TopicRequest::Refresh,
            } => topic.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(refreshed, vec![p2p.as_str(), "grpOwned"]);

    // Restoring: no eviction; the same state again: 304.
    let (t, _) = read_of(rig.change(
        sid(3),
        (root, AuthLevel::Root),
        target,
        AccountWhat::State { suspend: false },
    ));
    let (t, _) = read_of(rig.answer(
        t,
        ReadAnswer::User(Some(user(target, UserState::Suspended))),
    ));
    let (t, _, _) = persist_of(rig.answer(t, ReadAnswer::Subs(Vec::new())));
    let (_, ctrl, _) = only_reply(rig.persisted(t, Ok(())));
    assert_eq!(code_text(&ctrl), (200, "ok"));
    let (t, _) = read_of(rig.change(
        sid(3),
        (root, AuthLevel::Root),
        target,
        AccountWhat::State { suspend: false },
    ));
    let (_, ctrl, _) =
        only_reply(rig.answer(t, ReadAnswer::User(Some(user(target, UserState::Ok)))));
    assert_eq!(code_text(&ctrl), (304, "not modified"));
}

/// Deletes `target` as `actor`; returns the write's token, the batch and what came before it.
fn delete(
    rig: &mut Rig,
    actor: (UserId, AuthLevel),
    target: UserId,
    peer: UserId,
) -> (u64, WriteBatch, Vec<AccountOut>) {
    let (t, _) = read_of(rig.change(sid(1), actor, target, AccountWhat::Delete));
    let (t, q) = read_of(rig.answer(t, ReadAnswer::User(Some(user(target, UserState::Ok)))));
    assert_eq!(q, ReadQuery::AuthsOfUser(target));
    let (t, q) = read_of(rig.answer(
        t,
        ReadAnswer::Auths(vec![auth("basic:alice", target, AuthLevel::Auth)]),
    ));
    assert_eq!(q, ReadQuery::SubsOfUser(target));
    let subs = vec![
        sub(&p2p_topic(target, peer), target, AccessMode::P2P, false),
        sub("grpOwned", target, AccessMode::OWNER_FULL, false),
        sub("grpMember", target, AccessMode::PUBLIC, false),
        sub("grpLeft", target, AccessMode::OWNER_FULL, true),
    ];
    persist_of(rig.answer(t, ReadAnswer::Subs(subs)))
}

#[test]
fn deleting_the_own_account_tells_contacts_writes_and_ends_every_session() {
    let mut rig = Rig::new();
    let (target, peer) = (UserId(0x51), UserId(0x99));
    let (t, batch, before) = delete(&mut rig, (target, AuthLevel::Auth), target, peer);
    // P2P peers learn the user is gone; owned groups are deleted on their home shard.
    assert_eq!(before.len(), 2, "{before:?}");
    match &before[0] {
        AccountOut::UserPres { frame, targets } => {
            assert_eq!(targets, &vec![(peer, Vec::new())]);
            let v: Value = serde_json::from_slice(&frame.json()).expect("json");
            assert_eq!(v["pres"]["topic"], "me");
            assert_eq!(v["pres"]["src"], target.usr());
            assert_eq!(v["pres"]["what"], "gone");
        }
        other => panic!("{other:?}"),
    }
    match &before[1] {
        AccountOut::Route {
            topic,
            req:
                TopicRequest::Del {
                    hdr:
                        ReqHead {
                            req,
                            id: None,
                            as_seen,
                        },
                    what: DelWhat::Topic { hard: true },
                },
        } => {
            assert_eq!((topic.as_str(), as_seen.as_str()), ("grpOwned", "grpOwned"));
            assert_eq!(
                (req.sid, req.uid, req.level),
                (sid(1), target, AuthLevel::Auth)
            );
        }
        other => panic!("{other:?}"),
    }
    let mut deleted = user(target, UserState::Deleted);
    deleted.updated = NOW;
    deleted.tags.clear();
    assert_eq!(
        batch,
        vec![
            WriteOp::PutUser(deleted),
            WriteOp::DeleteAuth {
                unique: "basic:alice".into()
            },
            // The claims go with the account.
            WriteOp::ReleaseCred {
                unique: "email:a@b.c".into(),
                user: target
            },
        ]
    );
    let out = rig.persisted(t, Ok(()));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(code_text(&reply(&out[0]).1), (200, "ok"));
    // The requesting session is evicted too.
    assert!(matches!(out[1], AccountOut::Evict { uid, except: None } if uid == target));
}

#[test]
fn root_deleting_another_account_keeps_its_own_session() {
    let mut rig = Rig::new();
    let (root, target, peer) = (UserId(0x11), UserId(0x51), UserId(0x99));
    let (t, _, _) = delete(&mut rig, (root, AuthLevel::Root), target, peer);
    let out = rig.persisted(t, Ok(()));
    assert_eq!(code_text(&reply(&out[0]).1), (200, "ok"));
    assert!(
        matches!(out[1], AccountOut::Evict { uid, except: Some(s) } if uid == target && s == sid(1))
    );
}

#[test]
fn a_store_failing_a_change_write_is_500_and_nobody_is_evicted() {
    let mut rig = Rig::new();
    let (target, peer) = (UserId(0x51), UserId(0x99));
    let (t, _, _) = delete(&mut rig, (target, AuthLevel::Auth), target, peer);
    let (_, ctrl, effect) = only_reply(rig.persisted(t, Err(StoreError::Backend("disk".into()))));
    assert_eq!(
        (code_text(&ctrl), effect),
        ((500, "internal error"), AuthEffect::Unchanged)
    );
    // A write the writer refused (queue full) is 503.
    let (t, _, _) = delete(&mut rig, (target, AuthLevel::Auth), target, peer);
    let (_, ctrl, _) = only_reply(rig.step(|a, cx| a.refused(t, cx)));
    assert_eq!(code_text(&ctrl), (503, "service unavailable"));
    // A failed read before the write is 500 too.
    let (t, _) = read_of(rig.change(
        sid(1),
        (target, AuthLevel::Auth),
        target,
        AccountWhat::Delete,
    ));
    let (_, ctrl, _) =
        only_reply(rig.step(|a, cx| a.read_done(t, Err(StoreError::Backend("disk".into())), cx)));
    assert_eq!(code_text(&ctrl), (500, "internal error"));
    assert_eq!(rig.acc.n_pending(), 0);
}
