//! Criterion benches of the hot paths that need no runtime: decoding a `{pub}`, encoding a
//! `{data}` and the `{ctrl 202}` that acknowledges it, grouping fan-out recipients by shard, and
//! access checks (the bare bit test, the fan-out filter as a topic runs it, and mode parsing).
//!
//! Sizes follow the workloads: ~200 B chat messages (W3) and 1 KB payloads (W0, W4); 1,000
//! and 10,000 recipients over 4 and 2 shards (W4, W6).
//!
//! Run with `cargo bench --bench proto_codec`; `cargo test --benches` runs each once as a smoke.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

use coretalk::access::AccessMode;
use coretalk::ids::{SessionId, ShardId, UnixMillis, UserId};
use coretalk::proto::server::{raw, Data, ServerMsg, Ts};
use coretalk::proto::{decode, encode, Outcome};
use coretalk::topic::group_by_shard;

const PUB: &[u8] = br#"{"pub":{"id":"104578","topic":"grpAbCdEfGhIjK","noecho":false,"head":{"mime":"text/x-drafty"},"content":{"txt":"Hello, this is a typical chat message of about a hundred bytes.","fmt":[{"at":0,"len":5,"tp":"ST"}]}}}"#;

/// A `{pub}` with a 1 KB text content and no head, as the load harness sends in W0/W4.
fn pub_1k() -> Vec<u8> {
    format!(
        r#"{{"pub":{{"id":"104578","topic":"grpAbCdEfGhIjK","noecho":true,"content":"{}"}}}}"#,
        "x".repeat(1024)
    )
    .into_bytes()
}

fn data_msg(content: &str, head: bool) -> ServerMsg {
    ServerMsg::Data(Data {
        topic: "grpAbCdEfGhIjK".into(),
        from: Some("usr2il9suCbuko".into()),
        ts: Ts(UnixMillis(1_735_787_045_123)),
        seq: 12345,
        head: head.then(|| raw(r#"{"mime":"text/x-drafty"}"#)),
        content: raw(content),
    })
}

fn codec(c: &mut Criterion) {
    c.bench_function("decode_pub_200B", |b| {
        b.iter(|| decode(black_box(PUB)).expect("valid"))
    });
    let big = pub_1k();
    c.bench_function("decode_pub_1KB", |b| {
        b.iter(|| decode(black_box(&big)).expect("valid"))
    });
    let data = data_msg(
        r#"{"txt":"Hello, this is a typical chat message of about a hundred bytes."}"#,
        true,
    );
    c.bench_function("encode_data_200B", |b| b.iter(|| encode(black_box(&data))));
    let data_1k = data_msg(&format!(r#""{}""#, "x".repeat(1024)), false);
    c.bench_function("encode_data_1KB", |b| {
        b.iter(|| encode(black_box(&data_1k)))
    });
    // Built and encoded per {pub}, as the topic does for the publisher's ack.
    c.bench_function("encode_ctrl_202", |b| {
        b.iter(|| {
            let msg = Outcome::Accepted
                .ctrl(
                    Some(black_box("104578")),
                    Some("grpAbCdEfGhIjK"),
                    UnixMillis(1_735_787_045_123),
                )
                .param("seq", black_box(12345u64))
                .msg();
            encode(&msg)
        })
    });
}

fn fanout(c: &mut Criterion) {
    let sids: Vec<SessionId> = (0..1000u64)
        .map(|i| SessionId::new(ShardId((i % 4) as u16), i))
        .collect();
    c.bench_function("group_by_shard_1000_over_4", |b| {
        b.iter(|| group_by_shard(black_box(sids.iter().copied()), 4))
    });
    let sids_10k: Vec<SessionId> = (0..10_000u64)
        .map(|i| SessionId::new(ShardId((i % 2) as u16), i))
        .collect();
    c.bench_function("group_by_shard_10000_over_2", |b| {
        b.iter(|| group_by_shard(black_box(sids_10k.iter().copied()), 2))
    });
}

fn access(c: &mut Criterion) {
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
    // The fan-out filter of `Topic::recipients` for a group: for every attached session, look
    // up its member, take want & given, test READ, then group by shard. Rebuilt from public
    // types (the topic's tables are crate-private): one member per attached session, one in
    // ten without READ.
    let members: HashMap<UserId, (AccessMode, AccessMode)> = (0..1000u64)
        .map(|i| {
            let given = if i % 10 == 0 {
                AccessMode::PUBLIC.without(AccessMode::READ)
            } else {
                AccessMode::PUBLIC
            };
            (UserId(i + 1), (AccessMode::USER_AUTH_DEFAULT, given))
        })
        .collect();
    let attached: HashMap<SessionId, UserId> = (0..1000u64)
        .map(|i| (SessionId::new(ShardId((i % 4) as u16), i), UserId(i + 1)))
        .collect();
    c.bench_function("recipients_1000_over_4", |b| {
        b.iter(|| {
            let sids = attached.iter().filter_map(|(sid, uid)| {
                members
                    .get(uid)
                    .is_some_and(|(want, given)| want.and(*given).has(AccessMode::READ))
                    .then_some(*sid)
            });
            group_by_shard(sids, black_box(4))
        })
    });
    // `{sub}` with `mode` and `{meta sub}` parse and render access strings.
    c.bench_function("access_mode_parse_render", |b| {
        b.iter(|| {
            let m = AccessMode::parse(black_box("JRWPAS"))
                .expect("valid")
                .unwrap_or(AccessMode::NONE);
            m.to_string()
        })
    });
}

criterion_group!(benches, codec, fanout, access);
criterion_main!(benches);
