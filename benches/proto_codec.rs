//! Criterion benches of the hot paths that need no runtime: decoding a `{pub}`, encoding a
//! `{data}`, grouping fan-out recipients by shard, and access-mode checks.
//!
//! Run with `cargo bench --bench proto_codec`; `cargo test --benches` runs each once as a smoke.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

use coretalk::access::AccessMode;
use coretalk::ids::{SessionId, ShardId, UnixMillis};
use coretalk::proto::server::{raw, Data, ServerMsg, Ts};
use coretalk::proto::{decode, encode};
use coretalk::topic::group_by_shard;

const PUB: &[u8] = br#"{"pub":{"id":"104578","topic":"grpAbCdEfGhIjK","noecho":false,"head":{"mime":"text/x-drafty"},"content":{"txt":"Hello, this is a typical chat message of about a hundred bytes.","fmt":[{"at":0,"len":5,"tp":"ST"}]}}}"#;

fn codec(c: &mut Criterion) {
    c.bench_function("decode_pub_200B", |b| {
        b.iter(|| decode(black_box(PUB)).expect("valid"))
    });
    let data = ServerMsg::Data(Data {
        topic: "grpAbCdEfGhIjK".into(),
        from: Some("usr2il9suCbuko".into()),
        ts: Ts(UnixMillis(1_735_787_045_123)),
        seq: 12345,
        head: Some(raw(r#"{"mime":"text/x-drafty"}"#)),
        content: raw(
            r#"{"txt":"Hello, this is a typical chat message of about a hundred bytes."}"#,
        ),
    });
    c.bench_function("encode_data_200B", |b| b.iter(|| encode(black_box(&data))));
}

fn fanout(c: &mut Criterion) {
    let sids: Vec<SessionId> = (0..1000u64)
        .map(|i| SessionId::new(ShardId((i % 4) as u16), i))
        .collect();
    c.bench_function("group_by_shard_1000_over_4", |b| {
        b.iter(|| group_by_shard(black_box(sids.iter().copied()), 4))
    });
    let modes: Vec<AccessMode> = (0..1000u32)
        .map(|i| AccessMode((i * 37 % 256) as u8))
        .collect();
    c.bench_function("access_check_1000", |b| {
        b.iter(|| {
            modes
                .iter()
                .filter(|m| m.has(AccessMode::READ | AccessMode::PRES))
                .count()
        })
    });
}

criterion_group!(benches, codec, fanout);
criterion_main!(benches);
