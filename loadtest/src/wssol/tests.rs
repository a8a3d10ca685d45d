//! Tests of the WebSocket speed-of-light peer (`wssol.rs`, `wire.rs`): the framing and field
//! helpers, and the peer end to end on a loopback socket driven by the harness's own Tinode
//! adapter (account creation, token logins, a group and a p2p topic, delivery of the stamp,
//! the `{ctrl 202}` ack, and refusals).

use std::time::Duration;

use super::wire::*;
use super::*;
use crate::adapter::{publish_frame, Event, Proto, Reader, Session};
use crate::cli::TargetKind;
use crate::msg::{Account, TargetSpec};

/// A masked client frame, as a browser or tungstenite sends it.
fn client_frame(op: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0x80 | op];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len < 65_536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn client_frames_are_parsed_and_unmasked_at_every_length_encoding() {
    for len in [0usize, 5, 125, 126, 200, 65_535, 65_536, 70_001] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = client_frame(1, &payload, [0x12, 0x34, 0x56, 0x78]);
        assert!(frame_head(&f[..1]).is_none(), "incomplete header");
        let h = frame_head(&f).expect("complete header");
        assert!(h.fin && h.masked && h.op == 1, "len {len}");
        assert_eq!(h.len, len);
        assert_eq!(h.hdr + h.len, f.len());
        let mask = [f[h.hdr - 4], f[h.hdr - 3], f[h.hdr - 2], f[h.hdr - 1]];
        unmask(&mut f[h.hdr..], mask);
        assert_eq!(&f[h.hdr..], &payload[..], "len {len}");
    }
}

#[test]
fn server_frames_are_unmasked_text_frames_of_the_parts() {
    for len in [3usize, 130, 70_000] {
        let body = vec![b'x'; len];
        let mut out = Vec::new();
        push_frame(&mut out, &[b"{", &body, b"}"]);
        let h = frame_head(&out).unwrap();
        assert!(h.fin && !h.masked && h.op == 1);
        assert_eq!(h.len, len + 2);
        assert_eq!(&out[h.hdr..], [&b"{"[..], &body, b"}"].concat());
    }
}

#[test]
fn fields_names_and_headers() {
    let m = br#"{"pub":{"id":"p7","topic":"grp00000000003","noecho":true,"content":"a\"b"}}"#;
    assert_eq!(string_at(m, b"\"id\":\""), Some(&b"p7"[..]));
    assert_eq!(string_at(m, b"\"content\":\""), Some(&br#"a\"b"#[..]));
    assert_eq!(string_at(m, b"\"secret\":\""), None);
    assert_eq!(parse_name(b"grp00000000003", b"grp"), Some(3));
    assert_eq!(parse_name(b"usr00000000003", b"grp"), None);
    assert_eq!(parse_name(b"grp3", b"grp"), None);
    assert_eq!(&named(b"usr", 42), b"usr00000000042");
    let mut n = [0u8; 20];
    assert_eq!(digits(0, &mut n), b"0");
    assert_eq!(digits(1_234_567, &mut n), b"1234567");
    let head = b"GET /v0/channels HTTP/1.1\r\nHost: x\r\nsec-WebSocket-KEY:  abc= \r\n\r\n";
    assert_eq!(header(head, b"sec-websocket-key"), Some(&b"abc="[..]));
    assert_eq!(header(head, b"upgrade"), None);
}

fn start() -> (SocketAddr, TargetSpec) {
    let (fd, addr) = bind("127.0.0.1:0").unwrap();
    std::thread::spawn(move || serve(fd));
    let t = TargetSpec {
        kind: TargetKind::WsSol,
        addr: addr.to_string(),
        run_id: "t".into(),
        grpc_addr: None,
    };
    (addr, t)
}

/// Reads until a delivery or an ack arrives (5 s at most).
async fn next_event(r: &mut Reader) -> (Option<Vec<u8>>, Option<u64>) {
    let (mut data, mut ack) = (None, None);
    tokio::time::timeout(Duration::from_secs(5), async {
        while data.is_none() && ack.is_none() {
            let open = r
                .next(&mut |e| match e {
                    Event::Delivery(p) => data = Some(p.to_vec()),
                    Event::Ack(t) => ack = Some(t),
                    Event::Error(e) => panic!("error frame: {e}"),
                    Event::Reply(_) => {}
                })
                .await
                .unwrap();
            assert!(open, "connection closed");
        }
    })
    .await
    .expect("an event within 5 s");
    (data, ack)
}

#[tokio::test]
async fn serves_the_harness_tinode_sessions_groups_and_p2p() {
    let (addr, t) = start();
    let mut accts = Vec::new();
    for login in ["a", "b", "c", "d"] {
        let a = Session::create_account(&t, addr, None, login, "pw")
            .await
            .unwrap();
        assert!(a.user.starts_with("usr") && a.user.len() == 14, "{a:?}");
        assert!(!a.token.is_empty());
        accts.push(a);
    }
    // W4/W3-grp: a group made by one session, joined by another.
    let mut sa = Session::open(&t, addr, None, &accts[0]).await.unwrap();
    assert_eq!(sa.user, accts[0].user, "token login reports the user");
    let g = sa.create_group().await.unwrap();
    assert!(g.starts_with("grp"), "{g}");
    let mut sb = Session::open(&t, addr, None, &accts[1]).await.unwrap();
    assert_eq!(sb.join(&g).await.unwrap(), g);
    let (mut ka, mut ra) = sa.split();
    let (_kb, mut rb) = sb.split();
    ka.send(publish_frame(Proto::Tinode, &g, 42, "T1.2.42.xx".into()))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut rb).await.0.as_deref(),
        Some(&b"T1.2.42.xx"[..])
    );
    assert_eq!(
        next_event(&mut ra).await,
        (None, Some(42)),
        "publisher: ack only"
    );

    // W3-p2p: each side subscribes to the other user.
    let (c, d) = (&accts[2], &accts[3]);
    let mut sc = Session::open(&t, addr, None, c).await.unwrap();
    let mut sd = Session::open(&t, addr, None, d).await.unwrap();
    sc.join(&d.user).await.unwrap();
    sd.join(&c.user).await.unwrap();
    let (mut kc, mut rc) = sc.split();
    let (mut kd, mut rd) = sd.split();
    kc.send(publish_frame(Proto::Tinode, &d.user, 7, "T3.1.7.".into()))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut rd).await.0.as_deref(),
        Some(&b"T3.1.7."[..])
    );
    assert_eq!(next_event(&mut rc).await.1, Some(7));
    kd.send(publish_frame(Proto::Tinode, &c.user, 8, "T4.1.8.".into()))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut rc).await.0.as_deref(),
        Some(&b"T4.1.8."[..])
    );
    assert_eq!(next_event(&mut rd).await.1, Some(8));

    // The group's member got nothing from the p2p topic: its next event is the next group
    // message.
    ka.send(publish_frame(Proto::Tinode, &g, 43, "T1.3.43.".into()))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut rb).await.0.as_deref(),
        Some(&b"T1.3.43."[..])
    );
}

#[tokio::test]
async fn refuses_what_it_does_not_serve() {
    let (addr, t) = start();
    let bad = Account {
        login: "x".into(),
        user: "usr00000000001".into(),
        token: "usr00000000009".into(),
    };
    let e = Session::open(&t, addr, None, &bad).await.err().unwrap();
    assert!(format!("{e:#}").contains("401"), "{e:#}");
    let a = Session::create_account(&t, addr, None, "a", "pw")
        .await
        .unwrap();
    let mut s = Session::open(&t, addr, None, &a).await.unwrap();
    let e = s.join("grp00000000077").await.err().unwrap();
    assert!(format!("{e:#}").contains("404"), "{e:#}");
    // No raw echo endpoint: W0 reports the target unsupported on this 404.
    let e = Session::echo(addr, None, "/echo").await.err().unwrap();
    assert_eq!(crate::net::http_status(&e), Some(404));
}
