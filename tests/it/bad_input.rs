//! Hostile and broken input: random bytes, truncated and mistyped JSON, deep nesting, unknown
//! payloads, out-of-order requests, oversized frames and bad HTTP each get the reference answer,
//! while an authenticated client publishing alongside never sees an error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::support::{b64, http_raw, unique_login, Client, Server, API_KEY};

/// Configured largest client frame.
const MAX_MESSAGE: usize = 4096;
/// Random frames per fuzzing connection.
const RANDOM_FRAMES: usize = 800;
/// Fuzzing connections sending random frames.
const RANDOM_CONNECTIONS: u64 = 3;
/// Random frames sent before their replies are read.
const CHUNK: usize = 50;

/// Asserts a `{ctrl}` with exactly this code and text, and this id and topic (or none).
fn assert_ctrl(
    v: &Value,
    code: u64,
    text: &str,
    id: Option<&str>,
    topic: Option<&str>,
    what: &str,
) {
    let c = v
        .get("ctrl")
        .unwrap_or_else(|| panic!("{what}: expected a ctrl, got {v}"));
    assert_eq!(c["code"], code, "{what}: {v}");
    assert_eq!(c["text"], text, "{what}: {v}");
    assert_eq!(c.get("id").and_then(Value::as_str), id, "{what}: id of {v}");
    assert_eq!(
        c.get("topic").and_then(Value::as_str),
        topic,
        "{what}: topic of {v}"
    );
    assert!(c["ts"].is_string(), "{what}: ts of {v}");
}

/// The reply to an undecodable frame: `ctrl 400 "malformed"` without id or topic.
fn assert_malformed(v: &Value, what: &str) {
    assert_ctrl(v, 400, "malformed", None, None, what);
}

/// Whether a frame decodes as an object with a known payload (those are not "random").
fn has_known_payload(frame: &[u8]) -> bool {
    let keys = [
        "hi", "acc", "login", "sub", "leave", "pub", "get", "set", "del", "note",
    ];
    serde_json::from_slice::<Value>(frame)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| keys.iter().any(|k| o.contains_key(*k)))
        })
        .unwrap_or(false)
}

/// A random frame: raw bytes, or JSON-looking text.
fn random_frame(rng: &mut StdRng) -> (Vec<u8>, bool) {
    loop {
        let len = match rng.random_range(0..10) {
            0 => 0,
            1..=6 => rng.random_range(1..64),
            _ => rng.random_range(64..1024),
        };
        let (frame, binary) = if rng.random_bool(0.5) {
            (
                (0..len).map(|_| rng.random::<u8>()).collect::<Vec<u8>>(),
                true,
            )
        } else {
            let alphabet = b"{}[]\":,. 0123456789-+eEtrufalsn\\abchipsdgxyz";
            (
                (0..len)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect(),
                false,
            )
        };
        if frame != b"1" && !has_known_payload(&frame) {
            return (frame, binary);
        }
    }
}

/// Sends random frames (and the network probe now and then) before any `{hi}`; every frame
/// gets exactly one answer, in order.
async fn random_frames(url: String, seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = Client::connect_url(&url, &format!("fuzz{seed}")).await;
    let mut sent = 0;
    while sent < RANDOM_FRAMES {
        let mut expect_probe = Vec::new();
        for k in 0..CHUNK {
            if k == CHUNK / 2 {
                c.send_text("1").await;
                expect_probe.push(true);
                continue;
            }
            let (frame, binary) = random_frame(&mut rng);
            if binary {
                c.send_binary(frame).await.expect("send binary");
            } else {
                c.send_text(std::str::from_utf8(&frame).expect("ascii"))
                    .await;
            }
            expect_probe.push(false);
            sent += 1;
        }
        for probe in expect_probe {
            let t = c.recv_text().await;
            if probe {
                assert_eq!(t, "0", "fuzz{seed}: the network probe is answered with 0");
            } else {
                let v: Value = serde_json::from_str(&t)
                    .unwrap_or_else(|e| panic!("fuzz{seed}: reply not JSON ({e}): {t}"));
                assert_malformed(&v, &format!("fuzz{seed} random frame"));
            }
        }
    }
    c.close().await;
    sent
}

/// `depth` nested arrays.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Sends `frame` and checks the single reply.
async fn expect_one(c: &mut Client, frame: &str, check: impl Fn(&Value)) {
    c.send_text(frame).await;
    let v = c.recv().await;
    check(&v);
}

/// The network probe round trip; also proves nothing else was queued before it.
async fn probe(c: &mut Client, what: &str) {
    c.send_text("1").await;
    assert_eq!(
        c.recv_text().await,
        "0",
        "{}: {what}: the next frame must be the probe answer",
        c.name
    );
}

/// Out-of-order, unauthenticated, unattached, mistyped, truncated, nested and unknown input
/// on one connection, each with its specific answer; then an oversized frame closes it.
async fn scripted(url: String, canary_grp: String, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = Client::connect_url(&url, "scripted").await;

    // Before {hi}: everything but hi is out of sequence; notes are dropped silently.
    probe(&mut c, "before hi").await;
    c.send(json!({"note": {"topic": "grpAAAAAAAAAAA", "what": "kp"}}))
        .await;
    probe(&mut c, "a note before hi gets no reply").await;
    let secret = b64("x:y");
    let before_hi = [
        (
            json!({"login": {"id": "l1", "scheme": "basic", "secret": secret}}),
            None,
        ),
        (
            json!({"acc": {"id": "l2", "user": "new", "scheme": "basic", "secret": secret}}),
            None,
        ),
        (json!({"sub": {"id": "l3", "topic": "me"}}), Some("me")),
        (
            json!({"pub": {"id": "l4", "topic": "grpAAAAAAAAAAA", "content": "x"}}),
            Some("grpAAAAAAAAAAA"),
        ),
        (
            json!({"get": {"id": "l5", "topic": "me", "what": "desc"}}),
            Some("me"),
        ),
        (json!({"leave": {"id": "l6", "topic": "me"}}), Some("me")),
    ];
    for (msg, topic) in before_hi {
        let id = msg
            .as_object()
            .and_then(|o| o.values().next())
            .map(|p| p["id"].as_str().unwrap_or("").to_owned());
        expect_one(&mut c, &msg.to_string(), |v| {
            assert_ctrl(
                v,
                409,
                "command out of sequence",
                id.as_deref(),
                topic,
                &format!("before hi: {msg}"),
            )
        })
        .await;
    }

    // Bad versions, then the real handshake.
    expect_one(&mut c, r#"{"hi":{"id":"v1","ver":"0.19"}}"#, |v| {
        assert_ctrl(v, 505, "version not supported", Some("v1"), None, "hi 0.19")
    })
    .await;
    expect_one(&mut c, r#"{"hi":{"id":"v2","ver":"abc"}}"#, |v| {
        assert_ctrl(v, 400, "malformed", Some("v2"), None, "hi abc")
    })
    .await;
    c.hi().await;

    // Versioned but not authenticated.
    expect_one(&mut c, r#"{"sub":{"id":"u1","topic":"me"}}"#, |v| {
        assert_ctrl(
            v,
            401,
            "authentication required",
            Some("u1"),
            Some("me"),
            "sub before login",
        )
    })
    .await;
    expect_one(
        &mut c,
        r#"{"pub":{"id":"u2","topic":"grpAAAAAAAAAAA","content":1}}"#,
        |v| {
            assert_ctrl(
                v,
                401,
                "authentication required",
                Some("u2"),
                Some("grpAAAAAAAAAAA"),
                "pub before login",
            )
        },
    )
    .await;
    c.sign_up(&unique_login("bad")).await;
    let own = c.create_group().await;

    // Authenticated but not attached.
    let nope = "grpNoSuchTopic1";
    expect_one(
        &mut c,
        &json!({"pub": {"id": "a1", "topic": nope, "content": "x"}}).to_string(),
        |v| {
            assert_ctrl(
                v,
                409,
                "must attach first",
                Some("a1"),
                Some(nope),
                "pub to an unattached unknown topic",
            )
        },
    )
    .await;
    expect_one(
        &mut c,
        &json!({"pub": {"id": "a2", "topic": canary_grp, "content": "x"}}).to_string(),
        |v| {
            assert_ctrl(
                v,
                409,
                "must attach first",
                Some("a2"),
                Some(&canary_grp),
                "pub to an unattached group",
            )
        },
    )
    .await;
    expect_one(
        &mut c,
        &json!({"note": {"topic": canary_grp, "what": "read", "seq": 1}}).to_string(),
        |v| {
            assert_ctrl(
                v,
                409,
                "must attach first",
                None,
                Some(&canary_grp),
                "note to an unattached group",
            )
        },
    )
    .await;
    expect_one(
        &mut c,
        r#"{"get":{"id":"a3","topic":"me","what":""}}"#,
        |v| {
            assert_ctrl(
                v,
                400,
                "malformed",
                Some("a3"),
                Some("me"),
                "get with empty what",
            )
        },
    )
    .await;
    expect_one(
        &mut c,
        &json!({"get": {"id": "a4", "topic": own, "what": "bogus words"}}).to_string(),
        |v| {
            assert_ctrl(
                v,
                400,
                "malformed",
                Some("a4"),
                Some(&own),
                "get with unknown what",
            )
        },
    )
    .await;
    expect_one(
        &mut c,
        &json!({"sub": {"id": "a5", "topic": nope}}).to_string(),
        |v| {
            assert_ctrl(
                v,
                404,
                "topic not found",
                Some("a5"),
                Some(nope),
                "sub to a missing topic",
            )
        },
    )
    .await;
    expect_one(
        &mut c,
        &json!({"leave": {"id": "a6", "topic": canary_grp}}).to_string(),
        |v| {
            assert_ctrl(
                v,
                304,
                "not joined",
                Some("a6"),
                Some(&canary_grp),
                "leave while not attached",
            )
        },
    )
    .await;
    expect_one(
        &mut c,
        &json!({"login": {"id": "a7", "scheme": "basic", "secret": secret}}).to_string(),
        |v| {
            assert_ctrl(
                v,
                409,
                "already authenticated",
                Some("a7"),
                None,
                "second login",
            )
        },
    )
    .await;
    expect_one(
        &mut c,
        &json!({"pub": {"id": "a8", "topic": own, "content": "x"}, "extra": {"obo": "usrAAAAAAAAAAA"}}).to_string(),
        |v| assert_ctrl(v, 403, "permission denied", None, None, "obo without root"),
    )
    .await;

    // Truncated valid frames.
    let templates = [
        json!({"hi": {"id": "t1", "ver": "0.25.3", "ua": "x"}}),
        json!({"login": {"id": "t2", "scheme": "token", "secret": "AAAA"}}),
        json!({"sub": {"id": "t3", "topic": own, "get": {"what": "desc sub data", "data": {"limit": 5}}}}),
        json!({"pub": {"id": "t4", "topic": own, "head": {"mime": "text/x-drafty"}, "content": {"txt": "hello", "fmt": [{"at": 0, "len": 5}]}}}),
        json!({"get": {"id": "t5", "topic": own, "what": "data", "data": {"since": 1, "before": 9}}}),
        json!({"note": {"topic": own, "what": "read", "seq": 1}}),
        json!({"leave": {"id": "t6", "topic": own, "unsub": true}}),
    ];
    for k in 0..210 {
        let t = templates[k % templates.len()].to_string();
        let cut = rng.random_range(1..t.len());
        expect_one(&mut c, &t[..cut], |v| {
            assert_malformed(v, &format!("truncated {:?}", &t[..cut]))
        })
        .await;
    }

    // Wrong types, unknown or missing payloads, non-objects.
    let wrong = [
        r#"{"hi":{"id":"w1","ver":5}}"#,
        r#"{"hi":"0.25"}"#,
        r#"{"pub":{"id":7,"topic":"grpAAAAAAAAAAA","content":"x"}}"#,
        r#"{"pub":{"id":"w2","topic":["grpAAAAAAAAAAA"],"content":"x"}}"#,
        r#"{"pub":{"id":"w3","topic":"grpAAAAAAAAAAA","noecho":"yes","content":"x"}}"#,
        r#"{"pub":{"id":"w4","topic":"grpAAAAAAAAAAA","head":[1,2],"content":"x"}}"#,
        r#"{"note":{"topic":"grpAAAAAAAAAAA","what":"read","seq":"5"}}"#,
        r#"{"sub":{"id":"w5","topic":"me","get":{"what":["desc"]}}}"#,
        r#"{"get":{"id":"w6","topic":"me","what":"data","data":{"limit":"ten"}}}"#,
        r#"{"login":{"id":"w7","scheme":"token","secret":{"a":1}}}"#,
        r#"{"acc":{"id":"w8","user":"new","login":"yes"}}"#,
        r#"{"leave":{"id":"w9","topic":"me","unsub":1}}"#,
        r#"{"foo":{"id":"w10"}}"#,
        r#"{"extra":{"obo":"usrAAAAAAAAAAA"}}"#,
        "{}",
        "[]",
        "null",
        "42",
        "\"hi\"",
        "true",
        "",
        " ",
        "{\"hi\":{\"id\":\"w11\",\"ver\":\"0.25\"}}}",
    ];
    for f in wrong {
        expect_one(&mut c, f, |v| {
            assert_malformed(v, &format!("mistyped or unknown {f:?}"))
        })
        .await;
    }

    // Deep nesting. A non-object is malformed whatever its depth. Where a nested value sits in
    // a parsed field the reference (Go, depth limit 10000) parses it and answers the request;
    // a stricter depth limit answering 400 "malformed" is also fine. Either way: one answer.
    expect_one(&mut c, &nested(1500), |v| {
        assert_malformed(v, "1500 nested arrays")
    })
    .await;
    let deep_head = format!(
        r#"{{"pub":{{"id":"d1","topic":"{own}","noecho":true,"head":{{"k":{}}},"content":"x"}}}}"#,
        nested(1000)
    );
    expect_one(&mut c, &deep_head, |v| {
        if v["ctrl"]["code"] == 400 {
            assert_malformed(v, "1000-deep head")
        } else {
            assert_eq!(v["ctrl"]["code"], 202, "1000-deep head: {v}")
        }
    })
    .await;
    let deep_val = format!(
        r#"{{"login":{{"id":"d2","scheme":"basic","secret":"{secret}","cred":[{{"meth":"email","val":{}}}]}}}}"#,
        "{\"a\":".repeat(600) + "1" + &"}".repeat(600)
    );
    expect_one(&mut c, &deep_val, |v| {
        if v["ctrl"]["code"] == 400 {
            assert_malformed(v, "600-deep credential value")
        } else {
            assert_ctrl(
                v,
                409,
                "already authenticated",
                Some("d2"),
                None,
                "600-deep credential value",
            )
        }
    })
    .await;
    // Deep opaque content is carried verbatim.
    let deep_content = format!(
        r#"{{"pub":{{"id":"d3","topic":"{own}","noecho":true,"content":{}}}}}"#,
        nested(1000)
    );
    assert!(deep_content.len() < MAX_MESSAGE);
    expect_one(&mut c, &deep_content, |v| {
        assert_eq!(
            v["ctrl"]["code"], 202,
            "1000-deep opaque content is stored: {v}"
        )
    })
    .await;

    // Just under the frame limit: answered normally.
    let big_garbage = "x".repeat(MAX_MESSAGE - 96);
    expect_one(&mut c, &big_garbage, |v| {
        assert_malformed(v, "a large malformed frame under the limit")
    })
    .await;
    probe(&mut c, "after the scripted checks").await;

    // Over the limit: the connection ends.
    let oversized =
        json!({"pub": {"id": "big", "topic": own, "content": "y".repeat(MAX_MESSAGE + 100)}})
            .to_string();
    let _ = c.try_send_text(&oversized).await;
    let before_close = c.expect_closed().await;
    assert!(
        before_close.is_empty(),
        "no reply to an oversized frame, only the close: {before_close:?}"
    );
}

/// An oversized binary frame right after connecting also ends the connection.
async fn oversized_binary(url: String) {
    let mut c = Client::connect_url(&url, "oversized-bin").await;
    c.hi().await;
    let _ = c.send_binary(vec![b'{'; 3 * MAX_MESSAGE]).await;
    let before_close = c.expect_closed().await;
    assert!(
        before_close.is_empty(),
        "no reply to an oversized frame: {before_close:?}"
    );
}

/// HTTP-level answers: API key, unknown paths, methods, garbage requests.
fn http_checks(port: u16) {
    let get = |path: &str, extra: &str| {
        http_raw(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"),
        )
    };
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let bad_key = format!("{}A", &API_KEY[..API_KEY.len() - 1]);
    for (path, extra) in [
        ("/v0/channels".to_owned(), upgrade.to_owned()),
        (format!("/v0/channels?apikey={bad_key}"), upgrade.to_owned()),
        ("/v0/channels?apikey=".to_owned(), upgrade.to_owned()),
        (
            "/v0/channels".to_owned(),
            format!("{upgrade}X-Tinode-APIKey: {bad_key}\r\n"),
        ),
    ] {
        let (status, body) = get(&path, &extra);
        assert_eq!(status, 403, "{path} without a valid key: {body}");
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("403 body is not JSON ({e}): {body}"));
        assert_ctrl(
            &v,
            403,
            "valid API key required",
            None,
            None,
            "HTTP 403 body",
        );
    }
    // The key is accepted from the header and from a cookie too (the 400 is for the missing upgrade).
    let (status, _) = get("/v0/channels", &format!("X-Tinode-APIKey: {API_KEY}\r\n"));
    assert_eq!(status, 400, "valid key in the header, no upgrade");
    let (status, _) = get(
        "/v0/channels",
        &format!("Cookie: a=b; apikey={API_KEY}\r\n"),
    );
    assert_eq!(status, 400, "valid key in a cookie, no upgrade");

    for path in [
        "/",
        "/nope",
        "/v0/channelz",
        "/debug/varsx",
        "/v0/channels/lp/x",
    ] {
        let (status, body) = get(path, "");
        assert_eq!(status, 404, "unknown path {path}: {body}");
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("404 body is not JSON ({e}): {body}"));
        assert_ctrl(&v, 404, "not found", None, None, "HTTP 404 body");
    }
    let (status, body) = http_raw(port, &format!(
        "POST /v0/channels?apikey={API_KEY} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(status, 405, "POST to the WebSocket endpoint: {body}");
    let (status, body) = http_raw(port, "BLAH BLAH\x01\r\n\r\n");
    assert_eq!(status, 400, "garbage request line: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_reference_answers_and_disturbs_no_one() {
    let server = Server::start(2, &format!("[session]\nmax_message_size = {MAX_MESSAGE}\n"));
    let url = server.ws_url();

    // The canary publishes in its own group the whole time: strictly ack then message.
    let mut canary = Client::connect(&server, "canary").await;
    canary.hi().await;
    canary.sign_up(&unique_login("canary")).await;
    let grp = canary.create_group().await;
    let stop = Arc::new(AtomicBool::new(false));
    let canary_task = {
        let (stop, grp) = (stop.clone(), grp.clone());
        tokio::spawn(async move {
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) || n < 20 {
                let id = canary.publish_nowait(&grp, json!({"n": n}), false).await;
                let ack = canary.recv().await;
                assert_ctrl(&ack, 202, "accepted", Some(&id), Some(&grp), "canary ack");
                assert_eq!(ack["ctrl"]["params"]["seq"], n + 1, "canary seq");
                let d = canary.recv().await;
                assert_eq!(d["data"]["seq"], n + 1, "canary message: {d}");
                assert_eq!(d["data"]["content"], json!({"n": n}), "canary message: {d}");
                n += 1;
                // Under the default message rate limit (50/s per session): a canary
                // answered faster than that would be told 429, rightly.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            (canary, n)
        })
    };

    let mut tasks = Vec::new();
    for seed in 1..=RANDOM_CONNECTIONS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            random_frames(url, seed).await;
        }));
    }
    tasks.push(tokio::spawn(scripted(url.clone(), grp.clone(), 99)));
    tasks.push(tokio::spawn(oversized_binary(url.clone())));
    let port = server.port();
    let http = tokio::task::spawn_blocking(move || http_checks(port));
    for t in tasks {
        t.await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
    http.await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    stop.store(true, Ordering::Relaxed);
    let (canary, n) = canary_task
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    println!("canary published {n} messages while under fire");

    // Only the canary is left once the fuzzers are gone.
    let (v, ok) = server
        .wait_vars(Duration::from_secs(20), |v| v["LiveSessions"] == 1)
        .await;
    assert!(ok, "sessions of closed connections linger: {v}");
    assert_eq!(v["SlowConsumersTotal"], 0, "{v}");
    drop(canary);

    // A fresh client can still sign up, create a group and publish.
    let mut fresh = Client::connect(&server, "fresh").await;
    fresh.hi().await;
    fresh.sign_up(&unique_login("fresh")).await;
    let g = fresh.create_group().await;
    assert_eq!(fresh.publish(&g, json!("after the storm")).await, 1);
}
