//! Sign-up: basic and anonymous, the records written, the reply after the write, and the
//! refusals (validation, a taken login or credential, a colliding user id, a failing store).

use super::*;

#[test]
fn basic_sign_up_hashes_writes_and_replies_only_once_durable() {
    let mut rig = Rig::new();
    let mut req = basic_request("Alice:secret1", true);
    req.tags = vec!["Travel".into()];
    req.public =
        Some(serde_json::value::RawValue::from_string(r#"{"fn":"Alice"}"#.into()).unwrap());
    // No read before the hash: the login's uniqueness is the write's precondition.
    let (t, job) = hash_of(rig.create(sid(1), req));
    match job {
        HashJob::Hash { password, cost } => assert_eq!((password.as_str(), cost), ("secret1", 4)),
        other => panic!("{other:?}"),
    }
    let (t, batch, before) =
        persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"$2b$04$new".to_vec()))));
    assert!(before.is_empty(), "nothing before the write: {before:?}");
    let [WriteOp::CreateUser(u), WriteOp::CreateAuth(a)] = &batch[..] else {
        panic!("{batch:?}");
    };
    assert_eq!(u.id.0 & 1, 1, "user ids are odd");
    assert_eq!((u.created, u.updated, u.state), (NOW, NOW, UserState::Ok));
    assert_eq!(u.tags, vec!["basic:alice", "travel"]);
    assert_eq!(u.public.as_deref(), Some(r#"{"fn":"Alice"}"#));
    assert_eq!(u.access.auth, AccessMode::USER_AUTH_DEFAULT);
    assert_eq!(
        a,
        &AuthRecord {
            unique: "basic:alice".into(),
            user: u.id,
            scheme: "basic".into(),
            level: AuthLevel::Auth,
            secret: b"$2b$04$new".to_vec(),
            expires: None,
        }
    );
    let uid = u.id;
    let (s, ctrl, effect) = only_reply(rig.persisted(t, Ok(())));
    assert_eq!(s, sid(1));
    assert_eq!(code_text(&ctrl), (200, "ok"));
    assert_eq!(ctrl["id"], "a1");
    assert_eq!(effect, AuthEffect::Authenticated(uid, AuthLevel::Auth));
    let p = &ctrl["params"];
    assert_eq!(p["user"], uid.usr());
    assert_eq!(p["authlvl"], "auth");
    assert_eq!(token_user(&ctrl), (uid, AuthLevel::Auth));
    assert_eq!(p["expires"], rfc3339(NOW.plus_ms(LIFETIME_SECS * 1000)));
    assert_eq!(p["desc"]["created"], rfc3339(NOW));
    assert_eq!(p["desc"]["defacs"]["auth"], "JRWPAS");
    assert_eq!(p["desc"]["public"]["fn"], "Alice");
    assert_eq!(rig.acc.n_pending(), 0);
}

#[test]
fn default_access_given_at_sign_up_is_masked_to_the_p2p_mode() {
    for (auth, anon, want) in [
        ("JRWPASDO", "JRWPASDO", ("JRWPA", "JRWPA")),
        ("JRW", "N", ("JRWA", "N")),
        ("", "JR", ("JRWPAS", "JRA")),
    ] {
        let mut rig = Rig::new();
        let mut req = basic_request("alice:secret1", true);
        req.auth_defacs = Some(auth.into());
        req.anon_defacs = Some(anon.into());
        let (t, _) = hash_of(rig.create(sid(1), req));
        let (_, batch, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"h".to_vec()))));
        let WriteOp::CreateUser(u) = &batch[0] else {
            panic!("{batch:?}")
        };
        assert_eq!(
            (u.access.auth.to_string(), u.access.anon.to_string()),
            (want.0.to_owned(), want.1.to_owned()),
            "{auth} {anon}"
        );
    }
}

#[test]
fn sign_up_without_login_is_201_and_leaves_the_session_as_it_was() {
    let mut rig = Rig::new();
    let (t, _) = hash_of(rig.create(sid(1), basic_request("bob:secret1", false)));
    let (t, batch, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"h".to_vec()))));
    let WriteOp::CreateUser(u) = &batch[0] else {
        panic!("{batch:?}")
    };
    let uid = u.id;
    let (_, ctrl, effect) = only_reply(rig.persisted(t, Ok(())));
    assert_eq!(code_text(&ctrl), (201, "created"));
    assert_eq!(ctrl["params"]["user"], uid.usr());
    assert!(ctrl["params"].get("token").is_none());
    assert_eq!(effect, AuthEffect::Finished);
}

#[test]
fn a_taken_login_is_409_from_the_write_precondition() {
    let mut rig = Rig::new();
    let (t, _) = hash_of(rig.create(sid(1), basic_request("alice:secret1", true)));
    let (t, _, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"h".to_vec()))));
    let conflict = StoreError::Conflict("login basic:alice exists".into());
    let (_, ctrl, effect) = only_reply(rig.persisted(t, Err(conflict)));
    assert_eq!(code_text(&ctrl), (409, "duplicate credential"));
    assert_eq!(ctrl["params"]["what"], "auth");
    assert_eq!(effect, AuthEffect::Finished);
    assert_eq!(rig.acc.n_pending(), 0);
}

#[test]
fn a_colliding_user_id_is_written_again_under_fresh_entropy() {
    let mut rig = Rig::new();
    let (t, _) = hash_of(rig.create(sid(1), basic_request("alice:secret1", true)));
    let (t, first, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"h".to_vec()))));
    let WriteOp::CreateUser(u) = &first[0] else {
        panic!("{first:?}")
    };
    let taken = u.id;
    rig.entropy = 0xdead_beef;
    let conflict = StoreError::Conflict(format!("user {taken} exists"));
    let (t, second, before) = persist_of(rig.persisted(t, Err(conflict)));
    assert!(before.is_empty(), "no reply yet: {before:?}");
    let [WriteOp::CreateUser(u), WriteOp::CreateAuth(a)] = &second[..] else {
        panic!("{second:?}");
    };
    assert_ne!(u.id, taken);
    assert_eq!(a.user, u.id);
    let uid = u.id;
    let (_, ctrl, _) = only_reply(rig.persisted(t, Ok(())));
    assert_eq!(code_text(&ctrl), (200, "ok"));
    assert_eq!(ctrl["params"]["user"], uid.usr());
}

#[test]
fn user_ids_colliding_again_and_again_end_in_500() {
    let mut rig = Rig::new();
    let (t, _) = hash_of(rig.create(sid(1), basic_request("alice:secret1", true)));
    let mut out = rig.hashed(t, HashOutcome::Hashed(Ok(b"h".to_vec())));
    for n in 1.. {
        let (t, batch, _) = match out.last() {
            Some(AccountOut::Persist { .. }) => persist_of(out),
            _ => {
                assert_eq!(n, 5, "four writes were tried");
                break;
            }
        };
        let WriteOp::CreateUser(u) = &batch[0] else {
            panic!("{batch:?}")
        };
        rig.entropy += 1;
        out = rig.persisted(
            t,
            Err(StoreError::Conflict(format!("user {} exists", u.id))),
        );
    }
    let (_, ctrl, effect) = only_reply(out);
    assert_eq!(
        (code_text(&ctrl), effect),
        ((500, "internal error"), AuthEffect::Finished)
    );
    assert_eq!(rig.acc.n_pending(), 0);
}

#[test]
fn anonymous_sign_up_writes_at_once_and_hands_out_a_token() {
    for login in [false, true] {
        let mut rig = Rig::new();
        let mut req = basic_request("", login);
        req.scheme = "anonymous".into();
        let (t, batch, before) = persist_of(rig.create(sid(1), req));
        assert!(before.is_empty(), "{before:?}");
        let [WriteOp::CreateUser(u), WriteOp::CreateAuth(a)] = &batch[..] else {
            panic!("{batch:?}");
        };
        assert!(
            a.unique.starts_with("anonymous:") && a.unique.len() == 26,
            "{}",
            a.unique
        );
        assert_eq!((a.scheme.as_str(), a.level), ("anonymous", AuthLevel::Anon));
        assert!(a.secret.is_empty());
        assert!(u.tags.is_empty(), "no basic: tag: {:?}", u.tags);
        let uid = u.id;
        let (_, ctrl, effect) = only_reply(rig.persisted(t, Ok(())));
        assert_eq!(code_text(&ctrl), (200, "ok"));
        assert_eq!(ctrl["params"]["authlvl"], "anon");
        assert_eq!(token_user(&ctrl), (uid, AuthLevel::Anon));
        let want = if login {
            AuthEffect::Authenticated(uid, AuthLevel::Anon)
        } else {
            AuthEffect::Finished
        };
        assert_eq!(effect, want);
    }
}

#[test]
fn credentials_are_claimed_by_the_creation_write_and_a_taken_one_is_409() {
    let mut rig = Rig::new();
    let mut req = basic_request("alice:secret1", true);
    req.creds = vec![
        ("Email".into(), " A@b.c ".into()),
        ("tel".into(), "+1555".into()),
    ];
    // No read before the write: the claims are its preconditions.
    let (t, _) = hash_of(rig.create(sid(1), req));
    let (t, batch, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"h".to_vec()))));
    let [WriteOp::CreateUser(u), WriteOp::CreateAuth(_), claims @ ..] = &batch[..] else {
        panic!("{batch:?}");
    };
    let uid = u.id;
    assert_eq!(
        claims,
        &[
            WriteOp::ClaimCred {
                unique: "email:a@b.c".into(),
                user: uid
            },
            WriteOp::ClaimCred {
                unique: "tel:+1555".into(),
                user: uid
            },
        ]
    );
    assert_eq!(u.tags, vec!["basic:alice", "email:a@b.c", "tel:+1555"]);
    let confirmed = |method: &str, value: &str| CredRecord {
        method: method.into(),
        value: value.into(),
        done: true,
    };
    assert_eq!(
        u.creds,
        vec![confirmed("email", "a@b.c"), confirmed("tel", "+1555")]
    );
    let conflict = StoreError::Conflict("credential tel:+1555 is claimed by another user".into());
    let (_, ctrl, effect) = only_reply(rig.persisted(t, Err(conflict)));
    assert_eq!(code_text(&ctrl), (409, "duplicate credential"));
    assert_eq!(ctrl["params"]["what"], "tel");
    assert_eq!(effect, AuthEffect::Finished);
}

#[test]
fn conflicts_name_their_key_whole() {
    assert!(crate::account::create::names(
        "user usrAQAAAAAAAAA exists",
        "usrAQAAAAAAAAA"
    ));
    assert!(crate::account::create::names(
        "login basic:alice exists",
        "basic:alice"
    ));
    assert!(!crate::account::create::names(
        "login basic:alice2 exists",
        "basic:alice"
    ));
    assert!(crate::account::create::names(
        "credential email:a b@c.d is claimed by another user",
        "email:a b@c.d"
    ));
    assert!(!crate::account::create::names(
        "credential email:xa@b.c is claimed",
        "email:a@b.c"
    ));
    assert!(!crate::account::create::names("anything", ""));
}

#[test]
fn a_root_login_signs_up_at_root_level() {
    let mut rig = Rig::new();
    let (t, _) = hash_of(rig.create(sid(1), basic_request("root:secret1", true)));
    let (_, batch, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"h".to_vec()))));
    let WriteOp::CreateAuth(a) = &batch[1] else {
        panic!("{batch:?}")
    };
    assert_eq!(a.level, AuthLevel::Root);
}

/// Signs `alice` up with `edit` applied; the request must be refused at once: (code, text,
/// `params.what`).
fn refusal(edit: impl FnOnce(&mut AccountRequest)) -> (u64, String, Option<String>) {
    let mut rig = Rig::new();
    let mut req = basic_request("alice:secret1", true);
    edit(&mut req);
    let (_, ctrl, effect) = only_reply(rig.create(sid(1), req));
    assert_eq!(effect, AuthEffect::Finished);
    assert_eq!(rig.acc.n_pending(), 0);
    let (code, text) = code_text(&ctrl);
    let what = ctrl["params"]["what"].as_str().map(str::to_owned);
    (code, text.to_owned(), what)
}

#[test]
fn invalid_sign_ups_are_refused_at_once() {
    let r = |code, text: &str, what: Option<&str>| (code, text.to_owned(), what.map(str::to_owned));
    assert_eq!(
        refusal(|q| q.secret = b"alice".to_vec()),
        r(400, "malformed", None)
    );
    let policy = r(422, "policy violation", Some("auth"));
    assert_eq!(refusal(|q| q.secret = b"alice:x".to_vec()), policy);
    assert_eq!(refusal(|q| q.secret = b"-a-:secret1".to_vec()), policy);
    let tags = |q: &mut AccountRequest| q.tags = vec!["email:x@y.z".into()];
    assert_eq!(refusal(tags), r(403, "permission denied", Some("tags")));
    let fax = |q: &mut AccountRequest| q.creds = vec![("Fax".into(), "1".into())];
    assert_eq!(refusal(fax), r(400, "malformed", Some("fax")));
    let empty = |q: &mut AccountRequest| q.creds = vec![("email".into(), " ".into())];
    assert_eq!(refusal(empty), r(400, "malformed", Some("email")));
    let defacs = |q: &mut AccountRequest| q.auth_defacs = Some("JQ".into());
    assert_eq!(refusal(defacs), r(400, "malformed", None));
}

#[test]
fn a_store_failing_the_creation_write_is_500_and_a_full_queue_503() {
    let mut rig = Rig::new();
    let (t, _) = hash_of(rig.create(sid(1), basic_request("alice:secret1", true)));
    let (t, _, _) = persist_of(rig.hashed(t, HashOutcome::Hashed(Ok(b"h".to_vec()))));
    let (_, ctrl, effect) = only_reply(rig.persisted(t, Err(StoreError::Backend("disk".into()))));
    assert_eq!(code_text(&ctrl), (500, "internal error"));
    assert_eq!(effect, AuthEffect::Finished);

    let (t, _) = hash_of(rig.create(sid(1), basic_request("alice:secret1", true)));
    let (_, ctrl, _) = only_reply(rig.step(|a, cx| a.refused(t, cx)));
    assert_eq!(code_text(&ctrl), (503, "service unavailable"));
    let (t, _) = hash_of(rig.create(sid(1), basic_request("alice:secret1", true)));
    let (_, ctrl, _) = only_reply(rig.hashed(t, HashOutcome::Hashed(Err(AuthError::Busy))));
    assert_eq!(code_text(&ctrl), (500, "internal error"));
    assert_eq!(rig.acc.n_pending(), 0);
}
