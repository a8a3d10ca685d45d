//! The record codec's fuzzing hooks (reached through `crate::fuzzing`): a decode of arbitrary
//! bytes as any record kind, checked to survive an encode and decode unchanged, and one encoding
//! of every record kind to seed the corpus (also the codec tests' samples).

use super::*;

/// The fuzzing entry (`crate::fuzzing::store_record`): decodes `b` as the record kind that
/// `kind % 6` selects (user, auth, topic, subscription, message, delete) and, when it decodes,
/// checks that its encoding decodes to the same record. Never fails otherwise.
pub(crate) fn round_trip(kind: u8, b: &[u8]) {
    fn same<R: PartialEq + std::fmt::Debug>(first: R, again: Result<R, StoreError>) {
        assert_eq!(
            again.as_ref().ok(),
            Some(&first),
            "record changed in a round trip"
        );
    }
    let (user, name) = (UserId(7), "grpAbCdEfGhIjK");
    match kind % 6 {
        0 => {
            if let Ok(r) = decode_user(user, b) {
                same(r.clone(), decode_user(user, &encode_user(&r)));
            }
        }
        1 => {
            if let Ok(r) = decode_auth("basic:alice", b) {
                same(r.clone(), decode_auth("basic:alice", &encode_auth(&r)));
            }
        }
        2 => {
            if let Ok(r) = decode_topic(name, b) {
                same(r.clone(), decode_topic(name, &encode_topic(&r)));
            }
        }
        3 => {
            if let Ok(r) = decode_sub(name, user, b) {
                same(r.clone(), decode_sub(name, user, &encode_sub(&r)));
            }
        }
        4 => {
            if let Ok(r) = decode_message(name, 9, b) {
                same(r.clone(), decode_message(name, 9, &encode_message(&r)));
            }
        }
        _ => {
            if let Ok(r) = decode_del(name, 3, b) {
                same(r.clone(), decode_del(name, 3, &encode_del(&r)));
            }
        }
    }
}

/// One encoding of every record type (in the order of `round_trip`'s kinds), with every optional field present.
pub(crate) fn samples() -> Vec<Vec<u8>> {
    vec![
        encode_user(&UserRecord {
            id: UserId(1),
            created: UnixMillis(1),
            updated: UnixMillis(2),
            state: UserState::Ok,
            access: DefaultAccess {
                auth: AccessMode(0x2f),
                anon: AccessMode(0),
            },
            public: Some("{}".into()),
            trusted: Some("{}".into()),
            tags: vec!["a".into(), "b".into()],
            last_seen: Some((UnixMillis(3), "ua".into())),
            creds: vec![CredRecord {
                method: "email".into(),
                value: "a@b.c".into(),
                done: true,
            }],
        }),
        encode_auth(&AuthRecord {
            unique: "basic:a".into(),
            user: UserId(1),
            scheme: "basic".into(),
            level: AuthLevel::Auth,
            secret: vec![1, 2, 3],
            expires: Some(UnixMillis(4)),
        }),
        encode_topic(&TopicRecord {
            name: "grpX".into(),
            created: UnixMillis(1),
            updated: UnixMillis(2),
            owner: Some(UserId(1)),
            access: DefaultAccess {
                auth: AccessMode(0x2f),
                anon: AccessMode(1),
            },
            public: Some("{}".into()),
            trusted: Some("{}".into()),
            tags: vec!["t".into()],
            is_chan: true,
            del_id: 5,
            aux: Some("{\"pins\":[1]}".into()),
        }),
        encode_sub(&SubRecord {
            topic: "grpX".into(),
            user: UserId(1),
            created: UnixMillis(1),
            updated: UnixMillis(2),
            deleted: Some(UnixMillis(3)),
            want: AccessMode(0x1f),
            given: AccessMode(0x0f),
            read: 4,
            recv: 5,
            del_id: 6,
            private: Some("{}".into()),
        }),
        encode_message(&MessageRecord {
            topic: "grpX".into(),
            seq: 1,
            ts: UnixMillis(1_700_000_000_000),
            from: UserId(9),
            head: Some("{\"mime\":\"text/x-drafty\"}".into()),
            content: "\"hello\"".into(),
            deleted: true,
        }),
        encode_del(&DelRecord {
            topic: "grpX".into(),
            del_id: 7,
            user: Some(UserId(1)),
            ts: UnixMillis(8),
            ranges: vec![(1, 2), (5, 300)],
        }),
    ]
}
