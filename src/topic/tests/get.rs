//! `{get data}` paging within max_history, and `{sub}` with a `get` that sends history after the
//! ctrl.

use serde_json::{json, Value};

use super::sim::*;

#[test]
fn get_data_pages_newest_first_within_max_history() {
    let a1 = sid(0, 1);
    let mut sim = Sim::new(1);
    sim.limits.max_history = 5;
    sim.create_group(a1, ALICE, None);
    for i in 1..=8 {
        sim.publish(a1, ALICE, None, &format!("\"m{i}\""));
    }
    sim.clear();
    let cases: Vec<(Value, Vec<u64>)> = vec![
        (json!({}), vec![8, 7, 6, 5, 4]),
        (json!({"limit": 100}), vec![8, 7, 6, 5, 4]),
        (json!({"limit": 3}), vec![8, 7, 6]),
        (json!({"since": 6}), vec![8, 7, 6]),
        (json!({"before": 3}), vec![2, 1]),
        (json!({"since": 2, "before": 5, "limit": 2}), vec![4, 3]),
        (json!({"since": 9}), vec![]),
        (json!({"before": 1}), vec![]),
    ];
    for (opts, seqs) in cases {
        sim.run(
            GROUP,
            get(a1, ALICE, "g", json!({"what": "data", "data": opts})),
        );
        let f = sim.frames(a1);
        assert_eq!(data_seqs(&f), seqs, "{opts}");
        let last = f.last().expect("a closing ctrl");
        let c = if seqs.is_empty() {
            let c = ctrl(last, 204, "no content");
            assert_eq!(c["params"], json!({"what": "data"}));
            c
        } else {
            let c = ctrl(last, 208, "delivered");
            assert_eq!(c["params"], json!({"what": "data", "count": seqs.len()}));
            c
        };
        assert_eq!(
            (c["id"].as_str(), c["topic"].as_str()),
            (Some("g"), Some(GROUP))
        );
        assert_eq!(f.len(), seqs.len() + 1);
        for d in &f[..seqs.len()] {
            let seq = d["data"]["seq"].as_u64().unwrap();
            assert_eq!(d["data"]["content"], format!("m{seq}"));
            assert_eq!(d["data"]["topic"], GROUP);
            assert!(d["data"].get("id").is_none(), "data never carries an id");
        }
    }
    sim.run(
        GROUP,
        get(
            a1,
            ALICE,
            "g",
            json!({"what": "data", "data": {"ims": "2025-01-01T00:00:00Z"}}),
        ),
    );
    assert_eq!(
        sim.take(a1),
        [Rec::Frame(sim_ctrl_frame(400, "malformed", "g"))]
    );
}

#[test]
fn sub_with_get_data_sends_the_history_after_the_ctrl() {
    let (a1, b1) = (sid(0, 1), sid(0, 2));
    let mut sim = Sim::new(1);
    sim.create_group(a1, ALICE, None);
    sim.publish(a1, ALICE, None, "\"one\"");
    sim.publish(a1, ALICE, None, "\"two\"");
    sim.run(
        GROUP,
        join_get(b1, BOB, "s", json!({"what": "desc sub data del"})),
    );
    let f = sim.frames(b1);
    let kinds: Vec<String> = f
        .iter()
        .map(|v| {
            let (k, body) = v.as_object().unwrap().iter().next().unwrap();
            match k.as_str() {
                "ctrl" => format!("ctrl{}", body["code"]),
                "meta" => format!(
                    "meta.{}",
                    body.as_object()
                        .unwrap()
                        .keys()
                        .find(|k| !["id", "topic", "ts"].contains(&k.as_str()))
                        .unwrap()
                ),
                other => other.to_owned(),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ctrl200",
            "meta.desc",
            "meta.sub",
            "data",
            "data",
            "ctrl208",
            "ctrl204"
        ]
    );
    assert_eq!(data_seqs(&f), [2, 1]);
    assert_eq!(f[1]["meta"]["desc"]["seq"], 2);
    assert!(f[1]["meta"]["desc"].get("defacs").is_some(), "bob has S");
    assert_eq!(f[2]["meta"]["sub"].as_array().unwrap().len(), 2);
    assert_eq!(f[6]["ctrl"]["params"], json!({"what": "del"}));
    assert!(f.iter().filter(|v| v.get("data").is_none()).all(|v| v
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["id"]
        == "s"));
}

/// With the journal, a message may be in the store (applied behind) before its publisher is
/// acknowledged; `{get data}` must not show it until then, as fan-out does not.
#[test]
fn get_data_hides_a_message_stored_before_its_acknowledgement() {
    let a1 = sid(0, 1);
    let mut sim = Sim::new(1);
    sim.create_group(a1, ALICE, None);
    sim.publish(a1, ALICE, None, "\"m1\"");
    sim.req(GROUP, publish(a1, ALICE, Some("p2"), "\"m2\""));
    // The store thread applies it; the journal round has not completed yet.
    let in_flight = std::mem::take(&mut sim.in_flight);
    assert_eq!(in_flight.len(), 1);
    for (_, _, batch) in &in_flight {
        sim.write(batch.clone());
    }
    sim.clear();
    sim.run(GROUP, get(a1, ALICE, "g", json!({"what": "data"})));
    assert_eq!(data_seqs(&sim.frames(a1)), vec![1]);
    // Acknowledged: now it shows.
    for (name, token, _) in in_flight {
        sim.step(&name, |t, cx| t.handle_persisted(token, Ok(()), cx));
    }
    sim.clear();
    sim.run(GROUP, get(a1, ALICE, "g", json!({"what": "data"})));
    assert_eq!(data_seqs(&sim.frames(a1)), vec![2, 1]);
}
