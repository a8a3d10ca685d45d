//! The acknowledgement path of a `{pub}` without the store thread: encoding its write into a
//! shard's journal round (what a shard does per message before the round is synced), decoding
//! a segment (what a replay does per record), and the store thread applying writes behind the
//! acknowledgement in one group (redb, volatile commit), per message.
//!
//! Run with `cargo bench --bench store_path`; `cargo test --benches` runs each once as a smoke.

use std::hint::black_box;

/// The server's allocator, so that page copies and frees cost what they cost in the server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use coretalk::access::AccessMode;
use coretalk::ids::{UnixMillis, UserId};
use coretalk::store::journal::{decode, encode};
use coretalk::store::{MessageRecord, RedbStore, Store, SubRecord, WriteBatch, WriteOp};

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

/// The W3 shape: one publish each to many P2P topics, in random order, each topic's sender
/// holding a subscription whose markers the publish moves (so a group rewrites two rows per
/// message, in pages far apart). On the file-backed store the server runs W3 with
/// (`store.durable = false`: volatile commits, no fsync) and on the in-memory one; groups of 1
/// to 1,000 publishes (W3 at 2,500/s gathers about 50 per commit, `StoreBatchesTotal` over
/// `StoreCommitsTotal`; 128 at higher rates, `store.group_target_ops`). The large groups show
/// whether a longer window would pay: it would if messages shared pages within a group.
fn apply_spread(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = RedbStore::open(dir.path(), false).expect("file-backed store");
    spread_on(c, "file", &file, true);
    spread_on(c, "memory", &RedbStore::in_memory(), true);
    // The same without the markers: what the message rows alone cost.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = RedbStore::open(dir.path(), false).expect("file-backed store");
    spread_on(c, "file_no_markers", &file, false);
}

fn spread_on(c: &mut Criterion, backend: &str, store: &RedbStore, markers: bool) {
    const TOPICS: u64 = 2000;
    let topic = |t: u64| format!("p2p{t:022}");
    let subs: Vec<WriteBatch> = (0..TOPICS)
        .map(|t| {
            vec![WriteOp::PutSub(SubRecord {
                topic: topic(t),
                user: UserId(t + 1),
                created: UnixMillis(1_735_787_045_123),
                updated: UnixMillis(1_735_787_045_123),
                deleted: None,
                want: AccessMode::OWNER_FULL,
                given: AccessMode::OWNER_FULL,
                read: 0,
                recv: 0,
                del_id: 0,
                private: None,
            })]
        })
        .collect();
    assert!(store.apply_volatile(&subs).iter().all(Result::is_ok));
    // A fixed pseudo-random walk over the topics; each topic's seqs go up by one per visit.
    let mut seqs = vec![0u64; TOPICS as usize];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut one = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = x % TOPICS;
        seqs[t as usize] += 1;
        let mut b = publish(seqs[t as usize], 150);
        if !markers {
            b.truncate(1);
        }
        for op in &mut b {
            match op {
                WriteOp::AppendMessage(m) => {
                    m.topic = topic(t);
                    m.from = UserId(t + 1);
                }
                WriteOp::Markers {
                    topic: tp, user, ..
                } => {
                    *tp = topic(t);
                    *user = UserId(t + 1);
                }
                _ => {}
            }
        }
        b
    };
    for group in [1usize, 5, 25, 50, 200, 1000] {
        c.bench_function(&format!("apply_spread_{backend}_group_of_{group}"), |b| {
            b.iter_batched(
                || (0..group).map(|_| one()).collect::<Vec<_>>(),
                |g| store.apply_volatile(&g).len(),
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, journal, apply_behind, apply_spread);
criterion_main!(benches);
