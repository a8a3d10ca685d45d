//! `{login}` and `{acc}`: validated and decoded in the session, then handed to the shard as login
//! or account requests.

use serde_json::json;

use super::harness::*;
use crate::access::AuthLevel;
use crate::session::*;

#[test]
fn login_is_validated_before_it_reaches_the_shard() {
    let mut h = Harness::versioned();
    // Standard base64, with and without padding; the scheme name is case-insensitive.
    for (secret, plain) in [
        ("YWxpY2U6c2VjcmV0", "alice:secret"),
        ("YWxpY2U6c2VjcmU=", "alice:secre"),
        ("YWxpY2U6c2VjcmU", "alice:secre"),
    ] {
        let out =
            h.feed(&json!({"login": {"id": "l", "scheme": "Basic", "secret": secret}}).to_string());
        assert_eq!(out.len(), 1);
        match &out[0] {
            SessionOut::Login { id, scheme, secret } => {
                assert_eq!((id.as_deref(), scheme.as_str()), (Some("l"), "basic"));
                assert_eq!(secret.as_slice(), plain.as_bytes());
            }
            other => panic!("not a login: {other:?}"),
        }
        // A second attempt while the first is pending waits its turn.
        assert_ctrl(
            &h.feed(r#"{"login":{"id":"m","scheme":"token","secret":"AAAA"}}"#),
            409,
            "command out of sequence",
            Some("m"),
            None,
        );
        h.s.auth_finished();
    }
    let out = h.feed(r#"{"login":{"scheme":"token","secret":"YWI"}}"#);
    assert!(matches!(&out[..], [SessionOut::Login { secret, .. }] if secret == b"ab"));
    h.s.auth_finished();
    let cases: &[(&str, u16, &str)] = &[
        (
            r#"{"login":{"id":"l","scheme":"oauth","secret":"YWI="}}"#,
            401,
            "unknown authentication scheme",
        ),
        (
            r#"{"login":{"id":"l","scheme":"basic","secret":"not base64!"}}"#,
            400,
            "malformed",
        ),
        (r#"{"login":{"id":"l","scheme":"basic"}}"#, 400, "malformed"),
        (
            r#"{"login":{"id":"l","scheme":"anonymous","secret":"YWI="}}"#,
            501,
            "not implemented",
        ),
    ];
    for (frame, code, text) in cases {
        let c = ctrl(&h.feed(frame));
        assert_eq!(
            (c["code"].as_u64(), c["text"].as_str()),
            (Some(u64::from(*code)), Some(*text)),
            "{frame}"
        );
        assert_eq!(c["id"], "l");
    }
    h.s.authenticated(ALICE, AuthLevel::Auth);
    assert_ctrl(
        &h.feed(r#"{"login":{"id":"x","scheme":"basic","secret":"YWxpY2U6c2VjcmV0"}}"#),
        409,
        "already authenticated",
        Some("x"),
        None,
    );
}

#[test]
fn an_unknown_scheme_is_reported_even_without_a_secret() {
    let mut h = Harness::versioned();
    assert_ctrl(
        &h.feed(r#"{"login":{"id":"l","scheme":"oauth"}}"#),
        401,
        "unknown authentication scheme",
        Some("l"),
        None,
    );
}

#[test]
fn acc_new_becomes_an_account_request() {
    let mut h = Harness::versioned();
    let out = h.feed(
        r#"{"acc":{"id":"a","user":"newXYZ","scheme":"basic","secret":"Ym9iOnB3ZA==","login":true,
            "tags":["t1"],"desc":{"public":{"fn":"Bob"},"private":{"x":1},"defacs":{"auth":"JRWP","anon":"N"}}}}"#,
    );
    assert_eq!(out.len(), 1);
    let SessionOut::CreateAccount(req) = &out[0] else {
        panic!("not an account request: {:?}", out[0])
    };
    assert_eq!(
        (req.id.as_deref(), req.scheme.as_str(), req.login),
        (Some("a"), "basic", true)
    );
    assert_eq!(req.secret, b"bob:pwd");
    assert_eq!(req.tags, ["t1"]);
    assert_eq!(
        req.public.as_ref().map(|r| r.get()),
        Some(r#"{"fn":"Bob"}"#)
    );
    assert_eq!(req.private.as_ref().map(|r| r.get()), Some(r#"{"x":1}"#));
    assert_eq!(
        (req.auth_defacs.as_deref(), req.anon_defacs.as_deref()),
        (Some("JRWP"), Some("N"))
    );
    // With login pending, another login waits.
    assert_ctrl(
        &h.feed(r#"{"login":{"id":"l","scheme":"basic","secret":"YTpi"}}"#),
        409,
        "command out of sequence",
        Some("l"),
        None,
    );
    h.s.authenticated(BOB, AuthLevel::Auth);
    let cases: &[(&str, u16, &str)] = &[
        (
            r#"{"acc":{"id":"a","user":"newQ","scheme":"basic","secret":"YTpi","login":true}}"#,
            409,
            "already authenticated",
        ),
        (
            r#"{"acc":{"id":"a","user":"newQ","scheme":"magic","secret":"YTpi"}}"#,
            400,
            "malformed",
        ),
        (
            r#"{"acc":{"id":"a","user":"newQ","scheme":"basic","secret":"%%%"}}"#,
            400,
            "malformed",
        ),
        (
            r#"{"acc":{"id":"a","scheme":"token","secret":"YTpi"}}"#,
            501,
            "not implemented",
        ),
    ];
    for (frame, code, text) in cases {
        let c = ctrl(&h.feed(frame));
        assert_eq!(
            (c["code"].as_u64(), c["text"].as_str()),
            (Some(u64::from(*code)), Some(*text)),
            "{frame}"
        );
    }
}
