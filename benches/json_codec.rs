//! serde_json (today's `proto::decode`/`encode`, raw values kept verbatim) against simd-json 0.19
//! on the frames the load harness really sends and receives: `{hi}`, `{login}`, `{sub}` (W1/W2
//! set-up), the W3 `{pub}` (100 B stamped payload), the W0/W4 `{pub}` (1 KB), a Drafty chat
//! `{pub}` with a head, and the server's `{data}` and `{ctrl 202}` (issue 10; the figures and the
//! decision are in ARCHITECTURE.md, "Decisions and deviations").
//!
//! simd-json parses a mutable buffer, so every simd path below starts by copying the frame into
//! a reused scratch buffer (a WebSocket frame is shared `Bytes`, and the verbatim raw values must
//! be cut from unmodified bytes), and reuses `Buffers` and the tape across frames (its best case).
//! simd-json's serde support cannot produce a `serde_json::value::RawValue`, so decode paths are:
//!
//! - `serde_json`: `proto::decode`, what the server runs.
//! - `serde_json_slim`: serde_json into an envelope of only the five kinds the simd paths below
//!   know (the server's `Envelope` holds all ten and `extra` inline), so that parser is compared
//!   with parser.
//! - `simd_tape_only`: copy + `fill_tape_padded`; no typed values at all, the floor any simd path
//!   pays before it has produced anything.
//! - `simd_tape_verbatim`: the best verbatim simd path: copy + tape, raw `content`/`head` ranges
//!   cut from the original frame by walking simd-json's structural indexes, the other fields
//!   deserialized from the tape, `content` turned into a `RawValue` (which re-validates it).
//! - `simd_value_reserialize`: simd-json's serde into a `BorrowedValue` for `content`, written
//!   back out as text; not verbatim in general (escapes, numbers, whitespace are normalized).
//!
//! `check_paths` runs first (also under `cargo test --benches`): it asserts that the verbatim
//! paths give the same `Decoded` as `proto::decode`, that bad frames fail on both, and prints
//! where simd-json's output differs (its serializer writes a `RawValue` as a one-field struct).
//!
//! Run with `taskset -c 1 cargo bench --bench json_codec`.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use simd_json::prelude::Writable as _;
use simd_json::{Buffers, Deserializer, Tape, INPUT_PADDING};

use coretalk::ids::UnixMillis;
use coretalk::proto::client::{MsgHi, MsgLeave, MsgLogin, MsgPub, MsgSub, RawJson};
use coretalk::proto::server::{raw, Data, ServerMsg, Ts};
use coretalk::proto::{decode, encode, ClientMsg, DecodeError, Decoded, Outcome};

const PEER: &str = "usr2il9suCbuko";
const GROUP: &str = "grpAbCdEfGhIjK";
const SCHED_NS: u64 = 812_345_678_901_234;

/// The harness's stamped payload (`loadtest/src/payload.rs`): `T<sender>.<seq>.<sched_ns>.` then
/// `x` up to `size`.
fn payload(size: usize) -> String {
    let mut s = format!("T4711.123456.{SCHED_NS}.");
    while s.len() < size {
        s.push('x');
    }
    s
}

/// `{pub}` exactly as `loadtest/src/adapter/tinode.rs::publish` writes it.
fn publish(topic: &str, content: &str) -> Vec<u8> {
    format!(
        r#"{{"pub":{{"id":"p{SCHED_NS}","topic":"{topic}","noecho":true,"content":"{content}"}}}}"#
    )
    .into_bytes()
}

/// The client frames, by name: W1/W2 set-up, W3 (100 B, p2p), W0/W4 (1 KB, group), and a
/// Drafty message as the web app sends it.
fn client_frames() -> Vec<(&'static str, Vec<u8>)> {
    let token = "A".repeat(68); // 50-byte token in standard base64
    vec![
        (
            "hi",
            br#"{"hi":{"id":"1","ver":"0.25.3","ua":"coretalk-load/0.1"}}"#.to_vec(),
        ),
        (
            "login_token",
            format!(r#"{{"login":{{"id":"2","scheme":"token","secret":"{token}"}}}}"#).into_bytes(),
        ),
        (
            "sub",
            format!(r#"{{"sub":{{"id":"3","topic":"{PEER}"}}}}"#).into_bytes(),
        ),
        ("pub_w3_100B", publish(PEER, &payload(100))),
        ("pub_w4_1KB", publish(GROUP, &payload(1024))),
        (
            "pub_drafty_head",
            br#"{"pub":{"id":"104578","topic":"grpAbCdEfGhIjK","noecho":false,"head":{"mime":"text/x-drafty"},"content":{"txt":"Hello, this is a typical chat message of about a hundred bytes.","fmt":[{"at":0,"len":5,"tp":"ST"}]}}}"#.to_vec(),
        ),
    ]
}

/// `{data}` as a topic fans it out and `{ctrl 202}` as it acknowledges the `{pub}`.
fn data_msg(topic: &str, size: usize) -> ServerMsg {
    ServerMsg::Data(Data {
        topic: topic.into(),
        from: Some("usr9xQ3lGmZbTA".into()),
        ts: Ts(UnixMillis(1_735_787_045_123)),
        seq: 12345,
        head: None,
        content: raw(&format!("\"{}\"", payload(size))),
    })
}

fn ctrl_202() -> ServerMsg {
    Outcome::Accepted
        .ctrl(
            Some(&format!("p{SCHED_NS}")),
            Some(GROUP),
            UnixMillis(1_735_787_045_123),
        )
        .param("seq", 12345u64)
        .msg()
}

// ---- simd-json decode paths ------------------------------------------------------------------

/// The envelope with the kinds the harness sends; raw fields are cut from the frame instead.
#[derive(Deserialize, Default)]
#[serde(default)]
struct TapeEnvelope {
    hi: Option<MsgHi>,
    login: Option<MsgLogin>,
    sub: Option<MsgSub>,
    leave: Option<MsgLeave>,
    #[serde(rename = "pub")]
    publish: Option<TapePub>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TapePub {
    id: Option<String>,
    topic: String,
    noecho: bool,
    head: Option<serde_json::Map<String, serde_json::Value>>,
    content: Option<IgnoredAny>,
}

/// The same five kinds for serde_json, raw values verbatim: separates the parser from the
/// envelope's size (the server's has all ten kinds and `extra` inline).
#[derive(Deserialize, Default)]
#[serde(default)]
struct SlimEnvelope {
    hi: Option<MsgHi>,
    login: Option<MsgLogin>,
    sub: Option<MsgSub>,
    leave: Option<MsgLeave>,
    #[serde(rename = "pub")]
    publish: Option<MsgPub>,
}

fn serde_json_slim(frame: &[u8]) -> Result<Decoded, DecodeError> {
    let env: SlimEnvelope = serde_json::from_slice(frame).map_err(malformed)?;
    pick(env.hi, env.login, env.sub, env.leave, env.publish)
}

/// The same envelope with `content` as a simd-json value, to be written back out as text.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ValueEnvelope<'a> {
    hi: Option<MsgHi>,
    login: Option<MsgLogin>,
    sub: Option<MsgSub>,
    leave: Option<MsgLeave>,
    #[serde(rename = "pub", borrow)]
    publish: Option<ValuePub<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ValuePub<'a> {
    id: Option<String>,
    topic: String,
    noecho: bool,
    head: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow, deserialize_with = "borrowed_value")]
    content: Option<simd_json::BorrowedValue<'a>>,
}

/// simd-json's `BorrowedValue` deserializes only with the input's own lifetime.
fn borrowed_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<simd_json::BorrowedValue<'de>>, D::Error> {
    simd_json::BorrowedValue::deserialize(d).map(Some)
}

fn malformed(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed(e.to_string())
}

fn pick(
    hi: Option<MsgHi>,
    login: Option<MsgLogin>,
    sub: Option<MsgSub>,
    leave: Option<MsgLeave>,
    publish: Option<MsgPub>,
) -> Result<Decoded, DecodeError> {
    // The reference's priority among the kinds this envelope has: pub > sub > leave > hi > login.
    let msg = if let Some(m) = publish {
        ClientMsg::Pub(m)
    } else if let Some(m) = sub {
        ClientMsg::Sub(m)
    } else if let Some(m) = leave {
        ClientMsg::Leave(m)
    } else if let Some(m) = hi {
        ClientMsg::Hi(m)
    } else if let Some(m) = login {
        ClientMsg::Login(m)
    } else {
        return Err(DecodeError::Empty);
    };
    Ok(Decoded { msg, extra: None })
}

/// What one decoding thread keeps between frames: the padded scratch copy, simd-json's buffers
/// and an empty tape (its allocation).
struct SimdScratch {
    input: Vec<u8>,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
}

impl SimdScratch {
    fn new() -> Self {
        SimdScratch {
            input: Vec::with_capacity(4096),
            buffers: Buffers::new(4096),
            tape: Some(Tape::null().reset()),
        }
    }

    /// Copies the frame and builds the tape: the floor of any simd path.
    fn tape_only(&mut self, frame: &[u8]) -> Result<usize, DecodeError> {
        self.input.clear();
        self.input.extend_from_slice(frame);
        self.input.resize(frame.len() + INPUT_PADDING, 0);
        let mut tape: Tape<'_> = self.tape.take().map_or_else(Tape::null, Tape::reset);
        let r =
            simd_json::fill_tape_padded(&mut self.input, frame.len(), &mut self.buffers, &mut tape);
        let n = tape.0.len();
        self.tape = Some(tape.reset());
        r.map(|()| n).map_err(malformed)
    }

    /// The best verbatim simd path: tape, raw ranges from the structural indexes, typed fields
    /// from the tape.
    fn tape_verbatim(&mut self, frame: &[u8]) -> Result<Decoded, DecodeError> {
        self.input.clear();
        self.input.extend_from_slice(frame);
        self.input.resize(frame.len() + INPUT_PADDING, 0);
        let mut tape: Tape<'_> = self.tape.take().map_or_else(Tape::null, Tape::reset);
        if let Err(e) =
            simd_json::fill_tape_padded(&mut self.input, frame.len(), &mut self.buffers, &mut tape)
        {
            self.tape = Some(tape.reset());
            return Err(malformed(e));
        }
        let content = raw_range(
            frame,
            self.buffers.structural_indexes(),
            &[b"pub", b"content"],
        );
        let mut de = Deserializer::from_tape(tape);
        let env = TapeEnvelope::deserialize(&mut de).map_err(malformed);
        self.tape = Some(de.into_tape().reset());
        let env = env?;
        let publish = match env.publish {
            Some(p) => Some(MsgPub {
                id: p.id,
                topic: p.topic,
                noecho: p.noecho,
                head: p.head,
                content: match (p.content, content) {
                    (Some(_), Some(r)) => Some(to_raw(&frame[r])?),
                    _ => None,
                },
            }),
            None => None,
        };
        pick(env.hi, env.login, env.sub, env.leave, publish)
    }

    /// simd-json's serde with `content` as a `BorrowedValue`, re-serialized to text.
    fn value_reserialize(&mut self, frame: &[u8]) -> Result<Decoded, DecodeError> {
        self.input.clear();
        self.input.extend_from_slice(frame);
        let env: ValueEnvelope<'_> =
            simd_json::serde::from_slice_with_buffers(&mut self.input, &mut self.buffers)
                .map_err(malformed)?;
        let publish = match env.publish {
            Some(p) => Some(MsgPub {
                id: p.id,
                topic: p.topic,
                noecho: p.noecho,
                head: p.head,
                content: match p.content {
                    Some(v) => Some(RawValue::from_string(v.encode()).map_err(malformed)?),
                    None => None,
                },
            }),
            None => None,
        };
        pick(env.hi, env.login, env.sub, env.leave, publish)
    }
}

fn to_raw(bytes: &[u8]) -> Result<RawJson, DecodeError> {
    let s = std::str::from_utf8(bytes).map_err(malformed)?;
    RawValue::from_string(s.to_owned()).map_err(malformed)
}

/// The byte range of the value at `path` (object keys from the root) in a frame simd-json has
/// validated, found from its structural indexes alone (quoted text holds no structurals, so
/// bracket depth is a plain count). Keys are compared as written (an escaped key would be
/// missed: a real codec would take the unescaped key from the tape).
fn raw_range(frame: &[u8], idx: &[u32], path: &[&[u8]]) -> Option<std::ops::Range<usize>> {
    let at = |i: usize| idx.get(i).map(|&p| p as usize);
    let byte = |i: usize| at(i).map(|p| frame[p]);
    // Index of the first structural after the value that starts at structural `i`.
    let skip = |mut i: usize| -> Option<usize> {
        match byte(i)? {
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match byte(i)? {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => Some(i + 1),
        }
    };
    let mut obj = 0usize;
    for (depth, key) in path.iter().enumerate() {
        if byte(obj)? != b'{' {
            return None;
        }
        let mut i = obj + 1;
        let mut found = None;
        while byte(i)? == b'"' {
            // Key text: from after the opening quote to the closing quote before ':'.
            let colon = at(i + 1)?;
            let k = frame[at(i)? + 1..colon].trim_ascii_end();
            let k = &k[..k.len().saturating_sub(1)];
            let next = skip(i + 2)?;
            if k == *key {
                found = Some((i + 2, next));
            }
            if byte(next)? != b',' {
                break;
            }
            i = next + 1;
        }
        let (v, next) = found?;
        if depth + 1 < path.len() {
            obj = v;
        } else {
            let start = at(v)?;
            let end = at(next).unwrap_or(frame.len());
            return Some(start..start + frame[start..end].trim_ascii_end().len());
        }
    }
    None
}

// ---- correctness --------------------------------------------------------------------------

fn show(r: &Result<Decoded, DecodeError>) -> String {
    match r {
        Ok(d) => format!("{:?}", d.msg),
        Err(DecodeError::Empty) => "Empty".into(),
        Err(DecodeError::Malformed(_)) => "Malformed".into(),
    }
}

/// Asserts what the figures rely on and prints where simd-json's output differs.
fn check_paths() {
    let mut s = SimdScratch::new();
    for (name, f) in client_frames() {
        let want = show(&decode(&f));
        assert!(want.starts_with(match name {
            "hi" => "Hi",
            "login_token" => "Login",
            "sub" => "Sub",
            _ => "Pub",
        }));
        assert_eq!(show(&s.tape_verbatim(&f)), want, "{name}: tape_verbatim");
        assert_eq!(show(&serde_json_slim(&f)), want, "{name}: serde_json_slim");
        s.tape_only(&f).expect("valid");
        let v = show(&s.value_reserialize(&f));
        if v != want {
            println!("json_codec check: {name}: simd_value_reserialize is not verbatim");
        }
    }
    // Content that a value round trip does not keep: escapes, number forms, whitespace.
    let odd = br#"{"pub":{"topic":"grpA","content":{"txt":"caf\u00e9 \"q\"", "n":1.50,"e":1E3 }}}"#;
    let want = show(&decode(odd));
    assert_eq!(
        show(&s.tape_verbatim(odd)),
        want,
        "escaped content: tape_verbatim"
    );
    let got = show(&s.value_reserialize(odd));
    println!(
        "json_codec check: escaped content: serde_json keeps {want}; simd_value_reserialize gives {got}"
    );
    // Bad frames: the same verdict (Malformed or Empty) on both.
    let bad: &[&[u8]] = &[
        b"",
        b"{",
        b"[1,2]",
        b"null",
        br#"{"foo":{}}"#,
        br#"{"pub":{"topic":5}}"#,
        br#"{"pub":{"topic":"a","content":}}"#,
        br#"{"pub":{"topic":"a","topic":"b"}}"#,
        br#"{"hi":{"id":"1"}} x"#,
        b"{\"hi\":{\"id\":\"\xff\"}}",
        br#"{"sub":{"topic":"a"},}"#,
    ];
    for f in bad {
        let want = show(&decode(f));
        assert!(want == "Malformed" || want == "Empty", "{want}");
        assert_eq!(
            show(&s.tape_verbatim(f)),
            want,
            "bad frame {:?}",
            String::from_utf8_lossy(f)
        );
    }
    // Encode: simd-json's serializer through serde against serde_json's.
    for (name, m) in [
        ("data_100B", data_msg(PEER, 100)),
        ("data_1KB", data_msg(GROUP, 1024)),
        ("ctrl_202", ctrl_202()),
    ] {
        let a = encode(&m);
        let b = simd_json::to_vec(&m).expect("serializes");
        if a[..] == b[..] {
            println!("json_codec check: encode {name}: simd_json::to_vec identical");
        } else {
            println!(
                "json_codec check: encode {name}: simd_json::to_vec differs: {}",
                String::from_utf8_lossy(&b[..b.len().min(160)])
            );
        }
    }
    let d = DataText::of(100);
    assert_eq!(
        serde_json::to_vec(&d).expect("ok"),
        simd_json::to_vec(&d).expect("ok")
    );
}

/// `{data}` with `content` as a plain string (what the harness's content is), so both
/// serializers can write it and their speed can be compared on their own.
#[derive(Serialize)]
struct DataText {
    data: DataTextInner,
}

#[derive(Serialize)]
struct DataTextInner {
    topic: String,
    from: String,
    ts: Ts,
    seq: u64,
    content: String,
}

impl DataText {
    fn of(size: usize) -> Self {
        DataText {
            data: DataTextInner {
                topic: PEER.into(),
                from: "usr9xQ3lGmZbTA".into(),
                ts: Ts(UnixMillis(1_735_787_045_123)),
                seq: 12345,
                content: payload(size),
            },
        }
    }
}

// ---- benches ------------------------------------------------------------------------------

fn decode_benches(c: &mut Criterion) {
    let mut s = SimdScratch::new();
    for (name, f) in client_frames() {
        let mut g = c.benchmark_group(format!("decode_{name}"));
        g.bench_function("serde_json", |b| {
            b.iter(|| decode(black_box(&f)).expect("valid"))
        });
        g.bench_function("serde_json_slim", |b| {
            b.iter(|| serde_json_slim(black_box(&f)).expect("valid"))
        });
        g.bench_function("simd_tape_only", |b| {
            b.iter(|| s.tape_only(black_box(&f)).expect("valid"))
        });
        g.bench_function("simd_tape_verbatim", |b| {
            b.iter(|| s.tape_verbatim(black_box(&f)).expect("valid"))
        });
        g.bench_function("simd_value_reserialize", |b| {
            b.iter(|| s.value_reserialize(black_box(&f)).expect("valid"))
        });
        g.finish();
    }
}

fn encode_benches(c: &mut Criterion) {
    for (name, m) in [
        ("data_100B", data_msg(PEER, 100)),
        ("data_1KB", data_msg(GROUP, 1024)),
        ("ctrl_202", ctrl_202()),
    ] {
        let mut g = c.benchmark_group(format!("encode_{name}"));
        g.bench_function("serde_json", |b| b.iter(|| encode(black_box(&m))));
        // Not the same bytes for {data} (see check_paths): timed for the record.
        g.bench_function("simd_json", |b| {
            b.iter(|| simd_json::to_vec(black_box(&m)).expect("serializes"))
        });
        g.finish();
    }
    for size in [100, 1024] {
        let d = DataText::of(size);
        let mut g = c.benchmark_group(format!("encode_data_text_{size}B"));
        g.bench_function("serde_json", |b| {
            b.iter(|| serde_json::to_vec(black_box(&d)).expect("ok"))
        });
        g.bench_function("simd_json", |b| {
            b.iter(|| simd_json::to_vec(black_box(&d)).expect("ok"))
        });
        g.finish();
    }
}

fn main() {
    check_paths();
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    decode_benches(&mut c);
    encode_benches(&mut c);
    c.final_summary();
}
