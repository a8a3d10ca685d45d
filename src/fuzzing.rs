//! Entry points of the coverage-guided fuzz targets in `fuzz/` (cargo-fuzz), one per parser
//! that bytes from outside reach: the JSON and protobuf client codecs, the HTTP request head,
//! WebSocket frames, long-poll requests, the store's record codec, the journal, tokens and API
//! keys. Each takes arbitrary bytes and panics only when an invariant breaks (a round trip
//! that changes a value, a parser that panics); `tests/fuzz_corpus.rs` replays the committed
//! corpora and crash inputs through the same functions on stable Rust.
//!
//! Hidden from the documentation and not an API: it exists so that the fuzz crate reaches
//! parsers that are private to their modules without making them public.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use prost::Message as _;

use crate::access::AuthLevel;
use crate::auth::apikey::ApiKeyChecker;
use crate::auth::token::TokenIssuer;
use crate::ids::{SessionHandle, UnixMillis, UserId};
use crate::proto::pb::pbx;
use crate::transport::http::{self, RequestHead};
use crate::transport::lp::{self, Chunked, Framing};
use crate::transport::wsframe::{self, Event};

/// One fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name of their corpus directory (`fuzz/corpus/<name>`).
pub const TARGETS: &[(&str, Target)] = &[
    ("json", json),
    ("http_head", http_head),
    ("ws_frames", ws_frames),
    ("longpoll", longpoll),
    ("protobuf", protobuf),
    ("store_record", store_record),
    ("journal", journal),
    ("token", token),
    ("api_key", api_key),
];

/// A client frame through the JSON codec; a frame that decodes is written out again as plain
/// JSON (every value re-serialized) and must decode to the same kind, id and topic.
pub fn json(data: &[u8]) {
    let Ok(first) = crate::proto::decode(data) else {
        return;
    };
    // Raw application JSON is kept verbatim without full validation (a lone surrogate escape
    // passes `RawValue`); such a frame has no re-serialized form to compare with.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let again = crate::proto::decode(value.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("re-encoded frame fails to decode: {e}"));
    let shape = |d: &crate::proto::Decoded| {
        let kind = std::mem::discriminant(&d.msg);
        (
            kind,
            d.msg.id().map(str::to_owned),
            d.msg.topic().map(str::to_owned),
        )
    };
    assert_eq!(
        shape(&first),
        shape(&again),
        "round trip changed the message"
    );
}

/// A request head; what the endpoints read from a parsed one is read too.
pub fn http_head(data: &[u8]) {
    if let Ok(Some((head, len))) = http::parse_head(data) {
        assert!(len <= data.len());
        read_head_values(&head);
        let _ = http::websocket_key(&head);
    }
}

fn read_head_values(head: &RequestHead) {
    let _ = head.api_key();
    let _ = head.query_param("sid");
    let _ = head.query_param("id");
}

/// Client WebSocket bytes through the frame reader, delivered in reads whose size the first
/// byte chooses, with the reader's size limit chosen by the second.
pub fn ws_frames(data: &[u8]) {
    let [step, limit, rest @ ..] = data else {
        return;
    };
    let step = usize::from(*step % 64) + 1;
    let max = if limit & 1 == 0 { 125 } else { 64 << 10 };
    let mut reader = wsframe::Reader::new(max);
    let mut bytes = rest.to_vec();
    for read in bytes.chunks_mut(step) {
        let mut input: &mut [u8] = read;
        loop {
            match reader.next(input) {
                Ok(Some(ev)) => {
                    if let Event::Message(m) = ev {
                        assert!(m.len() <= max, "a message over the limit");
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
            reader.release();
            if !reader.has_carry() {
                break;
            }
            input = &mut [];
        }
        reader.release();
    }
}

/// A long-poll request: its head, the form values the endpoint looks up (body, then query),
/// the session handle, and its body framing (length or chunks, at a 1 KiB limit), with the
/// bytes after the head fed to the chunk decoder in growing prefixes.
pub fn longpoll(data: &[u8]) {
    let Ok(Some((head, len))) = http::parse_head(data) else {
        return;
    };
    read_head_values(&head);
    let body = &data[len..];
    let form = if lp::is_form(&head) {
        String::from_utf8_lossy(body).into_owned()
    } else {
        String::new()
    };
    for name in ["sid", "id", "apikey"] {
        let v = lp::form_value(&form, name).or_else(|| head.query_param(name));
        if let Some(h) = v.as_deref().and_then(SessionHandle::decode) {
            assert_eq!(SessionHandle::decode(&h.encode()), Some(h));
        }
    }
    let _ = lp::has_body(&head);
    const MAX: usize = 1024;
    if let Ok(Framing::Chunked) = lp::framing(&head, MAX) {
        let mut dec = Chunked::default();
        for end in (0..=body.len()).step_by(7).chain([body.len()]) {
            match dec.advance(&body[..end], MAX) {
                Ok(Some(b)) => {
                    assert!(b.len() <= MAX, "a chunked body over the limit");
                    break;
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
}

/// A `pbx.ClientMsg`; one that parses is encoded again by prost and must convert the same.
pub fn protobuf(data: &[u8]) {
    let first = crate::proto::pb::decode_client(data);
    let Ok(m) = pbx::ClientMsg::decode(data) else {
        return;
    };
    let again = crate::proto::pb::decode_client(&m.encode_to_vec());
    assert_eq!(
        format!("{first:?}"),
        format!("{again:?}"),
        "protobuf round trip changed the message"
    );
}

/// A stored record value (kind chosen by the first byte), possibly corrupt.
pub fn store_record(data: &[u8]) {
    if let [kind, rest @ ..] = data {
        crate::store::redb::codec_fuzz::round_trip(*kind, rest);
    }
}

/// A journal segment: raw (first byte even), or the rest wrapped as one record with a valid
/// checksum so that the payload decoder is reached. Decoded batches must re-encode to the same.
pub fn journal(data: &[u8]) {
    use crate::store::journal;
    let [mode, rest @ ..] = data else {
        return;
    };
    let segment = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut seg = Vec::with_capacity(rest.len() + journal::HEADER);
        seg.extend_from_slice(&(rest.len() as u32).to_le_bytes());
        seg.extend_from_slice(&crc32fast::hash(rest).to_le_bytes());
        seg.extend_from_slice(rest);
        seg
    };
    let (batches, _) = journal::decode(&segment);
    let mut out = Vec::new();
    for b in &batches {
        journal::encode(&mut out, b);
    }
    let (again, stop) = journal::decode(&out);
    assert_eq!(stop, None, "a re-encoded journal does not decode");
    assert_eq!(again, batches, "journal round trip changed the batches");
}

/// The fixed time and keys of the [`token`] target.
const NOW: UnixMillis = UnixMillis(1_700_000_000_000);

/// A `{login scheme:"token"}` secret as it arrives (base64 text, decoded as the session
/// does), then raw bytes, verified; and a token minted from the input's fields must verify to
/// the same claims.
pub fn token(data: &[u8]) {
    let issuer = TokenIssuer::new(vec![7; 32], 1, 3600);
    let text = String::from_utf8_lossy(data);
    if let Some(bytes) = crate::session::decode_secret(Some(&text)) {
        let _ = issuer.verify(&bytes, NOW);
    }
    let _ = issuer.verify(data, NOW);
    if let Some((uid, rest)) = data.split_first_chunk::<8>() {
        let level = match rest.first().map(|l| l % 4) {
            Some(0) => AuthLevel::None,
            Some(1) => AuthLevel::Anon,
            Some(2) => AuthLevel::Auth,
            _ => AuthLevel::Root,
        };
        let uid = UserId(u64::from_le_bytes(*uid));
        let (tok, expires) = issuer.mint_with_features(uid, level, 1, NOW);
        let claims = issuer.verify(&tok, NOW).expect("a fresh token verifies");
        assert_eq!(
            (claims.uid, claims.level, claims.expires),
            (uid, level, expires)
        );
        let text = STANDARD.encode(&tok);
        assert_eq!(crate::session::decode_secret(Some(&text)), Some(tok));
    }
}

/// An API key as a client sends it (header, query or cookie text).
pub fn api_key(data: &[u8]) {
    let checker = ApiKeyChecker::new(b"salt".to_vec());
    let _ = checker.check(&String::from_utf8_lossy(data));
}

/// A client WebSocket frame: FIN, `opcode`, masked with `mask` (for seeding `ws_frames`).
pub fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    wsframe::encode(&mut out, opcode, payload);
    let at = out.len() - payload.len();
    out[1] |= 0x80;
    let body = out.split_off(at);
    out.extend_from_slice(&mask);
    out.extend(body.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Seeds made in code for the targets whose inputs are binary (recorded client traffic seeds
/// the others; `tests/fuzz_corpus.rs` writes both).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    use crate::store::redb::codec_fuzz;
    use crate::store::{journal, MessageRecord, WriteOp};
    match target {
        "store_record" => (0u8..)
            .zip(codec_fuzz::samples())
            .map(|(kind, rec)| [vec![kind], rec].concat())
            .collect(),
        "journal" => {
            let msg = |seq: u64, head: Option<&str>| {
                WriteOp::AppendMessage(MessageRecord {
                    topic: "grpAbCdEfGhIjK".into(),
                    seq,
                    ts: NOW,
                    from: UserId(42),
                    head: head.map(str::to_owned),
                    content: "\"hello\"".into(),
                    deleted: false,
                })
            };
            let marks = WriteOp::Markers {
                topic: "p2pAbCdEfGhIjKlMnOpQrStUv".into(),
                user: UserId(42),
                read: 3,
                recv: 4,
            };
            let batches = [
                vec![msg(1, None)],
                vec![msg(2, Some("{\"mime\":\"text/x-drafty\"}")), marks.clone()],
                vec![marks],
            ];
            let mut seeds = Vec::new();
            for b in &batches {
                let mut rec = Vec::new();
                journal::encode(&mut rec, b);
                seeds.push([vec![0], rec.clone()].concat());
                seeds.push([vec![1], rec[journal::HEADER..].to_vec()].concat());
            }
            let mut all = vec![0];
            batches.iter().for_each(|b| journal::encode(&mut all, b));
            seeds.push(all);
            seeds
        }
        "token" => {
            let issuer = TokenIssuer::new(vec![7; 32], 1, 3600);
            let levels = [AuthLevel::Anon, AuthLevel::Auth, AuthLevel::Root];
            let mut seeds = Vec::new();
            for (i, level) in levels.into_iter().enumerate() {
                let (tok, _) = issuer.mint_with_features(UserId(1 << (i * 20)), level, 1, NOW);
                seeds.push(STANDARD.encode(&tok).into_bytes());
                seeds.push(tok);
            }
            seeds
        }
        "api_key" => [0u16, 1, 7, u16::MAX]
            .iter()
            .map(|&seq| crate::auth::apikey::make_key(b"salt", seq, seq == 1).into_bytes())
            .chain([b"AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K".to_vec()])
            .collect(),
        _ => Vec::new(),
    }
}
