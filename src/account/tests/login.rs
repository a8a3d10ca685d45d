//! `{login}`: basic (unknown login, wrong password, root level, unusable account, full hash
//! queue) and token (expired, malformed, good).

use super::*;

#[test]
fn basic_login_unknown_login_and_wrong_password_are_401() {
    let mut rig = Rig::new();
    let (t, q) = read_of(rig.login(sid(1), "basic", b"Alice:secret1"));
    assert_eq!(q, ReadQuery::Auth("basic:alice".into()));
    // An unknown name is checked on the hash pool too, against the dummy hash at the
    // configured cost, so it is not answered sooner than a wrong password.
    let (t, job) = hash_of(rig.answer(t, ReadAnswer::Auth(None)));
    let cost = rules().bcrypt_cost;
    match job {
        HashJob::Verify { password, hash } => {
            assert_eq!(password, "secret1");
            assert_eq!(hash, crate::auth::basic::dummy_hash(cost));
        }
        other => panic!("{other:?}"),
    }
    // Whatever the comparison says (it cannot match), the answer is 401.
    let (_, ctrl, effect) = only_reply(rig.hashed(t, HashOutcome::Verified(true)));
    assert_eq!(code_text(&ctrl), (401, "authentication failed"));
    assert_eq!(ctrl["id"], "l1");
    assert_eq!(effect, AuthEffect::Finished);

    let uid = UserId(0x51);
    let (t, _) = read_of(rig.login(sid(1), "basic", b"alice:wrong"));
    let found = ReadAnswer::Auth(Some(auth("basic:alice", uid, AuthLevel::Auth)));
    let (t, job) = hash_of(rig.answer(t, found));
    match job {
        HashJob::Verify { password, hash } => {
            assert_eq!(
                (password.as_str(), &hash[..]),
                ("wrong", &b"$2b$04$stored"[..])
            )
        }
        other => panic!("{other:?}"),
    }
    let (_, ctrl, _) = only_reply(rig.hashed(t, HashOutcome::Verified(false)));
    assert_eq!(code_text(&ctrl), (401, "authentication failed"));

    let (_, ctrl, _) = only_reply(rig.login(sid(1), "basic", b"no-colon"));
    assert_eq!(code_text(&ctrl), (400, "malformed"));
    let (t, _) = read_of(rig.login(sid(1), "basic", b"alice:x"));
    let (_, ctrl, _) =
        only_reply(rig.step(|a, cx| a.read_done(t, Err(StoreError::Backend("disk".into())), cx)));
    assert_eq!(code_text(&ctrl), (500, "internal error"));
    assert_eq!(rig.acc.n_pending(), 0);
}

#[test]
fn basic_login_ok_mints_a_token_and_authenticates() {
    let mut rig = Rig::new();
    let uid = UserId(0x51);
    let (t, _) = read_of(rig.login(sid(1), "basic", b"alice:secret1"));
    let found = ReadAnswer::Auth(Some(auth("basic:alice", uid, AuthLevel::Auth)));
    let (t, _) = hash_of(rig.answer(t, found));
    let (t, q) = read_of(rig.hashed(t, HashOutcome::Verified(true)));
    assert_eq!(q, ReadQuery::User(uid));
    let (s, ctrl, effect) =
        only_reply(rig.answer(t, ReadAnswer::User(Some(user(uid, UserState::Ok)))));
    assert_eq!(s, sid(1));
    assert_eq!(code_text(&ctrl), (200, "ok"));
    assert_eq!(ctrl["params"]["user"], uid.usr());
    assert_eq!(ctrl["params"]["authlvl"], "auth");
    assert_eq!(
        ctrl["params"]["expires"],
        rfc3339(NOW.plus_ms(LIFETIME_SECS * 1000))
    );
    assert_eq!(token_user(&ctrl), (uid, AuthLevel::Auth));
    assert_eq!(effect, AuthEffect::Authenticated(uid, AuthLevel::Auth));
}

#[test]
fn basic_login_of_a_root_user_suspended_or_missing_account() {
    let mut rig = Rig::new();
    let uid = UserId(0x77);
    // `auth.root_users` raise the stored level.
    let (t, _) = read_of(rig.login(sid(1), "basic", b"root:secret1"));
    let (t, _) = hash_of(rig.answer(
        t,
        ReadAnswer::Auth(Some(auth("basic:root", uid, AuthLevel::Auth))),
    ));
    let (t, _) = read_of(rig.hashed(t, HashOutcome::Verified(true)));
    let (_, ctrl, effect) =
        only_reply(rig.answer(t, ReadAnswer::User(Some(user(uid, UserState::Ok)))));
    assert_eq!(ctrl["params"]["authlvl"], "root");
    assert_eq!(effect, AuthEffect::Authenticated(uid, AuthLevel::Root));

    for (answer, code, text) in [
        (
            ReadAnswer::User(Some(user(uid, UserState::Suspended))),
            403,
            "permission denied",
        ),
        (ReadAnswer::User(None), 404, "user not found"),
    ] {
        let (t, _) = read_of(rig.login(sid(1), "basic", b"bob:secret1"));
        let (t, _) = hash_of(rig.answer(
            t,
            ReadAnswer::Auth(Some(auth("basic:bob", uid, AuthLevel::Auth))),
        ));
        let (t, _) = read_of(rig.hashed(t, HashOutcome::Verified(true)));
        let (_, ctrl, effect) = only_reply(rig.answer(t, answer));
        assert_eq!(code_text(&ctrl), (code, text));
        assert_eq!(effect, AuthEffect::Finished);
    }
    // A full hash queue.
    let (t, _) = read_of(rig.login(sid(1), "basic", b"bob:secret1"));
    let (t, _) = hash_of(rig.answer(
        t,
        ReadAnswer::Auth(Some(auth("basic:bob", uid, AuthLevel::Auth))),
    ));
    let (_, ctrl, _) = only_reply(rig.step(|a, cx| a.refused(t, cx)));
    assert_eq!(code_text(&ctrl), (503, "service unavailable"));
}

#[test]
fn token_login_expired_malformed_and_ok() {
    let mut rig = Rig::new();
    let uid = UserId(0x99);
    let old = NOW.0 - (LIFETIME_SECS + 1) * 1000;
    let (expired, _) = issuer().mint(uid, AuthLevel::Auth, UnixMillis(old));
    let (_, ctrl, effect) = only_reply(rig.login(sid(1), "token", &expired));
    assert_eq!(code_text(&ctrl), (401, "authentication failed"));
    assert_eq!(effect, AuthEffect::Finished);

    let (_, ctrl, _) = only_reply(rig.login(sid(1), "token", b"abc"));
    assert_eq!(code_text(&ctrl), (400, "malformed"));

    let (token, _) = issuer().mint(uid, AuthLevel::Auth, UnixMillis(NOW.0 - 1000));
    let (t, q) = read_of(rig.login(sid(1), "token", &token));
    assert_eq!(q, ReadQuery::User(uid));
    let (_, ctrl, effect) =
        only_reply(rig.answer(t, ReadAnswer::User(Some(user(uid, UserState::Ok)))));
    assert_eq!(code_text(&ctrl), (200, "ok"));
    assert_eq!(token_user(&ctrl), (uid, AuthLevel::Auth));
    assert_eq!(effect, AuthEffect::Authenticated(uid, AuthLevel::Auth));
}
