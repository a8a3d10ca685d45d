//! Conformance: reads as values. Every [`ReadQuery`] is asked twice, through the store's own
//! [`Store::read`] and through [`read::run`] over the store's primitives (the plan any store
//! without a better one uses), and both answers are checked: history pages with ranges and the
//! reader's soft deletions, several users at once, contact lists.

use super::fixtures::*;
use crate::access::AccessMode;
use crate::ids::{UnixMillis, UserId};
use crate::store::read::{self, ContactRow, ReadAnswer, ReadQuery};
use crate::store::{LastMessage, MessageQuery, Store, TopicRecord, UserState, WriteOp};

/// The answers of `s.read(q)` and `read::run(s, q)`, in that order.
fn both(s: &dyn Store, q: ReadQuery) -> [ReadAnswer; 2] {
    [s.read(&q).unwrap(), read::run(s, &q).unwrap()]
}

/// The seqs of a history page; both plans must give the same page.
fn history(
    s: &dyn Store,
    query: MessageQuery,
    ranges: &[(u64, u64)],
    soft_of: Option<u64>,
) -> Vec<u64> {
    let q = ReadQuery::History {
        topic: "grpA".into(),
        query,
        ranges: ranges.to_vec(),
        soft_of: soft_of.map(UserId),
    };
    let pages = both(s, q.clone()).map(|a| match a {
        ReadAnswer::Messages(m) => seqs(&m),
        other => panic!("{q:?} answered {other:?}"),
    });
    assert_eq!(pages[0], pages[1], "{q:?}");
    pages[0].clone()
}

/// A page with the caller's own exclusions.
fn excluding(limit: usize, exclude: &[(u64, u64)]) -> MessageQuery {
    MessageQuery {
        exclude: exclude.to_vec(),
        ..q(None, None, limit)
    }
}

/// `hi..=low`, newest first, without the seqs in `gaps`.
fn down(hi: u64, low: u64, gaps: &[u64]) -> Vec<u64> {
    (low..=hi).rev().filter(|i| !gaps.contains(i)).collect()
}

/// `History` keeps only the seqs inside a non-empty `ranges` (within the query's own bounds
/// and limit, newest first, no duplicates) and, with `soft_of`, leaves out every range that
/// user soft-deleted on this topic, but not another user's, nor the user's on another topic.
pub(crate) fn history_keeps_the_asked_ranges_and_drops_the_readers_soft_deletions(s: &dyn Store) {
    let mut setup: Vec<WriteOp> = (1..=20)
        .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
        .chain((1..=5).map(|i| WriteOp::AppendMessage(msg("grpB", i))))
        .collect();
    setup.extend(
        [
            del("grpA", 1, Some(1), &[(2, 4)]),
            del("grpA", 2, Some(2), &[(10, 15)]),
            del("grpA", 3, None, &[(18, 19)]),
            del("grpA", 4, Some(1), &[(16, 17)]),
            del("grpB", 1, Some(1), &[(1, 100)]),
        ]
        .map(WriteOp::DeleteMessages),
    );
    apply_ok(s, setup);
    let all = q(None, None, 100);

    // Without ranges or a reader: the whole history, less the hard-deleted seq.
    assert_eq!(history(s, all.clone(), &[], None), down(20, 1, &[18]));
    assert_eq!(history(s, all.clone(), &[], Some(3)), down(20, 1, &[18]));
    // A reader's soft deletions, every record of them, and only theirs.
    assert_eq!(
        history(s, all.clone(), &[], Some(1)),
        down(20, 1, &[2, 3, 16, 18])
    );
    assert_eq!(
        history(s, all.clone(), &[], Some(2)),
        down(20, 1, &[10, 11, 12, 13, 14, 18])
    );
    assert_eq!(
        history(s, q(None, None, 5), &[], Some(1)),
        [20, 19, 17, 15, 14]
    );

    // Ranges: only their seqs, merged newest first, overlaps once.
    let two = [(3, 6), (10, 12)];
    assert_eq!(history(s, all.clone(), &two, None), [11, 10, 5, 4, 3]);
    assert_eq!(history(s, all.clone(), &two, Some(1)), [11, 10, 5, 4]);
    assert_eq!(history(s, all.clone(), &two, Some(2)), [5, 4, 3]);
    assert_eq!(
        history(s, all.clone(), &[(3, 6), (4, 8)], None),
        [7, 6, 5, 4, 3]
    );
    // The query's bounds and limit apply across the ranges.
    assert_eq!(
        history(s, q(Some(4), Some(11), 100), &two, None),
        [10, 5, 4]
    );
    assert_eq!(
        history(s, q(None, None, 3), &[(1, 6), (10, 12)], None),
        [11, 10, 5]
    );
    assert!(history(s, q(Some(15), None, 100), &[(3, 6)], None).is_empty());
    // Ranges that hold nothing give nothing, not the whole history.
    assert!(history(s, all.clone(), &[(5, 5), (8, 6)], None).is_empty());
    // The caller's own exclusions stay, beside the reader's soft deletions.
    assert_eq!(
        history(s, excluding(100, &[(5, 7)]), &[(1, 9)], Some(1)),
        [8, 7, 4, 1]
    );

    // Another topic: the same user's soft deletion there is its own.
    let b = |soft_of: Option<u64>| {
        let q = ReadQuery::History {
            topic: "grpB".into(),
            query: q(None, None, 100),
            ranges: vec![],
            soft_of: soft_of.map(UserId),
        };
        both(s, q).map(|a| match a {
            ReadAnswer::Messages(m) => seqs(&m),
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(b(Some(1)), [Vec::<u64>::new(), Vec::new()]);
    assert_eq!(b(Some(2)), [down(5, 1, &[]), down(5, 1, &[])]);
}

/// `Users` answers the stored users among those asked, whatever their state, and leaves the
/// missing ones out. (The order of the answer is not part of the contract; it is sorted here.)
pub(crate) fn users_leaves_out_missing_ids(s: &dyn Store) {
    let mut gone = user(3);
    gone.state = UserState::Deleted;
    apply_ok(
        s,
        vec![
            WriteOp::CreateUser(user(1)),
            WriteOp::CreateUser(user(2)),
            WriteOp::CreateUser(gone.clone()),
        ],
    );
    let ask = |ids: &[u64]| {
        both(
            s,
            ReadQuery::Users(ids.iter().copied().map(UserId).collect()),
        )
        .map(|a| match a {
            ReadAnswer::Users(mut v) => {
                v.sort_by_key(|u| u.id.0);
                v
            }
            other => panic!("{other:?}"),
        })
    };
    for answer in ask(&[3, 99, 1]) {
        assert_eq!(answer, vec![user(1), gone.clone()]);
    }
    for answer in ask(&[99, 100]) {
        assert!(answer.is_empty());
    }
    for answer in ask(&[]) {
        assert!(answer.is_empty());
    }
}

fn plain_topic(name: &str, is_chan: bool) -> TopicRecord {
    TopicRecord {
        is_chan,
        ..topic(name)
    }
}

/// `Contacts` gives one row per subscription of the user to a topic that has a record (a
/// subscription without one is left out; the user's own deleted subscriptions are rows), each
/// with the topic, its newest message and its member count: active subscriptions only, and in
/// a channel not its readers. (Row order is not part of the contract; rows are sorted here.)
pub(crate) fn contacts_count_active_members_and_leave_out_topics_without_a_record(s: &dyn Store) {
    let with = |topic: &str, uid: u64, given: AccessMode, deleted: bool| {
        let mut r = sub(topic, uid);
        r.given = given;
        r.deleted = deleted.then_some(UnixMillis(77));
        WriteOp::PutSub(r)
    };
    let public = AccessMode::PUBLIC;
    let reader = AccessMode::CHAN_READER;
    apply_ok(
        s,
        vec![
            WriteOp::CreateTopic(plain_topic("grpA", false)),
            WriteOp::CreateTopic(plain_topic("grpC", false)),
            WriteOp::CreateTopic(plain_topic("grpChan", true)),
            // grpA: 1, 2 and 6 are members (outside a channel, reader access is no exception).
            with("grpA", 1, public, false),
            with("grpA", 2, public, false),
            with("grpA", 3, public, true),
            with("grpA", 6, reader, false),
            WriteOp::AppendMessage(msg("grpA", 1)),
            WriteOp::AppendMessage(msg("grpA", 2)),
            WriteOp::AppendMessage(msg("grpA", 3)),
            // grpC: user 1 left it; 2 stays.
            with("grpC", 1, public, true),
            with("grpC", 2, public, false),
            // grpChan: 1 and 7 are members, 4 and 5 readers (5 gone too).
            with("grpChan", 1, public, false),
            with("grpChan", 4, reader, false),
            with("grpChan", 5, reader, true),
            with("grpChan", 7, AccessMode::OWNER_FULL, false),
            // No topic record: not a contact.
            with("grpGone", 1, public, false),
            WriteOp::AppendMessage(msg("grpGone", 1)),
        ],
    );
    let ask = |uid: u64| {
        both(s, ReadQuery::Contacts(UserId(uid))).map(|a| match a {
            ReadAnswer::Contacts(mut rows) => {
                rows.sort_by(|a, b| a.topic.name.cmp(&b.topic.name));
                rows
            }
            other => panic!("{other:?}"),
        })
    };
    let row = |topic: &str, is_chan: bool, sub: WriteOp, last, members| {
        let WriteOp::PutSub(sub) = sub else {
            unreachable!()
        };
        ContactRow {
            sub,
            topic: plain_topic(topic, is_chan),
            last,
            members,
        }
    };
    let last_a = Some(LastMessage {
        seq: 3,
        ts: msg("grpA", 3).ts,
    });
    for rows in ask(1) {
        assert_eq!(
            rows,
            vec![
                row("grpA", false, with("grpA", 1, public, false), last_a, 3),
                row("grpC", false, with("grpC", 1, public, true), None, 1),
                row("grpChan", true, with("grpChan", 1, public, false), None, 2),
            ]
        );
    }
    for rows in ask(4) {
        assert_eq!(
            rows,
            vec![row(
                "grpChan",
                true,
                with("grpChan", 4, reader, false),
                None,
                2
            )]
        );
    }
    for rows in ask(99) {
        assert!(rows.is_empty());
    }
}

/// Every query that one primitive read answers gives that read's result, wrapped. Each asks
/// for something stored, so an empty answer cannot pass by accident.
pub(crate) fn single_reads_answer_as_their_primitive(s: &dyn Store) {
    apply_ok(
        s,
        vec![
            WriteOp::CreateUser(tagged_user(1, &["t"])),
            WriteOp::CreateAuth(auth("basic:alice", 1)),
            WriteOp::CreateTopic(topic("grpA")),
            WriteOp::PutSub(sub("grpA", 1)),
            WriteOp::AppendMessage(msg("grpA", 1)),
            WriteOp::DeleteMessages(del("grpA", 1, Some(1), &[(1, 2)])),
            WriteOp::ClaimCred {
                unique: "email:alice@example.com".into(),
                user: UserId(1),
            },
        ],
    );
    let uid = UserId(1);
    let cases = [
        (ReadQuery::User(uid), ReadAnswer::User(s.user(uid).unwrap())),
        (
            ReadQuery::Auth("basic:alice".into()),
            ReadAnswer::Auth(s.auth("basic:alice").unwrap()),
        ),
        (
            ReadQuery::AuthsOfUser(uid),
            ReadAnswer::Auths(s.auths_of_user(uid).unwrap()),
        ),
        (
            ReadQuery::Topic("grpA".into()),
            ReadAnswer::Topic(s.topic("grpA").unwrap()),
        ),
        (
            ReadQuery::Sub {
                topic: "grpA".into(),
                user: uid,
            },
            ReadAnswer::Sub(s.sub("grpA", uid).unwrap()),
        ),
        (
            ReadQuery::SubsOfTopic("grpA".into()),
            ReadAnswer::Subs(s.subs_of_topic("grpA").unwrap()),
        ),
        (
            ReadQuery::SubsOfUser(uid),
            ReadAnswer::Subs(s.subs_of_user(uid).unwrap()),
        ),
        (
            ReadQuery::LastMessage("grpA".into()),
            ReadAnswer::LastMessage(s.last_message("grpA").unwrap()),
        ),
        (
            ReadQuery::DelLog {
                topic: "grpA".into(),
                since: 0,
                before: None,
                limit: 10,
            },
            ReadAnswer::DelLog(s.del_log("grpA", 0, None, 10).unwrap()),
        ),
        (
            ReadQuery::FindTags {
                tags: strings(&["t"]),
                limit: 10,
            },
            ReadAnswer::Tags(s.find_tags(&strings(&["t"]), 10).unwrap()),
        ),
        (
            ReadQuery::CredOwner("email:alice@example.com".into()),
            ReadAnswer::CredOwner(Some(uid)),
        ),
        (
            ReadQuery::CredOwner("email:bob@example.com".into()),
            ReadAnswer::CredOwner(None),
        ),
    ];
    for (query, want) in cases {
        for answer in both(s, query.clone()) {
            assert_eq!(answer, want, "{query:?}");
        }
    }
}
