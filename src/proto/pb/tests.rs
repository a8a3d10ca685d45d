//! Tests of the protobuf encoding: every server message encoded, decoded with the prost types
//! and checked field by field.

use super::*;
use crate::ids::UnixMillis;
use crate::proto::codec::encode;
use crate::proto::ctrl::Outcome;
use crate::proto::server::raw;
use pbx::server_msg::Message;

const T: u64 = 1_735_787_045_123;

fn ts(ms: u64) -> Ts {
    Ts(UnixMillis(ms))
}

fn round_trip(msg: &ServerMsg) -> Message {
    let bytes = encode_server(msg);
    let back = pbx::ServerMsg::decode(&bytes[..]).expect("decodes as pbx.ServerMsg");
    assert_eq!(
        back,
        server_msg(msg),
        "decoding gives back what was encoded"
    );
    back.message.expect("one payload")
}

fn parsed(b: &[u8]) -> Value {
    serde_json::from_slice(b).expect("JSON bytes")
}

#[test]
fn ctrl_carries_code_text_and_params_as_json() {
    let m = Outcome::Accepted
        .ctrl(Some("5"), Some("grpA"), UnixMillis(T))
        .param("seq", 18)
        .param("what", "data")
        .param("obj", serde_json::json!({"b": [1, 2], "a": null}))
        .param("gone", Value::Null)
        .msg();
    let Message::Ctrl(c) = round_trip(&m) else {
        panic!("not a ctrl")
    };
    assert_eq!(c.id, "5");
    assert_eq!(c.topic, "grpA");
    assert_eq!(c.code, 202);
    assert_eq!(c.text, "accepted");
    assert_eq!(
        c.params.keys().collect::<Vec<_>>(),
        ["obj", "seq", "what"],
        "null params are dropped"
    );
    assert_eq!(c.params["seq"], b"18");
    assert_eq!(c.params["what"], br#""data""#);
    assert_eq!(
        parsed(&c.params["obj"]),
        serde_json::json!({"b": [1, 2], "a": null})
    );

    let bare = Outcome::Ok.ctrl(None, None, UnixMillis(T)).msg();
    let Message::Ctrl(c) = round_trip(&bare) else {
        panic!("not a ctrl")
    };
    assert_eq!((c.id.as_str(), c.topic.as_str(), c.code), ("", "", 200));
    assert!(c.params.is_empty());
}

#[test]
fn data_keeps_content_and_head_verbatim() {
    let content = r#"{"txt":"héllo","fmt":[{"at":0,"len":5,"tp":"ST"}]}"#;
    let m = ServerMsg::Data(Data {
        topic: "grpA".into(),
        from: Some("usrAAAAAAAAAAA".into()),
        ts: ts(T),
        seq: 17,
        head: Some(raw(r#"{"mime":"text/x-drafty","reply":"grpA:3","n":null}"#)),
        content: raw(content),
    });
    let Message::Data(d) = round_trip(&m) else {
        panic!("not data")
    };
    assert_eq!(d.topic, "grpA");
    assert_eq!(d.from_user_id, "usrAAAAAAAAAAA");
    assert_eq!(d.timestamp, T as i64);
    assert_eq!(d.deleted_at, 0);
    assert_eq!(d.seq_id, 17);
    assert_eq!(d.content, content.as_bytes());
    assert_eq!(d.head.len(), 2, "null head values are dropped");
    assert_eq!(d.head["mime"], br#""text/x-drafty""#);
    assert_eq!(d.head["reply"], br#""grpA:3""#);

    let plain = ServerMsg::Data(Data {
        topic: "grpA".into(),
        from: None,
        ts: ts(T),
        seq: 1,
        head: None,
        content: raw(r#""hi all""#),
    });
    let Message::Data(d) = round_trip(&plain) else {
        panic!("not data")
    };
    assert_eq!(d.from_user_id, "");
    assert!(d.head.is_empty());
    assert_eq!(d.content, br#""hi all""#);
}

fn acs(want: &str, given: &str) -> AccessOut {
    AccessOut {
        want: want.into(),
        given: given.into(),
        mode: "JRWPS".into(),
    }
}

#[test]
fn meta_desc_maps_every_field() {
    let m = ServerMsg::Meta(Meta {
        id: Some("3".into()),
        topic: "me".into(),
        ts: ts(T),
        desc: Some(DescOut {
            created: Some(ts(T - 3000)),
            updated: Some(ts(T - 2000)),
            touched: Some(ts(T - 1000)),
            state: Some("ok".into()),
            online: true,
            chan: true,
            defacs: Some(DefAcsOut {
                auth: "JRWPAS".into(),
                anon: "N".into(),
            }),
            acs: Some(acs("JRWPS", "JRWPAS")),
            seq: 17,
            read: 16,
            recv: 15,
            clear: 2,
            public: Some(raw(r#"{"fn":"Alice"}"#)),
            trusted: Some(raw(r#"{"verified":true}"#)),
            private: Some(raw(r#"{"comment":"me"}"#)),
            seen: Some(SeenOut {
                when: ts(T - 500),
                ua: Some("TinodeWeb/0.23".into()),
            }),
            subcnt: 3,
        }),
        ..Default::default()
    });
    let Message::Meta(mt) = round_trip(&m) else {
        panic!("not meta")
    };
    assert_eq!((mt.id.as_str(), mt.topic.as_str()), ("3", "me"));
    assert!(mt.sub.is_empty() && mt.del.is_none() && mt.tags.is_empty() && mt.cred.is_empty());
    let d = mt.desc.expect("desc");
    assert_eq!(d.created_at, (T - 3000) as i64);
    assert_eq!(d.updated_at, (T - 2000) as i64);
    assert_eq!(d.touched_at, (T - 1000) as i64);
    assert_eq!(d.state, "ok");
    assert_eq!(d.state_at, 0);
    assert!(d.online && d.is_chan);
    let defacs = d.defacs.expect("defacs");
    assert_eq!(
        (defacs.auth.as_str(), defacs.anon.as_str()),
        ("JRWPAS", "N")
    );
    let a = d.acs.expect("acs");
    assert_eq!((a.want.as_str(), a.given.as_str()), ("JRWPS", "JRWPAS"));
    assert_eq!((d.seq_id, d.read_id, d.recv_id, d.del_id), (17, 16, 15, 2));
    assert_eq!(d.public, br#"{"fn":"Alice"}"#);
    assert_eq!(d.trusted, br#"{"verified":true}"#);
    assert_eq!(d.private, br#"{"comment":"me"}"#);
    assert_eq!(d.last_seen_time, (T - 500) as i64);
    assert_eq!(d.last_seen_user_agent, "TinodeWeb/0.23");

    // An empty description: absent sections stay absent, zero stays zero.
    let empty = ServerMsg::Meta(Meta {
        topic: "grpA".into(),
        ts: ts(T),
        desc: Some(DescOut::default()),
        ..Default::default()
    });
    let Message::Meta(mt) = round_trip(&empty) else {
        panic!("not meta")
    };
    assert_eq!(mt.id, "");
    let d = mt.desc.expect("desc");
    assert_eq!(d, pbx::TopicDesc::default());
}

#[test]
fn meta_sub_maps_members_and_contacts() {
    let m = ServerMsg::Meta(Meta {
        id: Some("4".into()),
        topic: "me".into(),
        ts: ts(T),
        sub: Some(vec![
            SubOut {
                topic: Some("grpAbCdEfGhIjK".into()),
                updated: Some(ts(T - 10)),
                touched: Some(ts(T - 5)),
                acs: Some(acs("JRWPS", "JRWPS")),
                read: 16,
                recv: 16,
                seq: 17,
                clear: 4,
                public: Some(raw(r#"{"fn":"Group"}"#)),
                private: Some(raw(r#""pinned""#)),
                subcnt: 3,
                ..Default::default()
            },
            SubOut {
                user: Some("usrBBBBBBBBBBB".into()),
                topic: Some("usrBBBBBBBBBBB".into()),
                deleted: Some(ts(T - 1)),
                online: true,
                trusted: Some(raw(r#"{"staff":true}"#)),
                seen: Some(SeenOut {
                    when: ts(T - 60_000),
                    ua: None,
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    });
    let Message::Meta(mt) = round_trip(&m) else {
        panic!("not meta")
    };
    assert!(mt.desc.is_none());
    assert_eq!(mt.sub.len(), 2);
    let g = &mt.sub[0];
    assert_eq!(g.topic, "grpAbCdEfGhIjK");
    assert_eq!(g.user_id, "");
    assert_eq!(
        (g.updated_at, g.touched_at, g.deleted_at),
        ((T - 10) as i64, (T - 5) as i64, 0)
    );
    let a = g.acs.as_ref().expect("acs");
    assert_eq!((a.want.as_str(), a.given.as_str()), ("JRWPS", "JRWPS"));
    assert_eq!((g.read_id, g.recv_id, g.seq_id, g.del_id), (16, 16, 17, 4));
    assert_eq!(g.public, br#"{"fn":"Group"}"#);
    assert_eq!(g.private, br#""pinned""#);
    assert!(g.trusted.is_empty() && !g.online);
    let p = &mt.sub[1];
    assert_eq!(p.user_id, "usrBBBBBBBBBBB");
    assert_eq!(p.deleted_at, (T - 1) as i64);
    assert!(p.online);
    assert_eq!(
        p.acs,
        Some(pbx::AccessMode::default()),
        "acs is always present, as in the reference"
    );
    assert_eq!(p.trusted, br#"{"staff":true}"#);
    assert!(p.public.is_empty());
    assert_eq!(p.last_seen_time, (T - 60_000) as i64);
    assert_eq!(p.last_seen_user_agent, "");
}

#[test]
fn meta_tags_cred_del_and_aux() {
    let m = ServerMsg::Meta(Meta {
        id: Some("9".into()),
        topic: "me".into(),
        ts: ts(T),
        tags: Some(vec!["alice".into(), "email:alice@example.com".into()]),
        cred: Some(vec![
            CredOut {
                meth: "email".into(),
                val: "alice@example.com".into(),
                done: true,
            },
            CredOut {
                meth: "tel".into(),
                val: "+15551234567".into(),
                done: false,
            },
        ]),
        del: Some(DelOut {
            clear: 7,
            delseq: vec![RangeOut { low: 3, hi: 0 }, RangeOut { low: 5, hi: 9 }],
        }),
        aux: Some(raw(r#"{"pinned":["grpA"],"n":1}"#)),
        ..Default::default()
    });
    let Message::Meta(mt) = round_trip(&m) else {
        panic!("not meta")
    };
    assert_eq!(mt.tags, ["alice", "email:alice@example.com"]);
    let creds: Vec<_> = mt
        .cred
        .iter()
        .map(|c| (c.method.as_str(), c.value.as_str(), c.done))
        .collect();
    assert_eq!(
        creds,
        [
            ("email", "alice@example.com", false),
            ("tel", "+15551234567", false)
        ],
        "done is not sent, as in the reference"
    );
    let del = mt.del.expect("del");
    assert_eq!(del.del_id, 7);
    assert_eq!(
        del.del_seq,
        [
            pbx::SeqRange { low: 3, hi: 0 },
            pbx::SeqRange { low: 5, hi: 9 }
        ]
    );
    assert_eq!(mt.aux.len(), 2);
    assert_eq!(mt.aux["pinned"], br#"["grpA"]"#);
    assert_eq!(mt.aux["n"], b"1");
}

#[test]
fn pres_maps_what_and_the_acs_delta() {
    use pbx::server_pres::What;
    let m = ServerMsg::Pres(Pres {
        topic: "me".into(),
        src: Some("grpAbCdEfGhIjK".into()),
        what: "acs",
        ua: Some("TinodeWeb/0.23".into()),
        seq: 18,
        clear: 3,
        delseq: Some(vec![RangeOut { low: 1, hi: 4 }]),
        tgt: Some("usrBBBBBBBBBBB".into()),
        act: Some("usrAAAAAAAAAAA".into()),
        dacs: Some(DeltaAcs {
            want: Some("+W".into()),
            given: None,
        }),
    });
    let Message::Pres(p) = round_trip(&m) else {
        panic!("not pres")
    };
    assert_eq!(p.topic, "me");
    assert_eq!(p.src, "grpAbCdEfGhIjK");
    assert_eq!(p.what(), What::Acs);
    assert_eq!(p.user_agent, "TinodeWeb/0.23");
    assert_eq!((p.seq_id, p.del_id), (18, 3));
    assert_eq!(p.del_seq, [pbx::SeqRange { low: 1, hi: 4 }]);
    assert_eq!(p.target_user_id, "usrBBBBBBBBBBB");
    assert_eq!(p.actor_user_id, "usrAAAAAAAAAAA");
    let a = p.acs.expect("acs");
    assert_eq!((a.want.as_str(), a.given.as_str()), ("+W", ""));

    for (what, want) in [
        ("on", What::On),
        ("off", What::Off),
        ("ua", What::Ua),
        ("upd", What::Upd),
        ("gone", What::Gone),
        ("term", What::Term),
        ("msg", What::Msg),
        ("read", What::Read),
        ("recv", What::Recv),
        ("del", What::Del),
        ("tags", What::Tags),
        ("aux", What::Aux),
        ("bogus", What::X3),
    ] {
        let m = ServerMsg::Pres(Pres {
            topic: "me".into(),
            what,
            ..Default::default()
        });
        let Message::Pres(p) = round_trip(&m) else {
            panic!("not pres")
        };
        assert_eq!(p.what(), want, "{what}");
        assert!(p.acs.is_none() && p.src.is_empty() && p.del_seq.is_empty());
    }
}

#[test]
fn info_maps_note_kinds_events_and_payload() {
    use pbx::{CallEvent, InfoNote};
    let m = ServerMsg::Info(Info {
        topic: "grpA".into(),
        src: Some("grpA".into()),
        from: "usrAAAAAAAAAAA".into(),
        what: "call".into(),
        seq: 42,
        event: Some("ice-candidate".into()),
        payload: Some(raw(r#"{"candidate":"a=1"}"#)),
    });
    let Message::Info(i) = round_trip(&m) else {
        panic!("not info")
    };
    assert_eq!(i.topic, "grpA");
    assert_eq!(i.src, "grpA");
    assert_eq!(i.from_user_id, "usrAAAAAAAAAAA");
    assert_eq!(i.what(), InfoNote::Call);
    assert_eq!(i.seq_id, 42);
    assert_eq!(i.event(), CallEvent::IceCandidate);
    assert_eq!(i.payload, br#"{"candidate":"a=1"}"#);

    for (what, event, want_what, want_event) in [
        ("kp", None, InfoNote::Kp, CallEvent::X2),
        ("read", None, InfoNote::Read, CallEvent::X2),
        ("recv", None, InfoNote::Recv, CallEvent::X2),
        ("kpa", None, InfoNote::X1, CallEvent::X2),
        ("call", Some("hang-up"), InfoNote::Call, CallEvent::HangUp),
        ("call", Some("accept"), InfoNote::Call, CallEvent::Accept),
        ("call", Some("answer"), InfoNote::Call, CallEvent::Answer),
        ("call", Some("invite"), InfoNote::Call, CallEvent::Invite),
        ("call", Some("offer"), InfoNote::Call, CallEvent::Offer),
        ("call", Some("ringing"), InfoNote::Call, CallEvent::Ringing),
    ] {
        let m = ServerMsg::Info(Info {
            topic: "grpA".into(),
            from: "usrAAAAAAAAAAA".into(),
            what: what.into(),
            event: event.map(str::to_owned),
            ..Default::default()
        });
        let Message::Info(i) = round_trip(&m) else {
            panic!("not info")
        };
        assert_eq!((i.what(), i.event()), (want_what, want_event), "{what}");
        assert!(i.payload.is_empty() && i.src.is_empty());
    }
}

#[test]
fn null_values_and_odd_json_travel_as_absent() {
    let m = ServerMsg::Meta(Meta {
        topic: "grpA".into(),
        ts: ts(T),
        desc: Some(DescOut {
            public: Some(raw("null")),
            ..Default::default()
        }),
        // Not an object: the reference only has maps here, so nothing is sent.
        aux: Some(raw("[1,2]")),
        ..Default::default()
    });
    let Message::Meta(mt) = round_trip(&m) else {
        panic!("not meta")
    };
    assert!(mt.desc.expect("desc").public.is_empty());
    assert!(mt.aux.is_empty());

    let c = Outcome::Ok.ctrl(Some("1"), None, UnixMillis(T)).msg();
    let ServerMsg::Ctrl(mut c) = c else {
        unreachable!()
    };
    c.params = Some(serde_json::json!([1, 2]));
    let Message::Ctrl(c) = round_trip(&ServerMsg::Ctrl(c)) else {
        panic!("not ctrl")
    };
    assert!(c.params.is_empty());
}

#[test]
fn protobuf_frames_are_smaller_than_json() {
    let msgs = [
        Outcome::Accepted
            .ctrl(Some("5"), Some("grpAbCdEfGhIjK"), UnixMillis(T))
            .param("seq", 18)
            .msg(),
        ServerMsg::Data(Data {
            topic: "grpAbCdEfGhIjK".into(),
            from: Some("usr782rkHhWNBI".into()),
            ts: ts(T),
            seq: 18,
            head: None,
            content: raw(r#""hello""#),
        }),
        ServerMsg::Pres(Pres {
            topic: "me".into(),
            src: Some("grpAbCdEfGhIjK".into()),
            what: "msg",
            seq: 18,
            act: Some("usr782rkHhWNBI".into()),
            ..Default::default()
        }),
    ];
    for m in &msgs {
        let (pb, js) = (encode_server(m).len(), encode(m).len());
        assert!(pb * 2 < js, "protobuf {pb} bytes vs JSON {js} bytes: {m:?}");
    }
    // The {data} above: 2+14 topic, 2+14 from, 2 seq, 2+7 content, 1+6 timestamp, in a
    // 2-byte oneof header.
    assert_eq!(encode_server(&msgs[1]).len(), 52);
}
