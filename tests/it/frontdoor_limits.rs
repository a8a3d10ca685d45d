//! The front door's bounds (`[frontdoor]`): connections from one address that sit before
//! their upgrade are capped (the next is answered 503) while other addresses get in; past the
//! total cap the oldest pending connection is cut; and with the process near its open-file
//! limit, an idle flood of unauthenticated connections is shed oldest first so that a real
//! client still logs in, long before any handshake deadline, and logged-in sessions are
//! untouched. Every loopback address reaches the server, so 127.0.0.2 plays the attacker and
//! 127.0.0.3 the real client (loopback is exempt from the per-address limit by default:
//! `frontdoor.exempt = []` lifts that here).

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::names::unique_login;
use crate::support::{Client, Server};

/// A raw TCP connection from `source` that has sent nothing (a pending connection).
fn silent(server: &Server, source: &str) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{source}:0").parse().unwrap();
    sock.bind(&src.into()).expect("bind the source address");
    let dst: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    sock.connect(&dst.into()).expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// What the server said before closing, or `None` while it keeps the connection open.
fn answer(s: &mut TcpStream, wait: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + wait;
    let mut got = Vec::new();
    while std::time::Instant::now() < deadline {
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(String::from_utf8_lossy(&got).into_owned()),
        }
    }
    None
}

/// A WebSocket client connected from `source`.
async fn ws_from(server: &Server, source: &str, name: &str) -> Result<Client, String> {
    let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    sock.bind(format!("{source}:0").parse().unwrap())
        .map_err(|e| e.to_string())?;
    let dst: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let stream = sock.connect(dst).await.map_err(|e| e.to_string())?;
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = tokio_tungstenite::client_async(server.ws_url(), stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Client::from_ws(ws, name))
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_capped_while_others_get_in() {
    let server = Server::start(1, "[frontdoor]\nmax_pending_per_addr = 8\nexempt = []\n");
    let mut held: Vec<TcpStream> = (0..8).map(|_| silent(&server, "127.0.0.2")).collect();
    // Let the server accept them all before the ninth.
    let (v, ok) = server
        .wait_vars(Duration::from_secs(10), |v| {
            num(v, "ConnectionsPending") >= 8
        })
        .await;
    assert!(ok, "{v}");
    let mut ninth = silent(&server, "127.0.0.2");
    let text = answer(&mut ninth, Duration::from_secs(5)).expect("the ninth is closed");
    assert!(
        text.starts_with("HTTP/1.1 503") && text.contains("\"code\":503"),
        "answered 503: {text:?}"
    );
    // The first eight are still waiting (the handshake deadline is 8 s by default).
    assert_eq!(answer(&mut held[0], Duration::from_millis(300)), None);
    // Another address logs in meanwhile.
    let mut c = ws_from(&server, "127.0.0.3", "other").await.expect("ws");
    c.hi().await;
    c.sign_up(&unique_login("door")).await;
    let v = server.vars();
    assert!(num(&v, "ConnectionsRefusedTotal") >= 1, "{v}");
    // Freed places are reusable.
    held.clear();
    let (v, ok) = server
        .wait_vars(Duration::from_secs(10), |v| {
            num(v, "ConnectionsPending") == 0
        })
        .await;
    assert!(ok, "{v}");
    let mut again = silent(&server, "127.0.0.2");
    assert_eq!(answer(&mut again, Duration::from_millis(500)), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_total_cap_the_oldest_pending_connection_is_cut() {
    // No monitoring request until the end: it would be a pending connection too.
    let server = Server::start(1, "[frontdoor]\nmax_pending = 6\n");
    let settle = Duration::from_millis(500);
    let mut first = silent(&server, "127.0.0.2");
    tokio::time::sleep(settle).await;
    let mut rest: Vec<TcpStream> = (0..5).map(|_| silent(&server, "127.0.0.3")).collect();
    tokio::time::sleep(settle).await;
    assert_eq!(answer(&mut first, Duration::from_millis(300)), None);
    let mut newest = silent(&server, "127.0.0.3");
    let text = answer(&mut first, Duration::from_secs(5)).expect("the oldest is cut");
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    assert_eq!(answer(&mut newest, Duration::from_millis(300)), None);
    for s in rest.iter_mut() {
        assert_eq!(answer(s, Duration::from_millis(50)), None);
    }
    let v = server.vars();
    assert!(num(&v, "ConnectionsShedTotal") >= 1, "{v}");
}

/// Open descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Lowers the soft open-file limit of process `pid` (root may, and the server re-reads it).
fn set_nofile(pid: u32, soft: usize) {
    let hard = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: 20_000,
    };
    // SAFETY: valid pointers for the duration of the call.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &hard,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_descriptor_limit_an_idle_flood_is_shed_and_real_clients_get_in() {
    // Handshake deadline of a minute: whatever frees descriptors here, it is not the timeout.
    let server = Server::start(
        1,
        "[ws]\nhandshake_timeout_ms = 60000\n\n[frontdoor]\nfd_reserve = 4\n",
    );
    let mut alice = Client::connect(&server, "alice").await;
    alice.hi().await;
    let (_, token) = alice.sign_up(&unique_login("alice")).await;
    let group = alice.create_group().await;
    // Room for ~40 more connections, then a flood three times that size: WebSocket sessions
    // that never log in, then raw connections that never finish their head.
    let limit = open_fds(server.pid()) + 40;
    set_nofile(server.pid(), limit);
    tokio::time::sleep(Duration::from_millis(1500)).await; // the limit is re-read each second
    let mut idle_ws = Vec::new();
    for i in 0..40 {
        if let Ok(c) = ws_from(&server, "127.0.0.2", &format!("idle{i}")).await {
            idle_ws.push(c);
        }
    }
    let mut raw: Vec<TcpStream> = (0..80).map(|_| silent(&server, "127.0.0.2")).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A real client gets in and logs in with its token, well inside the minute.
    let mut bob = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(mut c) = ws_from(&server, "127.0.0.3", "bob").await {
                c.hi().await;
                c.login_token(&token).await;
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a real client got in while the flood held the descriptors");
    bob.sub(&group).await;
    // The logged-in session that was there before the flood still works.
    let seq = alice.publish(&group, json!("still here")).await;
    assert!(seq >= 1);
    let v = server.vars();
    assert!(num(&v, "ConnectionsShedTotal") >= 1, "{v}");
    // The flood was shed: sessions with close 1013, raw connections with a 503 (or cut).
    let mut closed_1013 = 0;
    for mut c in idle_ws {
        if let Ok(Some(Ok(Message::Close(Some(f))))) =
            tokio::time::timeout(Duration::from_millis(200), c.ws.next()).await
        {
            if u16::from(f.code) == 1013 {
                closed_1013 += 1;
            }
        }
    }
    let mut cut = 0;
    for s in raw.iter_mut() {
        if answer(s, Duration::from_millis(20)).is_some() {
            cut += 1;
        }
    }
    assert!(
        closed_1013 + cut >= 40,
        "shed: {closed_1013} sessions with 1013, {cut} raw connections; {v}"
    );
}
