//! Records and helpers the conformance suite and the backends' own tests build their cases
//! from: one filled-in record of each type, and short forms of the calls every case makes.

use crate::access::{AccessMode, AuthLevel, DefaultAccess};
use crate::ids::{UnixMillis, UserId};
use crate::store::{
    AuthRecord, CredRecord, DelRecord, MessageQuery, MessageRecord, Store, SubRecord, TopicRecord,
    UserRecord, UserState, WriteBatch,
};

pub(crate) fn user(id: u64) -> UserRecord {
    UserRecord {
        id: UserId(id),
        created: UnixMillis(1_700_000_000_000),
        updated: UnixMillis(1_700_000_000_500),
        state: UserState::Suspended,
        access: DefaultAccess {
            auth: AccessMode::USER_AUTH_DEFAULT,
            anon: AccessMode::NONE,
        },
        public: Some(r#"{"fn":"Alice \"A\" Ü","photo":null}"#.into()),
        trusted: None,
        tags: vec!["email:alice@example.com".into(), "alice".into()],
        last_seen: Some((
            UnixMillis(1_700_000_001_000),
            "TinodeWeb/0.22 (Firefox)".into(),
        )),
        creds: vec![
            CredRecord {
                method: "email".into(),
                value: "alice@example.com".into(),
                done: true,
            },
            CredRecord {
                method: "tel".into(),
                value: "+15551234567".into(),
                done: false,
            },
        ],
    }
}

pub(crate) fn auth(unique: &str, uid: u64) -> AuthRecord {
    AuthRecord {
        unique: unique.into(),
        user: UserId(uid),
        scheme: "basic".into(),
        level: AuthLevel::Auth,
        secret: vec![0, 1, 2, 255, b'$'],
        expires: Some(UnixMillis(1_800_000_000_000)),
    }
}

pub(crate) fn topic(name: &str) -> TopicRecord {
    TopicRecord {
        name: name.into(),
        created: UnixMillis(1),
        updated: UnixMillis(2),
        owner: Some(UserId(7)),
        access: DefaultAccess {
            auth: AccessMode::PUBLIC,
            anon: AccessMode(AccessMode::READ),
        },
        public: Some(r#"{"fn":"Group"}"#.into()),
        trusted: Some(r#"{"verified":true}"#.into()),
        tags: vec![],
        is_chan: true,
        del_id: 3,
        aux: Some(r#"{"pins":[3,1]}"#.into()),
    }
}

pub(crate) fn sub(topic: &str, uid: u64) -> SubRecord {
    SubRecord {
        topic: topic.into(),
        user: UserId(uid),
        created: UnixMillis(10),
        updated: UnixMillis(11),
        deleted: None,
        want: AccessMode::OWNER_FULL,
        given: AccessMode::PUBLIC,
        read: 5,
        recv: 6,
        del_id: 0,
        private: Some(r#"{"comment":"mine"}"#.into()),
    }
}

pub(crate) fn msg(topic: &str, seq: u64) -> MessageRecord {
    MessageRecord {
        topic: topic.into(),
        seq,
        ts: UnixMillis(1_000u64.wrapping_add(seq)),
        from: UserId(7),
        head: seq
            .is_multiple_of(2)
            .then(|| r#"{"mime":"text/x-drafty"}"#.to_owned()),
        content: format!(r#"{{"txt":"message {seq}"}}"#),
        deleted: false,
    }
}

pub(crate) fn q(since: Option<u64>, before: Option<u64>, limit: usize) -> MessageQuery {
    MessageQuery {
        since,
        before,
        limit,
        exclude: vec![],
    }
}

pub(crate) fn seqs(v: &[MessageRecord]) -> Vec<u64> {
    v.iter().map(|m| m.seq).collect()
}

pub(crate) fn apply_ok(store: &dyn Store, batch: WriteBatch) {
    let r = store.apply(&[batch]);
    assert_eq!(r, vec![Ok(())]);
}

pub(crate) fn del(topic: &str, del_id: u64, user: Option<u64>, ranges: &[(u64, u64)]) -> DelRecord {
    DelRecord {
        topic: topic.into(),
        del_id,
        user: user.map(UserId),
        ts: UnixMillis(2_000 + del_id),
        ranges: ranges.to_vec(),
    }
}

pub(crate) fn tagged_user(id: u64, tags: &[&str]) -> UserRecord {
    UserRecord {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..user(id)
    }
}

pub(crate) fn tagged_topic(name: &str, tags: &[&str]) -> TopicRecord {
    TopicRecord {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..topic(name)
    }
}

pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|t| t.to_string()).collect()
}

/// `find_tags` with `&str` arguments.
pub(crate) fn find(s: &dyn Store, tags: &[&str], limit: usize) -> Vec<(String, Vec<String>)> {
    s.find_tags(&strings(tags), limit).unwrap()
}
