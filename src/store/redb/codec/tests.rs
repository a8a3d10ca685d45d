//! Tests of the record codec alone: varint edges, damaged and truncated bytes (errors, never
//! panics), and version-1 records decoding with the defaults of the fields version 2 added.

use super::*;

fn message() -> MessageRecord {
    MessageRecord {
        topic: "grpX".into(),
        seq: 1,
        ts: UnixMillis(1_700_000_000_000),
        from: UserId(9),
        head: Some("{\"mime\":\"text/x-drafty\"}".into()),
        content: "\"hello\"".into(),
        deleted: false,
    }
}

/// One encoding of every record type, with every optional field present.
fn every_encoding() -> Vec<Vec<u8>> {
    fuzz::samples()
}

/// Decodes `b` as the `kind`-th record type of [`every_encoding`].
fn decode_kind(kind: usize, b: &[u8]) -> Result<(), StoreError> {
    match kind {
        0 => decode_user(UserId(1), b).map(drop),
        1 => decode_auth("basic:a", b).map(drop),
        2 => decode_topic("grpX", b).map(drop),
        3 => decode_sub("grpX", UserId(1), b).map(drop),
        4 => decode_message("grpX", 1, b).map(drop),
        _ => decode_del("grpX", 7, b).map(drop),
    }
}

#[test]
fn varints_round_trip_at_the_edges() {
    for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
        let mut e = Enc::new();
        e.u64(v);
        let mut d = Dec::new(&e.0).unwrap();
        assert_eq!(d.u64().unwrap(), v);
        d.finish(()).unwrap();
    }
}

#[test]
fn bad_bytes_are_errors_not_panics() {
    let good = encode_message(&message());
    assert_eq!(good[0], 2);
    assert!(decode_message("grpX", 1, &good).is_ok());
    // Every truncation, a wrong version, trailing junk and an oversized varint.
    for n in 0..good.len() {
        let r = decode_message("grpX", 1, &good[..n]);
        assert!(matches!(r, Err(StoreError::Backend(_))), "prefix {n}");
    }
    for v in [0, 3, 99] {
        let mut wrong_version = good.clone();
        wrong_version[0] = v;
        assert!(decode_message("grpX", 1, &wrong_version).is_err(), "{v}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(decode_message("grpX", 1, &trailing).is_err());
    let mut bad_flag = good.clone();
    *bad_flag.last_mut().unwrap() = 2;
    assert!(decode_message("grpX", 1, &bad_flag).is_err());
    let overflow = [
        VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ];
    assert!(Dec::new(&overflow).unwrap().u64().is_err());
    let huge_len = [VERSION, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(decode_message("grpX", 1, &huge_len).is_err());
    assert!(decode_user(UserId(1), &[VERSION, 0, 0, 7]).is_err());
    // A huge count of ranges or credentials is refused before any allocation.
    let huge_ranges = [VERSION, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(decode_del("grpX", 1, &huge_ranges).is_err());
}

#[test]
fn every_record_survives_truncation_and_byte_damage() {
    for (kind, good) in every_encoding().iter().enumerate() {
        decode_kind(kind, good).unwrap();
        for n in 0..good.len() {
            assert!(decode_kind(kind, &good[..n]).is_err(), "{kind}: prefix {n}");
        }
        // Any damaged byte decodes to something or to an error, never a panic.
        for i in 0..good.len() {
            for v in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff, good[i] ^ 0x55] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = decode_kind(kind, &bad);
            }
        }
    }
}

#[test]
fn version_one_records_decode_with_defaults() {
    let user_v1: &[u8] = &[
        1, // version
        0xac, 0x02, // created 300
        0xad, 0x02, // updated 301
        1,    // suspended
        0x2f, 0x00, // access
        1, 2, b'{', b'}', // public
        0,    // no trusted
        1, 1, b'a', // tags ["a"]
        1, 5, 2, b'u', b'a', // last seen
    ];
    assert_eq!(
        decode_user(UserId(4), user_v1).unwrap(),
        UserRecord {
            id: UserId(4),
            created: UnixMillis(300),
            updated: UnixMillis(301),
            state: UserState::Suspended,
            access: DefaultAccess {
                auth: AccessMode(0x2f),
                anon: AccessMode(0),
            },
            public: Some("{}".into()),
            trusted: None,
            tags: vec!["a".into()],
            last_seen: Some((UnixMillis(5), "ua".into())),
            creds: vec![],
        }
    );
    let topic_v1: &[u8] = &[1, 1, 2, 1, 7, 0x2f, 0x01, 0, 0, 0, 1, 3];
    assert_eq!(
        decode_topic("grpX", topic_v1).unwrap(),
        TopicRecord {
            name: "grpX".into(),
            created: UnixMillis(1),
            updated: UnixMillis(2),
            owner: Some(UserId(7)),
            access: DefaultAccess {
                auth: AccessMode(0x2f),
                anon: AccessMode(1),
            },
            public: None,
            trusted: None,
            tags: vec![],
            is_chan: true,
            del_id: 3,
            aux: None,
        }
    );
    let message_v1: &[u8] = &[1, 0xe8, 0x07, 9, 0, 2, b'"', b'"'];
    assert_eq!(
        decode_message("grpX", 6, message_v1).unwrap(),
        MessageRecord {
            topic: "grpX".into(),
            seq: 6,
            ts: UnixMillis(1_000),
            from: UserId(9),
            head: None,
            content: "\"\"".into(),
            deleted: false,
        }
    );
    // Unchanged layouts decode from either version.
    let sub_v1: &[u8] = &[1, 10, 11, 0, 0x1f, 0x0f, 5, 6, 0, 0];
    let sub = decode_sub("grpX", UserId(2), sub_v1).unwrap();
    assert_eq!((sub.read, sub.recv, sub.want), (5, 6, AccessMode(0x1f)));
    let auth_v1: &[u8] = &[1, 2, 5, b'b', b'a', b's', b'i', b'c', 2, 0, 0];
    let auth = decode_auth("basic:x", auth_v1).unwrap();
    assert_eq!((auth.user, auth.level), (UserId(2), AuthLevel::Auth));

    // A version-1 record never carries the new fields, and is not read as version 2.
    let mut message_v1_plus = message_v1.to_vec();
    message_v1_plus.push(1);
    assert!(decode_message("grpX", 6, &message_v1_plus).is_err());
    let mut as_v2 = message_v1.to_vec();
    as_v2[0] = 2;
    assert!(decode_message("grpX", 6, &as_v2).is_err());
    // Delete records only exist from version 2 on.
    let del_v1: &[u8] = &[1, 0, 8, 0];
    assert!(decode_del("grpX", 1, del_v1).is_err());
    let mut del_v2 = del_v1.to_vec();
    del_v2[0] = 2;
    assert_eq!(decode_del("grpX", 1, &del_v2).unwrap().ts, UnixMillis(8));
}
