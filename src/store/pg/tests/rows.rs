//! PostgreSQL only: the rows as an operator reads them. Client JSON is stored byte for byte,
//! hard deletes leave tombstone rows, deleting a topic leaves no row behind, u64 values keep
//! u64 order in bit-cast columns, and a text PostgreSQL cannot hold fails its batch alone.

use super::{fresh_store, sql};
use crate::ids::{UnixMillis, UserId};
use crate::store::conformance::fixtures::*;
use crate::store::conformance::{history, removals};
use crate::store::{DelRecord, MessageQuery, Store, StoreError, SubRecord, WriteOp};

const JSON: &str = r#"{"b":1,  "a":[ 2 ], "é":"\u00e9" }"#;

#[test]
fn client_json_is_stored_byte_for_byte() {
    let (s, url) = fresh_store();
    let mut u = user(1);
    u.public = Some(JSON.into());
    u.trusted = Some(format!("[{JSON}]"));
    let mut t = topic("grpA");
    t.public = Some(JSON.into());
    t.aux = Some(format!(" {JSON}\n"));
    let mut sb = sub("grpA", 1);
    sb.private = Some(JSON.into());
    let mut m = msg("grpA", 1);
    m.head = Some(JSON.into());
    m.content = format!("{JSON}\t");
    apply_ok(
        &s,
        vec![
            WriteOp::CreateUser(u.clone()),
            WriteOp::CreateTopic(t.clone()),
            WriteOp::PutSub(sb.clone()),
            WriteOp::AppendMessage(m.clone()),
        ],
    );
    assert_eq!(s.user(UserId(1)).unwrap(), Some(u));
    assert_eq!(s.topic("grpA").unwrap(), Some(t));
    assert_eq!(s.sub("grpA", UserId(1)).unwrap(), Some(sb));
    assert_eq!(s.messages("grpA", q(None, None, 1)).unwrap(), vec![m]);
    let mut c = sql(&url);
    let row = c
        .query_one(
            "SELECT u.public, s.private, m.head, m.content, t.aux FROM users u, subs s, \
             messages m, topics t",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), JSON);
    assert_eq!(row.get::<_, String>(1), JSON);
    assert_eq!(row.get::<_, String>(2), JSON);
    assert_eq!(row.get::<_, String>(3), format!("{JSON}\t"));
    assert_eq!(row.get::<_, String>(4), format!(" {JSON}\n"));
}

/// A hard delete rewrites each stored message in its ranges as a tombstone row: flagged,
/// content empty, head NULL, seq, time and sender kept; seqs never stored get no row.
#[test]
fn hard_deletes_rewrite_rows_as_tombstones() {
    let (s, url) = fresh_store();
    history::hard_deletes_leave_tombstones_that_queries_skip_but_last_message_sees(&s);
    let mut c = sql(&url);
    for seq in [2i64, 3, 9, 10] {
        let row = c
            .query_one(
                "SELECT deleted, content, head, ts, from_user FROM messages \
                 WHERE topic = 'grpA' AND seq = $1",
                &[&seq],
            )
            .unwrap();
        let m = msg("grpA", seq as u64);
        assert!(row.get::<_, bool>(0), "seq {seq}");
        assert_eq!(row.get::<_, String>(1), "");
        assert_eq!(row.get::<_, Option<String>>(2), None);
        assert_eq!(row.get::<_, i64>(3) as u64, m.ts.0);
        assert_eq!(row.get::<_, i64>(4) as u64, m.from.0);
    }
    let none = c
        .query_opt(
            "SELECT 1 FROM messages WHERE topic = 'grpA' AND seq = 20",
            &[],
        )
        .unwrap();
    assert!(none.is_none());
    let n = history::LONG_RANGE as i64;
    let stones: i64 = c
        .query_one(
            "SELECT count(*) FROM messages WHERE topic = 'grpC' AND deleted",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stones, n - 2);
}

/// Deleting a topic leaves no row of any table under its name.
#[test]
fn delete_topic_leaves_no_row_behind() {
    let (s, url) = fresh_store();
    removals::delete_topic_removes_every_row_of_the_topic_and_nothing_else(&s);
    let left: i64 = sql(&url)
        .query_one(
            "SELECT (SELECT count(*) FROM subs WHERE topic = 'grpA') \
             + (SELECT count(*) FROM messages WHERE topic = 'grpA') \
             + (SELECT count(*) FROM dellog WHERE topic = 'grpA') \
             + (SELECT count(*) FROM tags WHERE owner = 'grpA') \
             + (SELECT count(*) FROM topics WHERE name = 'grpA')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

/// Values past 2^63 read back and order as u64: in the by-topic subscription list, history
/// pages, exclusions, the delete log, markers, and hard deletes.
#[test]
fn u64_values_past_the_sign_bit_keep_u64_order() {
    let (s, url) = fresh_store();
    let top = 1u64 << 63;
    let users = [u64::MAX, 0, top, 1];
    let mut setup: Vec<WriteOp> = users
        .iter()
        .map(|&u| WriteOp::PutSub(sub("grpA", u)))
        .collect();
    setup.extend(
        [top - 1, top, top + 1, u64::MAX, 1].map(|i| WriteOp::AppendMessage(msg("grpA", i))),
    );
    setup.extend([1, top, u64::MAX].map(|i| {
        WriteOp::DeleteMessages(DelRecord {
            topic: "grpZ".into(),
            del_id: i,
            user: Some(UserId(i)),
            ts: UnixMillis(i),
            ranges: vec![(i, i)],
        })
    }));
    apply_ok(&s, setup);

    let order: Vec<u64> = s
        .subs_of_topic("grpA")
        .unwrap()
        .iter()
        .map(|r| r.user.0)
        .collect();
    assert_eq!(order, [0, 1, top, u64::MAX]);
    let page = |since, before, exclude: &[(u64, u64)]| {
        let q = MessageQuery {
            since,
            before,
            limit: 100,
            exclude: exclude.to_vec(),
        };
        seqs(&s.messages("grpA", q).unwrap())
    };
    assert_eq!(page(None, None, &[]), [u64::MAX, top + 1, top, top - 1, 1]);
    assert_eq!(page(Some(top - 1), Some(top + 1), &[]), [top, top - 1]);
    assert_eq!(
        page(None, None, &[(top - 1, top + 1)]),
        [u64::MAX, top + 1, 1]
    );
    assert_eq!(
        s.last_message("grpA").unwrap().map(|l| l.seq),
        Some(u64::MAX)
    );
    let dels = |since, before| -> Vec<u64> {
        s.del_log("grpZ", since, before, 10)
            .unwrap()
            .iter()
            .map(|d| d.del_id)
            .collect()
    };
    assert_eq!(dels(2, None), [top, u64::MAX]);
    assert_eq!(dels(0, Some(u64::MAX)), [1, top]);

    // Markers take the u64 maximum: 2^63 stays above 7.
    let markers = |read, recv| WriteOp::Markers {
        topic: "grpA".into(),
        user: UserId(1),
        read,
        recv,
    };
    apply_ok(&s, vec![markers(top, 0)]);
    apply_ok(&s, vec![markers(7, 7)]);
    let sb = s.sub("grpA", UserId(1)).unwrap().unwrap();
    assert_eq!((sb.read, sb.recv), (top, top));

    apply_ok(
        &s,
        vec![WriteOp::DeleteMessages(del(
            "grpA",
            1,
            None,
            &[(top - 1, u64::MAX)],
        ))],
    );
    assert_eq!(page(None, None, &[]), [u64::MAX, 1]);

    // As an operator reads them: bit-cast.
    let ids: Vec<i64> = sql(&url)
        .query("SELECT user_id FROM subs ORDER BY user_id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [i64::MIN, -1, 0, 1]);
}

/// PostgreSQL's `text` cannot hold NUL: such a batch fails alone, the others commit.
#[test]
fn a_batch_with_a_nul_character_fails_alone() {
    let (s, _url) = fresh_store();
    let results = s.apply(&[
        vec![WriteOp::CreateUser(tagged_user(1, &["a\0b"]))],
        vec![WriteOp::AppendMessage(msg("grpA", 1))],
        vec![WriteOp::PutSub(SubRecord {
            private: Some("\0".into()),
            ..sub("grpA", 2)
        })],
        vec![WriteOp::CreateUser(user(2))],
    ]);
    assert!(
        matches!(&results[0], Err(StoreError::Backend(m)) if m.contains("NUL")),
        "{results:?}"
    );
    assert_eq!(results[1], Ok(()));
    assert!(
        matches!(&results[2], Err(StoreError::Backend(_))),
        "{results:?}"
    );
    assert_eq!(results[3], Ok(()));
    assert_eq!(s.user(UserId(1)).unwrap(), None);
    assert!(s.user(UserId(2)).unwrap().is_some());
    assert_eq!(s.sub("grpA", UserId(2)).unwrap(), None);
}
