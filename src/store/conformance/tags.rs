//! Conformance: the tag index follows the tags of users and topics, and `find_tags` ranks owners
//! by how many of the asked tags they carry.

use super::fixtures::*;
use crate::ids::UserId;
use crate::store::{Store, UserState, WriteOp};

/// The index follows every put of a user or topic, whatever the user's state: tags removed go,
/// tags added come, a tag listed twice is one entry, and the last put of a batch wins.
pub(crate) fn the_tag_index_follows_tag_changes_of_users_and_topics(s: &dyn Store) {
    let usr = |id: u64| UserId(id).usr();
    apply_ok(s, vec![WriteOp::CreateUser(tagged_user(1, &["a", "b"]))]);
    assert_eq!(find(s, &["a"], 10), vec![(usr(1), strings(&["a"]))]);
    apply_ok(s, vec![WriteOp::PutUser(tagged_user(1, &["b", "c"]))]);
    assert!(find(s, &["a"], 10).is_empty());
    assert_eq!(find(s, &["b"], 10), vec![(usr(1), strings(&["b"]))]);
    assert_eq!(find(s, &["c"], 10), vec![(usr(1), strings(&["c"]))]);
    // The state does not matter to the index.
    let mut gone = tagged_user(1, &["b", "c"]);
    gone.state = UserState::Deleted;
    apply_ok(s, vec![WriteOp::PutUser(gone)]);
    assert_eq!(find(s, &["c"], 10).len(), 1);
    apply_ok(s, vec![WriteOp::PutUser(tagged_user(1, &[]))]);
    assert!(find(s, &["a", "b", "c"], 10).is_empty());
    // A tag listed twice is one entry, removed once.
    apply_ok(s, vec![WriteOp::PutUser(tagged_user(1, &["d", "d"]))]);
    assert_eq!(find(s, &["d"], 10), vec![(usr(1), strings(&["d"]))]);
    apply_ok(s, vec![WriteOp::PutUser(tagged_user(1, &["e"]))]);
    assert!(find(s, &["d"], 10).is_empty());

    // Several puts in one batch: the last one wins.
    apply_ok(
        s,
        vec![
            WriteOp::PutUser(tagged_user(2, &["p"])),
            WriteOp::PutUser(tagged_user(2, &["q"])),
        ],
    );
    assert!(find(s, &["p"], 10).is_empty());
    assert_eq!(find(s, &["q"], 10), vec![(usr(2), strings(&["q"]))]);

    // Topics.
    apply_ok(s, vec![WriteOp::CreateTopic(tagged_topic("grpT", &["x"]))]);
    assert_eq!(find(s, &["x"], 10), vec![("grpT".into(), strings(&["x"]))]);
    apply_ok(s, vec![WriteOp::PutTopic(tagged_topic("grpT", &["y"]))]);
    assert!(find(s, &["x"], 10).is_empty());
    assert_eq!(find(s, &["y"], 10), vec![("grpT".into(), strings(&["y"]))]);
}

/// `find_tags` matches whole tags, lists each owner's matches in the order asked, ranks owners
/// by how many they carry (then by name), and stops at the limit.
pub(crate) fn find_tags_matches_several_tags_most_matches_first_within_a_limit(s: &dyn Store) {
    let usr = |id: u64| UserId(id).usr();
    apply_ok(
        s,
        vec![
            WriteOp::CreateUser(tagged_user(1, &["alpha", "beta"])),
            WriteOp::CreateUser(tagged_user(2, &["beta"])),
            WriteOp::CreateUser(tagged_user(3, &["gamma", "alpha", "beta"])),
            WriteOp::CreateUser(tagged_user(4, &["alphabet", "al"])),
            WriteOp::CreateTopic(tagged_topic("grpX", &["beta", "gamma"])),
            WriteOp::CreateTopic(tagged_topic("grpY", &["delta"])),
        ],
    );
    let all = find(s, &["gamma", "beta", "alpha"], 10);
    assert_eq!(
        all,
        vec![
            (usr(3), strings(&["gamma", "beta", "alpha"])),
            ("grpX".into(), strings(&["gamma", "beta"])),
            (usr(1), strings(&["beta", "alpha"])),
            (usr(2), strings(&["beta"])),
        ]
    );
    // The matched tags follow the order asked for.
    assert_eq!(
        find(s, &["alpha", "gamma"], 10),
        vec![
            (usr(3), strings(&["alpha", "gamma"])),
            ("grpX".into(), strings(&["gamma"])),
            (usr(1), strings(&["alpha"])),
        ]
    );
    assert_eq!(find(s, &["gamma", "beta", "alpha"], 2), all[..2].to_vec());
    assert_eq!(find(s, &["gamma", "beta", "alpha"], 4), all);
    assert!(find(s, &["gamma", "beta", "alpha"], 0).is_empty());
    // Duplicates asked for count once; tags match whole, not by prefix.
    assert_eq!(
        find(s, &["delta", "delta"], 10),
        vec![("grpY".into(), strings(&["delta"]))]
    );
    assert_eq!(find(s, &["al"], 10), vec![(usr(4), strings(&["al"]))]);
    assert!(find(s, &["alph", "delt", ""], 10).is_empty());
    assert!(find(s, &[], 10).is_empty());
}
