//! The acknowledgement path of a `{pub}` without the store thread: encoding its write into a
//! shard's journal round (what a shard does per message before the round is synced), decoding
//! a segment (what a replay does per record), and the store thread applying writes behind the
//! acknowledgement in one group (redb, volatile commit), per message.
//!
//! Run with `cargo bench --bench store_path`; `cargo test --benches` runs each once as a smoke.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use coretalk::ids::{UnixMillis, UserId};
use coretalk::store::journal::{decode, encode};
use coretalk::store::{MessageRecord, RedbStore, Store, WriteBatch, WriteOp};

/// The write of one `{pub}` as a topic makes it: the message and the sender's markers.
fn publish(seq: u64, content_len: usize) -> WriteBatch {
    vec![
        WriteOp::AppendMessage(MessageRecord {
            topic: "p2pAbCdEfGhIjKlMnOpQrStUv".into(),
            seq,
            ts: UnixMillis(1_735_787_045_123 + seq),
            from: UserId(0x1234_5678_9abc),
            head: Some(r#"{"mime":"text/x-drafty"}"#.into()),
            content: format!(r#"{{"txt":"{}"}}"#, "x".repeat(content_len)),
            deleted: false,
        }),
        WriteOp::Markers {
            topic: "p2pAbCdEfGhIjKlMnOpQrStUv".into(),
            user: UserId(0x1234_5678_9abc),
            read: seq,
            recv: seq,
        },
    ]
}

fn journal(c: &mut Criterion) {
    let b200 = publish(42, 150);
    let mut buf = Vec::with_capacity(1 << 16);
    c.bench_function("journal_encode_pub_200B", |b| {
        b.iter(|| {
            buf.clear();
            encode(&mut buf, black_box(&b200));
            black_box(buf.len())
        })
    });
    let b1k = publish(42, 1024);
    c.bench_function("journal_encode_pub_1KB", |b| {
        b.iter(|| {
            buf.clear();
            encode(&mut buf, black_box(&b1k));
            black_box(buf.len())
        })
    });
    let mut seg = Vec::new();
    for s in 1..=100 {
        encode(&mut seg, &publish(s, 150));
    }
    c.bench_function("journal_decode_100_records", |b| {
        b.iter(|| decode(black_box(&seg)).0.len())
    });
}

fn apply_behind(c: &mut Criterion) {
    // 25 publishes in one volatile group: a 10 ms window at 2,500 msgs/s.
    let store = RedbStore::in_memory();
    let mut next = 1u64;
    c.bench_function("apply_volatile_group_of_25_pubs", |b| {
        b.iter_batched(
            || {
                let g: Vec<WriteBatch> = (next..next + 25).map(|s| publish(s, 150)).collect();
                next += 25;
                g
            },
            |g| store.apply_volatile(&g).len(),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, journal, apply_behind);
criterion_main!(benches);
