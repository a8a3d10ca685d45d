//! Security over real sockets: request smuggling attempts (conflicting or duplicate framing
//! headers, obs-fold) answered 400 on every HTTP endpoint, static files refusing traversal and
//! odd encodings, and token key rotation (a retired key's tokens accepted during the grace,
//! refused after it).

use base64::Engine as _;
use serde_json::json;

use crate::support::{http_raw, Client, Server, API_KEY};

/// Requests whose body framing a proxy could read differently than the server.
const SMUGGLING: &[(&str, &str)] = &[
    (
        "Content-Length twice",
        "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ),
    (
        "Content-Length twice, different",
        "Content-Length: 5\r\nContent-Length: 2\r\n\r\nhello",
    ),
    (
        "Content-Length and Transfer-Encoding",
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "Transfer-Encoding and Content-Length",
        "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    ),
    (
        "Transfer-Encoding twice",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "a coding before chunked",
        "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "chunked misspelt",
        "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "Content-Length with a sign",
        "Content-Length: +5\r\n\r\nhello",
    ),
    (
        "Content-Length as a list",
        "Content-Length: 5, 5\r\n\r\nhello",
    ),
    (
        "obs-fold continuation line",
        "X-Tinode-APIKey: x\r\n folded\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "obs-fold of Transfer-Encoding",
        "X-A: 1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    ),
];

#[test]
fn smuggling_attempts_are_refused_with_400_on_every_endpoint() {
    let server = Server::start(1, "");
    for path in [
        "/v0/channels/lp?apikey=AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K",
        "/v0/channels",
        "/debug/vars",
        "/no/such/path",
    ] {
        for (what, tail) in SMUGGLING {
            let request = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{tail}");
            let (status, body) = http_raw(server.port(), &request);
            assert_eq!(status, 400, "{what} on {path}: {body}");
        }
    }
    // The same over HTTP/1.0: Transfer-Encoding is not HTTP/1.0 framing at all.
    let request = "POST /v0/channels/lp HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(http_raw(server.port(), request).0, 400);
    // Well-framed requests still work: a long-poll session is created with a chunked body.
    let request = format!(
        "POST /v0/channels/lp?apikey={API_KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(http_raw(server.port(), &request).0, 201);
}

#[test]
fn static_files_refuse_traversal_and_odd_encodings() {
    let site = tempfile::tempdir().expect("site dir");
    let root = site.path().join("root");
    std::fs::create_dir_all(root.join("js")).expect("dirs");
    std::fs::write(root.join("index.html"), "<p>index</p>").expect("index");
    std::fs::write(root.join("js/app.js"), "app()").expect("app");
    std::fs::write(site.path().join("secret.txt"), "SECRET").expect("secret");
    std::os::unix::fs::symlink(site.path().join("secret.txt"), root.join("link.txt"))
        .expect("symlink");
    std::os::unix::fs::symlink(site.path(), root.join("up")).expect("dir symlink");
    let toml = format!(
        "[web]\nstatic_dir = {:?}\nstatic_mount = \"/\"\n",
        root.display().to_string()
    );
    let server = Server::start(1, &toml);
    let get = |path: &str| {
        http_raw(
            server.port(),
            &format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n"),
        )
    };
    assert_eq!(get("/js/app.js"), (200, "app()".to_owned()));
    for path in [
        "/../secret.txt",
        "/js/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/js/%2e%2e/%2e%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/..%5csecret.txt",
        "/js\\..\\..\\secret.txt",
        "/%00/secret.txt",
        "/index.html%00.js",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%af../secret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        "/%ff/secret.txt",
        "/link.txt",
        "/up/secret.txt",
        "/up/",
    ] {
        let (status, body) = get(path);
        assert!(!body.contains("SECRET"), "{path} served the secret");
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
    }
}

/// Standard base64 of 32 bytes of `b`.
fn key_of(b: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([b; 32])
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Sends `{login scheme:token}` and returns the answer's code.
async fn token_login_code(server: &Server, token: &str) -> u64 {
    let mut c = Client::connect(server, "rot").await;
    c.hi().await;
    let id = c.id();
    c.send(json!({"login": {"id": id, "scheme": "token", "secret": token}}))
        .await;
    c.ctrl_for(&id).await["code"].as_u64().expect("code")
}

/// The `[auth]` table: the token key `current`, and `retired` rotated out at `at` with one
/// hour of grace.
fn auth_config(current: u8, retired: Option<(u8, u64)>) -> String {
    let mut toml = format!(
        "[auth]\nbcrypt_cost = 4\ntoken_key = \"{}\"\n",
        key_of(current)
    );
    if let Some((old, at)) = retired {
        toml.push_str(&format!(
            "token_retired_keys = [\"{}\"]\ntoken_rotated_at = {at}\n\
             token_rotation_grace_secs = 3600\n",
            key_of(old)
        ));
    }
    toml
}

#[tokio::test]
async fn a_rotated_token_key_accepts_old_tokens_only_during_the_grace() {
    let mut server = Server::start(1, "");
    server.rewrite_config(&auth_config(1, None));
    server.restart();
    let mut a = Client::connect(&server, "a").await;
    a.hi().await;
    let (_, old_token) = a.sign_up(&crate::support::unique_login("rot")).await;
    drop(a);

    // Rotated just now: the old token still logs in, and the token that login returns is
    // signed with the new key.
    server.rewrite_config(&auth_config(2, Some((1, now_secs()))));
    server.restart();
    let mut b = Client::connect(&server, "b").await;
    b.hi().await;
    let id = b.id();
    b.send(json!({"login": {"id": id, "scheme": "token", "secret": old_token}}))
        .await;
    let ctrl = b.ctrl_for(&id).await;
    assert_eq!(ctrl["code"], 200, "old token during the grace: {ctrl}");
    let fresh = ctrl["params"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_ne!(fresh, old_token);
    drop(b);

    // Rotated two hours ago: the grace is over, the old key's token is refused.
    server.rewrite_config(&auth_config(2, Some((1, now_secs() - 7200))));
    server.restart();
    assert_eq!(token_login_code(&server, &old_token).await, 401);
    assert_eq!(token_login_code(&server, &fresh).await, 200);
    // And without the retired key at all, likewise.
    server.rewrite_config(&auth_config(2, None));
    server.restart();
    assert_eq!(token_login_code(&server, &old_token).await, 401);
}
