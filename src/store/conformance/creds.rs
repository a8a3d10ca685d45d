//! Conformance: credential claims. A confirmed credential belongs to one user, decided by the
//! write itself: `ClaimCred` is a precondition checked against every earlier batch of the same
//! `apply` call, `ReleaseCred` frees only the holder's claim, and ops of a batch act in order.

use super::fixtures::*;
use crate::ids::UserId;
use crate::store::{Store, StoreError, UserState, WriteOp};

fn claim(unique: &str, uid: u64) -> WriteOp {
    WriteOp::ClaimCred {
        unique: unique.into(),
        user: UserId(uid),
    }
}

fn release(unique: &str, uid: u64) -> WriteOp {
    WriteOp::ReleaseCred {
        unique: unique.into(),
        user: UserId(uid),
    }
}

fn owner(s: &dyn Store, unique: &str) -> Option<u64> {
    s.cred_owner(unique).unwrap().map(|u| u.0)
}

fn is_conflict(r: &Result<(), StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

/// A claim is held until its holder releases it; a release by anyone else changes nothing;
/// once released, another user may claim it. Credentials match whole.
pub(crate) fn a_claim_is_held_until_its_holder_releases_it(s: &dyn Store) {
    const ALICE: &str = "email:alice@example.com";
    assert_eq!(owner(s, ALICE), None);
    apply_ok(s, vec![claim(ALICE, 1)]);
    assert_eq!(owner(s, ALICE), Some(1));
    // Neither a prefix, an extension nor another method is the same credential.
    assert_eq!(owner(s, "email:alice@example"), None);
    assert_eq!(owner(s, "email:alice@example.com.au"), None);
    assert_eq!(owner(s, "tel:alice@example.com"), None);
    apply_ok(s, vec![claim("email:alice@example.com.au", 2)]);
    assert_eq!(owner(s, ALICE), Some(1));

    let r = s.apply(&[vec![claim(ALICE, 2)]]);
    assert!(is_conflict(&r[0]), "{r:?}");
    apply_ok(s, vec![release(ALICE, 2)]);
    assert_eq!(owner(s, ALICE), Some(1));
    apply_ok(s, vec![release("email:nobody@example.com", 1)]);
    assert_eq!(owner(s, "email:nobody@example.com"), None);

    apply_ok(s, vec![release(ALICE, 1)]);
    assert_eq!(owner(s, ALICE), None);
    apply_ok(s, vec![release(ALICE, 1)]);
    apply_ok(s, vec![claim(ALICE, 2)]);
    assert_eq!(owner(s, ALICE), Some(2));
    assert_eq!(owner(s, "email:alice@example.com.au"), Some(2));
}

/// Two batches of one `apply` call (one transaction) claiming the same credential for
/// different users: the first wins, the second is skipped whole, the others commit.
pub(crate) fn claims_conflict_across_batches_of_one_apply(s: &dyn Store) {
    let r = s.apply(&[
        vec![WriteOp::CreateUser(user(1)), claim("email:a@x.org", 1)],
        vec![WriteOp::CreateUser(user(2)), claim("email:a@x.org", 2)],
        vec![WriteOp::CreateUser(user(3)), claim("tel:+15550003", 3)],
        // Claims of one batch are checked together: one taken credential fails them all.
        vec![claim("tel:+15550004", 4), claim("tel:+15550003", 4)],
    ]);
    assert_eq!(r[0], Ok(()));
    assert!(is_conflict(&r[1]), "{r:?}");
    assert_eq!(r[2], Ok(()));
    assert!(is_conflict(&r[3]), "{r:?}");
    assert_eq!(owner(s, "email:a@x.org"), Some(1));
    assert_eq!(owner(s, "tel:+15550003"), Some(3));
    assert_eq!(owner(s, "tel:+15550004"), None);
    assert!(s.user(UserId(1)).unwrap().is_some());
    assert_eq!(s.user(UserId(2)).unwrap(), None);
    assert!(s.user(UserId(3)).unwrap().is_some());

    // A later call sees the committed claims too.
    let r = s.apply(&[vec![claim("email:a@x.org", 2)]]);
    assert!(is_conflict(&r[0]), "{r:?}");
    assert_eq!(owner(s, "email:a@x.org"), Some(1));
}

/// Claiming a credential one already holds is a no-op, in one batch, across the batches of
/// one call, and across calls.
pub(crate) fn a_user_may_claim_its_own_credential_again(s: &dyn Store) {
    apply_ok(
        s,
        vec![claim("email:b@x.org", 1), claim("email:b@x.org", 1)],
    );
    let r = s.apply(&[
        vec![claim("email:b@x.org", 1)],
        vec![claim("email:b@x.org", 1), claim("tel:+15550001", 1)],
    ]);
    assert_eq!(r, vec![Ok(()), Ok(())]);
    apply_ok(s, vec![claim("email:b@x.org", 1)]);
    assert_eq!(owner(s, "email:b@x.org"), Some(1));
    assert_eq!(owner(s, "tel:+15550001"), Some(1));
}

/// Within a batch claims and releases act in op order: release then claim moves a credential
/// to another user, claim then release leaves it free, and a release by a non-holder does not
/// make room for a claim. Across batches of one call, a release frees it for the next batch.
pub(crate) fn claims_and_releases_act_in_op_order(s: &dyn Store) {
    apply_ok(s, vec![claim("email:c@x.org", 1)]);
    apply_ok(
        s,
        vec![release("email:c@x.org", 1), claim("email:c@x.org", 2)],
    );
    assert_eq!(owner(s, "email:c@x.org"), Some(2));

    apply_ok(
        s,
        vec![claim("email:d@x.org", 3), release("email:d@x.org", 3)],
    );
    assert_eq!(owner(s, "email:d@x.org"), None);

    let r = s.apply(&[
        vec![claim("email:c@x.org", 3), release("email:c@x.org", 2)],
        vec![release("email:c@x.org", 3), claim("email:c@x.org", 3)],
        // A claim, then a release by someone else: the claim stands.
        vec![claim("email:e@x.org", 4), release("email:e@x.org", 5)],
    ]);
    assert!(is_conflict(&r[0]), "{r:?}");
    assert!(is_conflict(&r[1]), "{r:?}");
    assert_eq!(r[2], Ok(()));
    assert_eq!(owner(s, "email:c@x.org"), Some(2));
    assert_eq!(owner(s, "email:e@x.org"), Some(4));

    let r = s.apply(&[
        vec![release("email:c@x.org", 2)],
        vec![claim("email:c@x.org", 3)],
    ]);
    assert_eq!(r, vec![Ok(()), Ok(())]);
    assert_eq!(owner(s, "email:c@x.org"), Some(3));
}

/// Claims are kept by `ClaimCred` and `ReleaseCred` alone: storing a user's confirmed creds
/// claims nothing, and marking the user deleted releases nothing.
pub(crate) fn claims_are_kept_only_by_claim_and_release(s: &dyn Store) {
    let alice = user(1); // Confirmed `email:alice@example.com`, unconfirmed `tel:…`.
    assert!(alice.creds.iter().any(|c| c.done));
    apply_ok(s, vec![WriteOp::CreateUser(alice.clone())]);
    assert_eq!(owner(s, "email:alice@example.com"), None);

    apply_ok(s, vec![claim("email:alice@example.com", 1)]);
    let mut gone = alice;
    gone.state = UserState::Deleted;
    gone.creds.clear();
    apply_ok(s, vec![WriteOp::PutUser(gone)]);
    assert_eq!(owner(s, "email:alice@example.com"), Some(1));
}
