//! Operations: `/metrics` read by a strict Prometheus text reader, `/debug/vars` carrying every
//! key of the reference server with the JSON types Tinode's exporter reads, `/healthz` and
//! `/readyz`, the monitoring endpoints moved to their own port or turned off, a key from
//! `coretalk keygen` accepted under the salt it printed, the client address taken from a
//! trusted proxy's header only, and JSON log lines with the shard and session fields.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::prom_text;
use crate::support::{http_raw, unique_login, Client, Server, RECV_TIMEOUT};

/// The reference's scalar expvar keys (tinode-protocol.md §7), each a JSON number.
const REFERENCE_NUMBERS: &[&str] = &[
    "Uptime",
    "NumGoroutines",
    "Version",
    "LiveSessions",
    "TotalSessions",
    "LiveTopics",
    "TotalTopics",
    "IncomingMessagesWebsockTotal",
    "OutgoingMessagesWebsockTotal",
    "IncomingMessagesLongpollTotal",
    "OutgoingMessagesLongpollTotal",
    "IncomingMessagesGrpcTotal",
    "OutgoingMessagesGrpcTotal",
    "FileDownloadsTotal",
    "FileUploadsTotal",
    "CtrlCodesTotal2xx",
    "CtrlCodesTotal3xx",
    "CtrlCodesTotal4xx",
    "CtrlCodesTotal5xx",
    "ClusterLeader",
    "TotalClusterNodes",
    "LiveClusterNodes",
];

const LATENCY_BOUNDS: &[f64] = &[
    1., 2., 3., 4., 5., 6., 8., 10., 13., 16., 20., 25., 30., 40., 50., 65., 80., 100., 130., 160.,
    200., 250., 300., 400., 500., 650., 800., 1000., 2000., 5000., 10000., 20000., 50000., 100000.,
];

const SIZE_BOUNDS: &[f64] = &[
    1.,
    2.,
    4.,
    8.,
    16.,
    32.,
    64.,
    128.,
    256.,
    512.,
    1024.,
    2048.,
    4096.,
    16384.,
    65536.,
    262144.,
    1048576.,
    4194304.,
    16777216.,
    67108864.,
    268435456.,
    1073741824.,
    4294967296.,
];

/// A client that signed up (hi 201, acc 200: two replies with ids) and published once.
async fn some_traffic(server: &Server) -> Client {
    let mut c = Client::connect(server, "ops").await;
    c.hi().await;
    c.sign_up(&unique_login("ops")).await;
    let topic = c.create_group().await;
    c.publish(&topic, json!("hello")).await;
    c
}

fn metrics(port: u16) -> prom_text::Exposition {
    let (status, body) = http_raw(
        port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{body}");
    prom_text::parse(&body).unwrap_or_else(|e| panic!("/metrics is not valid: {e}\n{body}"))
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_a_series_per_shard() {
    let server = Server::start(2, "");
    let _c = some_traffic(&server).await;
    let m = metrics(server.port());
    for family in [
        "coretalk_sessions",
        "coretalk_topics",
        "coretalk_attachments",
        "coretalk_messages_in_total",
        "coretalk_messages_out_total",
        "coretalk_ctrl_replies_total",
        "coretalk_mesh_backlog",
        "coretalk_mesh_inbox",
        "coretalk_slow_consumers_total",
        "coretalk_rate_limited_total",
        "coretalk_store_errors_total",
    ] {
        for shard in ["0", "1"] {
            assert!(
                !m.find(family, &[("shard", shard)]).is_empty(),
                "{family} has no series for shard {shard}"
            );
        }
    }
    assert_eq!(
        m.types["coretalk_request_latency_milliseconds"],
        "histogram"
    );
    assert_eq!(m.types["coretalk_outgoing_message_bytes"], "histogram");
    assert_eq!(m.sum("coretalk_sessions", &[("kind", "ws")]), 1.0);
    assert!(m.sum("coretalk_messages_in_total", &[("transport", "ws")]) >= 4.0);
    assert!(m.sum("coretalk_ctrl_replies_total", &[("class", "2xx")]) >= 4.0);
    assert!(m.sum("coretalk_request_latency_milliseconds_count", &[]) >= 4.0);
    assert!(m.sum("coretalk_outgoing_message_bytes_count", &[]) >= 4.0);
    // Every latency bucket of the reference, with `le` as Prometheus spells it.
    let les: Vec<String> = m
        .find(
            "coretalk_request_latency_milliseconds_bucket",
            &[("shard", "0")],
        )
        .iter()
        .map(|s| s.labels["le"].clone())
        .collect();
    assert_eq!(les.len(), LATENCY_BOUNDS.len() + 1);
    assert_eq!(les.last().map(String::as_str), Some("+Inf"));
    assert!(m.sum("coretalk_memory_rss_bytes", &[]) > 1e6);
    assert!(m.sum("coretalk_store_commits_total", &[]) >= 1.0);
    assert_eq!(m.sum("coretalk_shard_accepting", &[]), 2.0);
}

#[tokio::test]
async fn debug_vars_carries_every_reference_key_as_the_exporter_reads_it() {
    let server = Server::start(1, "");
    let _c = some_traffic(&server).await;
    let v = server.vars();
    for k in REFERENCE_NUMBERS {
        assert!(v[k].is_number(), "{k} is not a number: {}", v[k]);
    }
    assert!(
        v["memstats"]["Alloc"].as_f64().is_some_and(|a| a > 0.0),
        "{}",
        v["memstats"]
    );
    assert!(v["cmdline"]
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)));
    assert_eq!(v["Version"], 2500, "0.25 as the reference numbers it");
    assert!(v["TotalTopics"].as_u64() >= Some(1), "the group");
    assert!(v["CtrlCodesTotal2xx"].as_u64() >= Some(4));
    for (key, bounds) in [
        ("RequestLatency", LATENCY_BOUNDS),
        ("OutgoingMessageSize", SIZE_BOUNDS),
    ] {
        let h = &v[key];
        let got: Vec<f64> = h["bounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_f64().unwrap())
            .collect();
        assert_eq!(got, bounds, "{key} bounds");
        let buckets = h["count_per_bucket"].as_array().unwrap();
        assert_eq!(
            buckets.len(),
            bounds.len() + 1,
            "{key}: the exporter needs bounds + 1"
        );
        let total: u64 = buckets.iter().map(|b| b.as_u64().unwrap()).sum();
        assert_eq!(h["count"].as_u64(), Some(total), "{key}");
        assert!(total >= 4, "{key}: {h}");
        assert!(h["sum"].is_number(), "{key}");
    }
}

#[tokio::test]
async fn health_answers_and_readiness_means_every_shard_accepts() {
    let server = Server::start(2, "");
    assert_eq!(server.http_get("/healthz", ""), (200, "ok\n".into()));
    assert_eq!(server.http_get("/readyz", ""), (200, "ready\n".into()));
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(server.http_get("/readyz", "").0, 200);
    }
    println!("20 /readyz round trips: {:?}", t.elapsed());
    let m = metrics(server.port());
    assert_eq!(m.sum("coretalk_shard_accepting", &[("shard", "0")]), 1.0);
    assert_eq!(m.sum("coretalk_shard_accepting", &[("shard", "1")]), 1.0);
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn monitoring_moves_to_its_own_port_or_is_turned_off() {
    let port = free_port();
    let server = Server::start(2, &format!("[monitor]\naddr = \"127.0.0.1:{port}\"\n"));
    for path in ["/metrics", "/debug/vars", "/healthz", "/readyz"] {
        assert_eq!(
            server.http_get(path, "").0,
            404,
            "{path} left the main port"
        );
        let (status, _) = http_raw(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(status, 200, "{path} on the monitor port");
    }
    let (status, _) = http_raw(port, "GET /v0/channels HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 404, "only monitoring there");
    drop(server);

    let off = Server::start(1, "[monitor]\nmetrics = false\nhealth = false\n");
    for path in ["/metrics", "/debug/vars", "/healthz", "/readyz"] {
        assert_eq!(off.http_get(path, "").0, 404, "{path} is off");
    }
}

/// Runs `coretalk keygen ARGS` and returns (key, salt if printed).
fn keygen(args: &[&str]) -> (String, Option<String>) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coretalk"))
        .arg("keygen")
        .args(args)
        .output()
        .expect("run coretalk keygen");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("API key ")
                .and_then(|r| r.rsplit(": ").next())
        })
        .unwrap_or_else(|| panic!("no key in {text:?}"))
        .trim()
        .to_owned();
    let salt = text
        .lines()
        .find_map(|l| l.strip_prefix("salt (api.key_salt): "))
        .map(|s| s.trim().to_owned());
    (key, salt)
}

/// Opens a WebSocket with `key` and says hi; the code of the reply, or the HTTP refusal.
async fn hi_with_key(port: u16, key: &str) -> Result<u64, String> {
    let url = format!("ws://127.0.0.1:{port}/v0/channels?apikey={key}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    ws.send(Message::text(
        json!({"hi": {"id": "1", "ver": "0.25"}}).to_string(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    let reply = tokio::time::timeout(RECV_TIMEOUT, ws.next())
        .await
        .map_err(|e| e.to_string())?;
    let Some(Ok(Message::Text(t))) = reply else {
        return Err(format!("{reply:?}"));
    };
    let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
    v["ctrl"]["code"].as_u64().ok_or(t.to_string())
}

#[tokio::test]
async fn a_keygen_key_is_accepted_under_the_salt_it_printed() {
    let (key, salt) = keygen(&[]);
    let salt = salt.expect("a new salt is printed");
    let server = Server::start(1, &format!("[api]\nkey_salt = \"{salt}\"\n"));
    assert_eq!(hi_with_key(server.port(), &key).await, Ok(201));
    // Another key for the same salt, and the public demo key refused.
    let (second, none) = keygen(&["--salt", &salt, "--sequence", "2"]);
    assert!(none.is_none(), "no new salt with --salt");
    assert_ne!(second, key);
    assert_eq!(hi_with_key(server.port(), &second).await, Ok(201));
    let demo = hi_with_key(server.port(), crate::support::API_KEY).await;
    assert!(
        demo.is_err_and(|e| e.contains("403")),
        "the demo key must not work"
    );
}

/// Opens a WebSocket carrying `X-Forwarded-For: xff` and says hi.
async fn hi_forwarded(server: &Server, xff: &str) {
    let mut req = server.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("x-forwarded-for", xff.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    ws.send(Message::text(
        json!({"hi": {"id": "1", "ver": "0.25"}}).to_string(),
    ))
    .await
    .unwrap();
    let reply = tokio::time::timeout(RECV_TIMEOUT, ws.next())
        .await
        .expect("hi reply");
    assert!(matches!(reply, Some(Ok(Message::Text(_)))), "{reply:?}");
}

/// Waits (the log is written by its own thread) until the server's log holds `needle`.
async fn log_shows(server: &Server, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if server.log().contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn the_client_address_comes_from_a_trusted_proxy_only() {
    let debug = "[log]\nfilter = \"info,coretalk::shard=debug\"\n";
    let trusting = Server::start(
        1,
        &format!("{debug}[listen]\ntrusted_proxies = [\"127.0.0.0/8\"]\n"),
    );
    hi_forwarded(&trusting, "198.51.100.3, 203.0.113.9").await;
    assert!(
        log_shows(&trusting, "remote=203.0.113.9").await,
        "the proxy's client is the session's address:\n{}",
        trusting.log()
    );
    let wary = Server::start(
        1,
        &format!("{debug}[listen]\ntrusted_proxies = [\"10.0.0.0/8\"]\n"),
    );
    hi_forwarded(&wary, "203.0.113.9").await;
    assert!(
        log_shows(&wary, "remote=127.0.0.1:").await,
        "{}",
        wary.log()
    );
    assert!(
        !wary.log().contains("203.0.113.9"),
        "an untrusted peer's header is ignored"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_shard_and_session() {
    let server = Server::start(
        1,
        "[log]\nformat = \"json\"\nfilter = \"info,coretalk::shard=debug\"\n",
    );
    let mut c = Client::connect(&server, "json").await;
    c.hi().await;
    c.send_text("{not json").await;
    assert!(
        log_shows(&server, "malformed message").await,
        "{}",
        server.log()
    );
    let log = server.log();
    let mut opened = false;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        if v["fields"]["message"] == "session opened" {
            opened = true;
            assert_eq!(v["span"]["name"], "shard", "{line}");
            assert_eq!(v["span"]["id"], 0, "{line}");
            assert!(v["fields"]["session"].is_string(), "{line}");
            assert!(
                v["fields"]["remote"]
                    .as_str()
                    .unwrap()
                    .starts_with("127.0.0.1:"),
                "{line}"
            );
        }
    }
    assert!(opened, "no session line in {log}");
}
