//! Tests of the WebSocket frame reader and encoder: whole and partial frames, headers split
//! anywhere, masks, fragmentation, control frames between fragments, limits, UTF-8, close
//! replies, and that nothing stays allocated between messages.

use super::*;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame.
fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    encode(&mut f, opcode, payload);
    if !fin {
        f[0] &= 0x7F;
    }
    f[1] |= 0x80;
    let head = f.len() - payload.len();
    let mut out = f[..head].to_vec();
    out.extend_from_slice(&MASK);
    let mut body = payload.to_vec();
    unmask(&mut body, MASK);
    out.extend_from_slice(&body);
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Got {
    Msg(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Vec<u8>),
}

/// Feeds `bytes` in chunks of `step`, collecting every event.
fn feed(r: &mut Reader, bytes: &[u8], step: usize) -> Result<Vec<Got>, Error> {
    let mut got = Vec::new();
    for chunk in bytes.chunks(step.max(1)) {
        let mut input = chunk.to_vec();
        let mut first = true;
        loop {
            let mut empty = [];
            let inp: &mut [u8] = if first { &mut input } else { &mut empty };
            first = false;
            match r.next(inp)? {
                Some(ev) => got.push(match ev {
                    Event::Message(d) => Got::Msg(d.to_vec()),
                    Event::Ping(d) => Got::Ping(d.to_vec()),
                    Event::Pong => Got::Pong,
                    Event::Close(c) => Got::Close(close_payload(&c)),
                }),
                None => break,
            }
            if !r.has_carry() {
                break;
            }
        }
        r.release();
    }
    Ok(got)
}

#[test]
fn whole_frames_in_one_read_and_byte_by_byte() {
    let mut bytes = client(true, OP_TEXT, br#"{"hi":{"ver":"0.22"}}"#);
    bytes.extend(client(true, OP_BINARY, &[0, 1, 2, 255]));
    bytes.extend(client(true, OP_TEXT, b""));
    let want = vec![
        Got::Msg(br#"{"hi":{"ver":"0.22"}}"#.to_vec()),
        Got::Msg(vec![0, 1, 2, 255]),
        Got::Msg(vec![]),
    ];
    for step in [1, 2, 3, 5, 7, 11, bytes.len()] {
        let mut r = Reader::new(1 << 20);
        assert_eq!(feed(&mut r, &bytes, step).unwrap(), want, "step {step}");
        assert_eq!(
            r.held(),
            0,
            "nothing held after the last message (step {step})"
        );
    }
}

#[test]
fn extended_lengths_16_and_64_bit() {
    for len in [125usize, 126, 127, 65535, 65536, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let bytes = client(true, OP_BINARY, &payload);
        for step in [1usize, 4096, bytes.len()] {
            if step == 1 && len > 1000 {
                continue;
            }
            let mut r = Reader::new(1 << 20);
            assert_eq!(
                feed(&mut r, &bytes, step).unwrap(),
                vec![Got::Msg(payload.clone())],
                "len {len} step {step}"
            );
            assert_eq!(r.held(), 0);
        }
    }
}

#[test]
fn headers_split_at_every_byte() {
    let payload = vec![b'x'; 300];
    let bytes = client(true, OP_TEXT, &payload);
    for cut in 1..bytes.len() {
        let mut r = Reader::new(1 << 20);
        let mut a = bytes[..cut].to_vec();
        assert_eq!(r.next(&mut a).unwrap(), None, "cut {cut}");
        assert!(r.has_carry());
        let mut b = bytes[cut..].to_vec();
        assert_eq!(r.next(&mut b).unwrap(), Some(Event::Message(&payload)));
        r.release();
        assert_eq!(r.held(), 0);
    }
}

#[test]
fn fragmented_messages_with_control_frames_between() {
    let mut bytes = client(false, OP_TEXT, b"hel");
    bytes.extend(client(true, OP_PING, b"p"));
    bytes.extend(client(false, OP_CONT, b"lo "));
    bytes.extend(client(true, OP_PONG, b""));
    bytes.extend(client(true, OP_CONT, "w\u{f6}rld".as_bytes()));
    bytes.extend(client(true, OP_BINARY, b"after"));
    let want = vec![
        Got::Ping(b"p".to_vec()),
        Got::Pong,
        Got::Msg("hello w\u{f6}rld".as_bytes().to_vec()),
        Got::Msg(b"after".to_vec()),
    ];
    for step in [1, 2, 9, bytes.len()] {
        let mut r = Reader::new(1 << 20);
        assert_eq!(feed(&mut r, &bytes, step).unwrap(), want, "step {step}");
        assert_eq!(r.held(), 0);
    }
}

#[test]
fn utf8_split_across_fragments_is_fine_invalid_text_is_not() {
    let e = "\u{e9}".as_bytes();
    let mut bytes = client(false, OP_TEXT, &e[..1]);
    bytes.extend(client(true, OP_CONT, &e[1..]));
    let mut r = Reader::new(100);
    assert_eq!(feed(&mut r, &bytes, 3).unwrap(), vec![Got::Msg(e.to_vec())]);

    let mut r = Reader::new(100);
    let bad = client(true, OP_TEXT, &[0xff, 0xfe]);
    assert_eq!(feed(&mut r, &bad, 100), Err(Error::Utf8));
    // Binary frames are not checked.
    let mut r = Reader::new(100);
    let bin = client(true, OP_BINARY, &[0xff, 0xfe]);
    assert_eq!(
        feed(&mut r, &bin, 100).unwrap(),
        vec![Got::Msg(vec![0xff, 0xfe])]
    );
}

#[test]
fn limits_apply_to_frames_and_to_assembled_messages() {
    let max = 1000;
    let at = client(true, OP_TEXT, &vec![b'a'; max]);
    assert_eq!(feed(&mut Reader::new(max), &at, 64).unwrap().len(), 1);
    // A frame over the limit fails on its header alone, before the payload arrives.
    let over = client(true, OP_TEXT, &vec![b'a'; max + 1]);
    let mut r = Reader::new(max);
    let mut head = over[..8].to_vec();
    assert_eq!(r.next(&mut head), Err(Error::TooLarge));
    // A length no machine can hold.
    let mut huge = vec![0x82, 0xFF];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    huge.extend_from_slice(&MASK);
    assert_eq!(Reader::new(max).next(&mut huge), Err(Error::TooLarge));
    // Fragments that together exceed it.
    let mut frags = client(false, OP_BINARY, &vec![1; 600]);
    frags.extend(client(true, OP_CONT, &vec![2; 401]));
    assert_eq!(
        feed(&mut Reader::new(max), &frags, 50),
        Err(Error::TooLarge)
    );
    let mut frags = client(false, OP_BINARY, &vec![1; 600]);
    frags.extend(client(true, OP_CONT, &vec![2; 400]));
    assert_eq!(feed(&mut Reader::new(max), &frags, 50).unwrap().len(), 1);
}

#[test]
fn protocol_violations() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut f = client(true, OP_TEXT, b"x");
                f[0] |= 0x40;
                f
            },
            "reserved bits",
        ),
        (
            {
                let mut f = Vec::new();
                encode(&mut f, OP_TEXT, b"x");
                f
            },
            "unmasked",
        ),
        (client(true, 0x3, b"x"), "reserved data opcode"),
        (client(true, 0xB, b"x"), "reserved control opcode"),
        (client(false, OP_PING, b"x"), "fragmented ping"),
        (client(true, OP_PING, &[0; 126]), "ping over 125"),
        (client(true, OP_CONT, b"x"), "stray continuation"),
        (
            {
                let mut f = client(false, OP_TEXT, b"a");
                f.extend(client(true, OP_TEXT, b"b"));
                f
            },
            "data inside a fragmented message",
        ),
        (client(true, OP_CLOSE, &[3]), "one-byte close"),
        (
            client(true, OP_CLOSE, &[0x03, 0xe8, 0xff]),
            "close reason not UTF-8",
        ),
    ];
    for (bytes, what) in cases {
        assert!(feed(&mut Reader::new(1000), &bytes, 100).is_err(), "{what}");
    }
}

#[test]
fn close_replies_echo_allowed_codes() {
    let reply = |payload: &[u8]| {
        let mut r = Reader::new(1000);
        feed(&mut r, &client(true, OP_CLOSE, payload), 100).unwrap()
    };
    assert_eq!(reply(b""), vec![Got::Close(vec![])]);
    let normal = [&1000u16.to_be_bytes()[..], b"bye"].concat();
    assert_eq!(reply(&normal), vec![Got::Close(normal.clone())]);
    let app = 4001u16.to_be_bytes();
    assert_eq!(reply(&app), vec![Got::Close(app.to_vec())]);
    let violation = [&1002u16.to_be_bytes()[..], b"Protocol violation"].concat();
    for bad in [999u16, 1005, 1006, 1015, 2000, 5000] {
        assert_eq!(
            reply(&bad.to_be_bytes()),
            vec![Got::Close(violation.clone())],
            "{bad}"
        );
    }
}

#[test]
fn encoder_lengths() {
    for (len, head) in [
        (0usize, 2usize),
        (125, 2),
        (126, 4),
        (65535, 4),
        (65536, 10),
    ] {
        let mut out = Vec::new();
        encode(&mut out, OP_TEXT, &vec![b'z'; len]);
        assert_eq!(out.len(), head + len, "{len}");
        assert_eq!(out[0], 0x81);
        assert_eq!(out[1] & 0x80, 0, "server frames are not masked");
    }
}

#[test]
fn pipelined_tail_is_kept_compact() {
    // Many frames whose reads always end mid-frame: the carry never holds consumed bytes.
    let one = client(true, OP_TEXT, b"0123456789");
    let stream: Vec<u8> = one.iter().copied().cycle().take(one.len() * 200).collect();
    let mut r = Reader::new(1000);
    let got = feed(&mut r, &stream, 23).unwrap();
    assert_eq!(got.len(), 200);
    assert_eq!(r.held(), 0);
}
