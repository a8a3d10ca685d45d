//! Tests of the journal format and its replay: round trips, torn tails, corruption, and
//! idempotent replay into a store that already holds part of it.

use super::*;
use crate::store::{MessageQuery, RedbStore};

fn append(topic: &str, seq: u64, head: Option<&str>) -> WriteOp {
    WriteOp::AppendMessage(MessageRecord {
        topic: topic.into(),
        seq,
        ts: UnixMillis(1_700_000_000_000 + seq),
        from: UserId(7),
        head: head.map(str::to_owned),
        content: format!("{{\"txt\":\"m{seq} é\"}}"),
        deleted: false,
    })
}

fn markers(topic: &str, seq: u64) -> WriteOp {
    WriteOp::Markers {
        topic: topic.into(),
        user: UserId(7),
        read: seq,
        recv: seq,
    }
}

fn publish(topic: &str, seq: u64) -> WriteBatch {
    vec![
        append(
            topic,
            seq,
            seq.is_multiple_of(2)
                .then_some("{\"mime\":\"text/x-drafty\"}"),
        ),
        markers(topic, seq),
    ]
}

#[test]
fn records_round_trip() {
    let mut buf = Vec::new();
    let batches: Vec<WriteBatch> = (1..=5).map(|s| publish("grpA", s)).collect();
    for b in &batches {
        encode(&mut buf, b);
    }
    let (back, stop) = decode(&buf);
    assert_eq!(stop, None);
    assert_eq!(back, batches);
}

#[test]
fn only_appends_and_markers_are_journaled() {
    assert!(journaled(&publish("grpA", 1)));
    assert!(journaled(&vec![markers("grpA", 3)]));
    assert!(!journaled(&vec![]));
    assert!(!journaled(&vec![
        append("grpA", 1, None),
        WriteOp::DeleteTopic {
            name: "grpA".into()
        }
    ]));
}

#[test]
fn a_torn_tail_ends_the_segment_and_keeps_what_precedes_it() {
    let mut buf = Vec::new();
    for s in 1..=3 {
        encode(&mut buf, &publish("grpA", s));
    }
    let whole = buf.len();
    encode(&mut buf, &publish("grpA", 4));
    for cut in [whole + 3, whole + HEADER + 5, buf.len() - 1] {
        let (back, stop) = decode(&buf[..cut]);
        assert_eq!(back.len(), 3, "cut at {cut}");
        assert_eq!(stop.map(|s| s.0), Some(whole), "cut at {cut}");
    }
    // Zeroes after the last record are the end, not corruption.
    let mut padded = buf.clone();
    padded.extend_from_slice(&[0u8; 64]);
    assert_eq!(decode(&padded), (decode(&buf).0, None));
}

#[test]
fn a_flipped_bit_is_caught_by_the_checksum() {
    let mut buf = Vec::new();
    encode(&mut buf, &publish("grpA", 1));
    let second = buf.len();
    encode(&mut buf, &publish("grpA", 2));
    buf[second + HEADER + 3] ^= 0x10;
    let (back, stop) = decode(&buf);
    assert_eq!(back.len(), 1);
    assert_eq!(stop, Some((second, "checksum mismatch")));
}

fn all_messages(store: &RedbStore, topic: &str) -> Vec<u64> {
    let q = MessageQuery {
        since: None,
        before: None,
        limit: 1000,
        exclude: vec![],
    };
    let mut seqs: Vec<u64> = store
        .messages(topic, q)
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    seqs.sort();
    seqs
}

#[test]
fn replay_applies_what_is_missing_skips_what_is_stored_and_removes_the_files() {
    let dir = std::env::temp_dir().join(format!("ct-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Shard 0 wrote seqs 1..=6 of grpA over two segments; shard 1 seqs 1..=3 of grpB, with
    // a torn last record (seq 4) that was never acknowledged.
    let mut s0 = Vec::new();
    for s in 1..=4 {
        encode(&mut s0, &publish("grpA", s));
    }
    std::fs::write(segment_path(&dir, 0, 0), &s0).unwrap();
    let mut s1 = Vec::new();
    for s in 5..=6 {
        encode(&mut s1, &publish("grpA", s));
    }
    std::fs::write(segment_path(&dir, 0, 1), &s1).unwrap();
    let mut b = Vec::new();
    for s in 1..=4 {
        encode(&mut b, &publish("grpB", s));
    }
    b.truncate(b.len() - 2);
    std::fs::write(segment_path(&dir, 1, 0), &b).unwrap();

    // The store thread had applied grpA up to seq 3 before the crash.
    let store = RedbStore::in_memory();
    for s in 1..=3 {
        assert!(store.apply(&[publish("grpA", s)]).iter().all(Result::is_ok));
    }
    let rep = replay(&dir, &store).unwrap();
    assert_eq!(rep.files, 3);
    assert_eq!(rep.records, 6 + 3);
    assert_eq!(rep.present, 3);
    assert_eq!(rep.torn.len(), 1);
    assert_eq!(all_messages(&store, "grpA"), (1..=6).collect::<Vec<_>>());
    assert_eq!(all_messages(&store, "grpB"), vec![1, 2, 3]);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "segments removed"
    );
    // A second replay finds nothing.
    assert_eq!(replay(&dir, &store).unwrap(), Replayed::default());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_directory_is_an_empty_journal() {
    let store = RedbStore::in_memory();
    let dir = std::env::temp_dir().join("ct-journal-does-not-exist");
    assert_eq!(replay(&dir, &store).unwrap(), Replayed::default());
}
