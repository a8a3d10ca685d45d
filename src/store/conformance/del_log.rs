//! Conformance: the delete history of a topic is an ascending, bounded range of its delete
//! transactions.

use super::fixtures::*;
use crate::store::{Store, WriteOp};

/// `del_log` returns one topic's delete records in `[since, before)`, ascending, at most
/// `limit`, whatever order they were written in.
pub(crate) fn del_log_is_an_ascending_bounded_range_of_one_topic(s: &dyn Store) {
    let rec = |i: u64| {
        let user = i.is_multiple_of(2).then_some(i);
        del("grpA", i, user, &[(i, i + 1), (10 * i, 10 * i + 5)])
    };
    apply_ok(
        s,
        [4, 2, 6].map(|i| WriteOp::DeleteMessages(rec(i))).to_vec(),
    );
    apply_ok(
        s,
        vec![
            WriteOp::DeleteMessages(rec(1)),
            WriteOp::DeleteMessages(rec(5)),
            WriteOp::DeleteMessages(rec(3)),
            WriteOp::DeleteMessages(del("grpAB", 1, None, &[(1, 2)])),
            WriteOp::DeleteMessages(del("grp", 9, Some(1), &[])),
        ],
    );
    let ids = |since, before, limit| -> Vec<u64> {
        s.del_log("grpA", since, before, limit)
            .unwrap()
            .iter()
            .map(|d| d.del_id)
            .collect()
    };
    assert_eq!(
        s.del_log("grpA", 0, None, 100).unwrap(),
        (1..=6).map(rec).collect::<Vec<_>>()
    );
    assert_eq!(ids(2, Some(5), 100), [2, 3, 4]);
    assert_eq!(ids(2, None, 2), [2, 3]);
    assert_eq!(ids(6, None, 10), [6]);
    assert_eq!(ids(0, Some(u64::MAX), 1), [1]);
    assert!(ids(5, Some(5), 10).is_empty());
    assert!(ids(6, Some(3), 10).is_empty());
    assert!(ids(7, None, 10).is_empty());
    assert!(ids(0, None, 0).is_empty());
    assert_eq!(
        s.del_log("grp", 0, None, 10).unwrap(),
        vec![del("grp", 9, Some(1), &[])]
    );
    assert_eq!(s.del_log("grpAB", 0, None, 10).unwrap().len(), 1);
    assert!(s.del_log("grpZ", 0, None, 10).unwrap().is_empty());
}
