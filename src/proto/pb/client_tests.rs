//! Tests of the protobuf decoding of client messages: every kind, field by field, encoded with
//! the prost types as a gRPC client would and decoded into the JSON codec's types.

use std::collections::BTreeMap;

use prost::Message as _;

use super::*;

fn dec(m: pbx::client_msg::Message) -> Decoded {
    let bytes = pbx::ClientMsg {
        message: Some(m),
        extra: None,
    }
    .encode_to_vec();
    decode_client(&bytes).expect("decodes")
}

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

use pbx::client_msg::Message as M;

#[test]
fn hi_maps_every_field() {
    let d = dec(M::Hi(pbx::ClientHi {
        id: "1".into(),
        user_agent: "tn-cli/0.22".into(),
        ver: "0.22.3".into(),
        device_id: "dev".into(),
        lang: "en".into(),
        platform: "cli".into(),
        background: true,
    }));
    let ClientMsg::Hi(h) = d.msg else {
        panic!("not hi")
    };
    assert_eq!(h.id.as_deref(), Some("1"));
    assert_eq!(h.ua.as_deref(), Some("tn-cli/0.22"));
    assert_eq!(h.ver.as_deref(), Some("0.22.3"));
    assert_eq!(h.dev.as_deref(), Some("dev"));
    assert_eq!(h.lang.as_deref(), Some("en"));
    assert_eq!(h.platf.as_deref(), Some("cli"));
    assert!(h.bkg);
    assert!(d.extra.is_none());
}

#[test]
fn acc_and_login_secrets_become_base64_and_json_fields_stay_verbatim() {
    let d = dec(M::Acc(pbx::ClientAcc {
        id: "2".into(),
        user_id: "new".into(),
        scheme: "basic".into(),
        secret: b"alice:secret".to_vec(),
        login: true,
        tags: vec!["alice".into()],
        desc: Some(pbx::SetDesc {
            default_acs: Some(pbx::DefaultAcsMode {
                auth: "JRWPS".into(),
                anon: String::new(),
            }),
            public: br#"{"fn": "Alice"}"#.to_vec(),
            private: br#""note""#.to_vec(),
            trusted: Vec::new(),
        }),
        cred: vec![pbx::ClientCred {
            method: "email".into(),
            value: "a@example.com".into(),
            response: String::new(),
            params: map(&[("x", "1")]),
        }],
        state: "ok".into(),
        auth_level: pbx::AuthLevel::Auth as i32,
        ..Default::default()
    }));
    let ClientMsg::Acc(a) = d.msg else {
        panic!("not acc")
    };
    assert_eq!(a.user.as_deref(), Some("new"));
    assert_eq!(a.secret.as_deref(), Some("YWxpY2U6c2VjcmV0"));
    assert!(a.login);
    assert_eq!(a.tags, Some(vec!["alice".to_owned()]));
    let desc = a.desc.expect("desc");
    assert_eq!(desc.defacs.as_ref().unwrap().auth.as_deref(), Some("JRWPS"));
    assert_eq!(desc.defacs.as_ref().unwrap().anon, None);
    assert_eq!(desc.public.unwrap().get(), r#"{"fn": "Alice"}"#);
    assert_eq!(desc.private.unwrap().get(), r#""note""#);
    assert!(desc.trusted.is_none());
    let cred = &a.cred.as_ref().unwrap()[0];
    assert_eq!(cred.meth, "email");
    assert_eq!(cred.val, Some(serde_json::json!("a@example.com")));
    assert_eq!(cred.params.as_ref().unwrap().get(), r#"{"x":1}"#);
    assert_eq!(a.status.as_deref(), Some("ok"));
    assert_eq!(a.authlevel.as_deref(), Some("auth"));

    let d = dec(M::Login(pbx::ClientLogin {
        id: "3".into(),
        scheme: "token".into(),
        secret: vec![0, 255, 1],
        cred: Vec::new(),
    }));
    let ClientMsg::Login(l) = d.msg else {
        panic!("not login")
    };
    assert_eq!(l.scheme.as_deref(), Some("token"));
    assert_eq!(l.secret.as_deref(), Some("AP8B"));
    assert!(l.cred.is_none());
}

#[test]
fn sub_get_set_queries() {
    let d = dec(M::Sub(pbx::ClientSub {
        id: "4".into(),
        topic: "grpX".into(),
        set_query: Some(pbx::SetQuery {
            sub: Some(pbx::SetSub {
                user_id: String::new(),
                mode: "JRWP".into(),
            }),
            tags: vec!["t1".into()],
            aux: map(&[("pin", "[1,2]")]),
            ..Default::default()
        }),
        get_query: Some(pbx::GetQuery {
            what: "desc sub data".into(),
            desc: Some(pbx::GetOpts {
                if_modified_since: 1_735_787_045_123,
                user: "ignored".into(),
                ..Default::default()
            }),
            sub: Some(pbx::GetOpts {
                limit: 7,
                ..Default::default()
            }),
            data: Some(pbx::GetOpts {
                since_id: 3,
                before_id: 9,
                limit: 5,
                ranges: vec![pbx::SeqRange { low: 1, hi: 2 }],
                ..Default::default()
            }),
        }),
    }));
    let ClientMsg::Sub(s) = d.msg else {
        panic!("not sub")
    };
    assert_eq!(s.topic, "grpX");
    let set = s.set.expect("set");
    let sub = set.sub.expect("set.sub");
    assert_eq!((sub.user, sub.mode.as_deref()), (None, Some("JRWP")));
    assert_eq!(set.tags, Some(vec!["t1".to_owned()]));
    assert_eq!(set.aux.unwrap().get(), r#"{"pin":[1,2]}"#);
    let get = s.get.expect("get");
    assert_eq!(get.what, "desc sub data");
    let desc = get.desc.unwrap();
    assert_eq!(desc.ims.as_deref(), Some("2025-01-02T03:04:05.123Z"));
    assert_eq!(desc.user, None, "desc.user is ignored on input");
    assert_eq!(get.sub.unwrap().limit, Some(7));
    let data = get.data.unwrap();
    assert_eq!(
        (data.since, data.before, data.limit),
        (Some(3), Some(9), Some(5))
    );
    assert_eq!(data.ranges, Some(vec![SeqRange { low: 1, hi: 2 }]));

    // An empty set query is no set query; a get without a query asks for nothing.
    let d = dec(M::Sub(pbx::ClientSub {
        topic: "me".into(),
        set_query: Some(pbx::SetQuery::default()),
        ..Default::default()
    }));
    let ClientMsg::Sub(s) = d.msg else {
        panic!("not sub")
    };
    assert!(s.set.is_none() && s.get.is_none() && s.id.is_none());

    let d = dec(M::Get(pbx::ClientGet {
        id: "5".into(),
        topic: "me".into(),
        query: Some(pbx::GetQuery {
            what: "sub".into(),
            ..Default::default()
        }),
    }));
    let ClientMsg::Get(g) = d.msg else {
        panic!("not get")
    };
    assert_eq!((g.topic.as_str(), g.what.as_str()), ("me", "sub"));

    let d = dec(M::Set(pbx::ClientSet {
        id: "6".into(),
        topic: "grpX".into(),
        query: Some(pbx::SetQuery {
            desc: Some(pbx::SetDesc {
                public: br#"{"fn":"G"}"#.to_vec(),
                ..Default::default()
            }),
            cred: Some(pbx::ClientCred {
                method: "tel".into(),
                value: "+1555".into(),
                response: "123".into(),
                params: BTreeMap::new(),
            }),
            ..Default::default()
        }),
    }));
    let ClientMsg::Set(s) = d.msg else {
        panic!("not set")
    };
    assert_eq!(s.desc.unwrap().public.unwrap().get(), r#"{"fn":"G"}"#);
    let cred = s.cred.unwrap();
    assert_eq!(
        (cred.meth.as_str(), cred.resp.as_deref()),
        ("tel", Some("123"))
    );
    assert!(cred.params.is_none());
}

#[test]
fn leave_pub_del_note() {
    let d = dec(M::Leave(pbx::ClientLeave {
        id: "7".into(),
        topic: "grpX".into(),
        unsub: true,
    }));
    let ClientMsg::Leave(l) = d.msg else {
        panic!("not leave")
    };
    assert!(l.unsub && l.topic == "grpX");

    let d = dec(M::Pub(pbx::ClientPub {
        id: "8".into(),
        topic: "grpX".into(),
        no_echo: true,
        head: map(&[("mime", r#""text/x-drafty""#), ("empty", "")]),
        content: br#"{"txt":"hi","fmt":[{"at":0}]}"#.to_vec(),
    }));
    let ClientMsg::Pub(p) = d.msg else {
        panic!("not pub")
    };
    assert!(p.noecho);
    let head = p.head.unwrap();
    assert_eq!(head.get("mime"), Some(&serde_json::json!("text/x-drafty")));
    assert!(!head.contains_key("empty"));
    assert_eq!(p.content.unwrap().get(), r#"{"txt":"hi","fmt":[{"at":0}]}"#);

    let d = dec(M::Del(pbx::ClientDel {
        id: "9".into(),
        topic: "grpX".into(),
        what: pbx::client_del::What::Msg as i32,
        del_seq: vec![
            pbx::SeqRange { low: 1, hi: 3 },
            pbx::SeqRange { low: 5, hi: 0 },
        ],
        hard: true,
        ..Default::default()
    }));
    let ClientMsg::Del(del) = d.msg else {
        panic!("not del")
    };
    assert_eq!(del.what, "msg");
    assert!(del.hard);
    assert_eq!(
        del.delseq,
        Some(vec![SeqRange { low: 1, hi: 3 }, SeqRange { low: 5, hi: 0 }])
    );
    for (w, s) in [
        (pbx::client_del::What::Topic, "topic"),
        (pbx::client_del::What::Sub, "sub"),
        (pbx::client_del::What::User, "user"),
        (pbx::client_del::What::Cred, "cred"),
        (pbx::client_del::What::X0, ""),
    ] {
        let d = dec(M::Del(pbx::ClientDel {
            what: w as i32,
            user_id: "usrX".into(),
            ..Default::default()
        }));
        let ClientMsg::Del(del) = d.msg else {
            panic!("not del")
        };
        assert_eq!((del.what.as_str(), del.user.as_deref()), (s, Some("usrX")));
    }

    let d = dec(M::Note(pbx::ClientNote {
        topic: "grpX".into(),
        what: pbx::InfoNote::Read as i32,
        seq_id: 4,
        unread: 2,
        event: pbx::CallEvent::HangUp as i32,
        payload: br#"{"a":1}"#.to_vec(),
    }));
    let ClientMsg::Note(n) = d.msg else {
        panic!("not note")
    };
    assert_eq!((n.what.as_str(), n.seq, n.unread), ("read", 4, 2));
    assert_eq!(n.event.as_deref(), Some("hang-up"));
    assert_eq!(n.payload.unwrap().get(), r#"{"a":1}"#);
    for (w, s) in [
        (pbx::InfoNote::Recv, "recv"),
        (pbx::InfoNote::Kp, "kp"),
        (pbx::InfoNote::Call, "call"),
    ] {
        let d = dec(M::Note(pbx::ClientNote {
            what: w as i32,
            ..Default::default()
        }));
        let ClientMsg::Note(n) = d.msg else {
            panic!("not note")
        };
        assert_eq!(n.what, s);
        assert!(n.event.is_none() && n.payload.is_none());
    }
}

#[test]
fn extra_maps_obo_and_auth_level() {
    let bytes = pbx::ClientMsg {
        message: Some(M::Leave(pbx::ClientLeave::default())),
        extra: Some(pbx::ClientExtra {
            attachments: vec!["/v0/file/s/a.png".into()],
            on_behalf_of: "usrA".into(),
            auth_level: pbx::AuthLevel::Root as i32,
        }),
    }
    .encode_to_vec();
    let e = decode_client(&bytes).unwrap().extra.expect("extra");
    assert_eq!(e.obo.as_deref(), Some("usrA"));
    assert_eq!(e.authlevel.as_deref(), Some("root"));
    assert_eq!(e.attachments.unwrap().len(), 1);
    // An all-default extra is no extra.
    let bytes = pbx::ClientMsg {
        message: Some(M::Leave(pbx::ClientLeave::default())),
        extra: Some(pbx::ClientExtra::default()),
    }
    .encode_to_vec();
    assert!(decode_client(&bytes).unwrap().extra.is_none());
}

#[test]
fn malformed_and_empty_messages_are_errors_not_panics() {
    assert!(matches!(
        decode_client(&[0xff, 0xff, 0xff]),
        Err(DecodeError::Malformed(_))
    ));
    assert_eq!(decode_client(&[]).unwrap_err(), DecodeError::Empty);
    let bad_json = pbx::ClientMsg {
        message: Some(M::Pub(pbx::ClientPub {
            topic: "grpX".into(),
            content: b"{not json".to_vec(),
            ..Default::default()
        })),
        extra: None,
    }
    .encode_to_vec();
    assert!(matches!(
        decode_client(&bad_json),
        Err(DecodeError::Malformed(_))
    ));
    let bad_head = pbx::ClientMsg {
        message: Some(M::Pub(pbx::ClientPub {
            head: map(&[("k", "nope")]),
            ..Default::default()
        })),
        extra: None,
    }
    .encode_to_vec();
    assert!(matches!(
        decode_client(&bad_head),
        Err(DecodeError::Malformed(_))
    ));
    let bad_utf8 = pbx::ClientMsg {
        message: Some(M::Note(pbx::ClientNote {
            payload: vec![0xc3, 0x28],
            ..Default::default()
        })),
        extra: None,
    }
    .encode_to_vec();
    assert!(matches!(
        decode_client(&bad_utf8),
        Err(DecodeError::Malformed(_))
    ));
    // Arbitrary bytes never panic.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in 0..200 {
        let buf: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = decode_client(&buf);
    }
}
