//! Minimal HTTP/1.1 for the edge: reading one request head with httparse, the API key lookup
//! the reference server uses, small JSON responses in the protocol's `{ctrl}` shape, and the
//! bare WebSocket handshake (`websocket_upgrade`, used by the echo endpoint).
//!
//! Only what the endpoints need: no keep-alive for plain HTTP responses (each answer closes the
//! connection), no request bodies beyond what WebSocket upgrades and status pages use.

use std::time::Duration;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::ids::UnixMillis;
use crate::proto::time::rfc3339;

/// A parsed request head.
#[derive(Debug, Default)]
pub struct RequestHead {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string (after `?`), possibly empty.
    pub query: String,
    /// Headers with lowercased names.
    pub headers: Vec<(String, String)>,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
}

impl RequestHead {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v))
        })
    }

    /// The API key as the reference looks it up: header, then query, then cookie.
    pub fn api_key(&self) -> Option<String> {
        if let Some(v) = self.header("x-tinode-apikey") {
            return Some(v.trim().to_owned());
        }
        if let Some(v) = self.query_param("apikey") {
            return Some(v);
        }
        let cookies = self.header("cookie")?;
        cookies.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == "apikey").then(|| v.to_owned())
        })
    }
}

/// Percent-decodes a query or form value (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("connection closed before a complete request head")]
    Closed,
    #[error("request head larger than {0} bytes")]
    TooLarge(usize),
    #[error("invalid request head: {0}")]
    Invalid(String),
    #[error("i/o: {0}")]
    Io(String),
    /// The whole head did not arrive within the deadline (however it trickled in).
    #[error("request head not complete within {0:?}")]
    Timeout(Duration),
}

/// Most header lines in one request head.
const MAX_HEADERS: usize = 64;

/// Parses a request head from the start of `buf`: `Ok(None)` while incomplete, else the head
/// and its length in bytes. Refused as [`HeadError::Invalid`] (answered 400) besides what
/// httparse refuses (obs-fold continuation lines, bad names, more than 64 headers): framing
/// that a proxy in front could read differently (request smuggling, RFC 9112 §6.3) — more than
/// one `Content-Length`, one that is not plain digits, `Transfer-Encoding` together with
/// `Content-Length`, more than one `Transfer-Encoding`, any coding but `chunked`, or
/// `Transfer-Encoding` on HTTP/1.0.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Invalid(e.to_string())),
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let head = RequestHead {
        method: req.method.unwrap_or("").to_owned(),
        version: req.version.unwrap_or(1),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    };
    check_framing(&head)?;
    Ok(Some((head, len)))
}

/// The body framing rules of [`parse_head`].
fn check_framing(head: &RequestHead) -> Result<(), HeadError> {
    let named = |n: &'static str| -> Vec<&str> {
        let with_name = head.headers.iter().filter(move |(k, _)| k == n);
        with_name.map(|(_, v)| v.as_str()).collect()
    };
    let invalid = |why: &str| Err(HeadError::Invalid(why.to_owned()));
    let lengths = named("content-length");
    let codings = named("transfer-encoding");
    if lengths.len() > 1 {
        return invalid("more than one Content-Length");
    }
    if let Some(l) = lengths.first() {
        let l = l.trim_matches([' ', '\t']);
        if l.is_empty() || l.len() > 19 || !l.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("Content-Length is not a number");
        }
    }
    if codings.is_empty() {
        return Ok(());
    }
    if !lengths.is_empty() {
        return invalid("both Transfer-Encoding and Content-Length");
    }
    if codings.len() > 1 || head.version == 0 {
        return invalid("Transfer-Encoding repeated or on HTTP/1.0");
    }
    if !codings[0]
        .trim_matches([' ', '\t'])
        .eq_ignore_ascii_case("chunked")
    {
        return invalid("a Transfer-Encoding other than chunked");
    }
    Ok(())
}

/// Reads one request head; returns it and any bytes read past it. `timeout` bounds the whole
/// head, not each read: a client trickling one byte at a time (slowloris) is cut when it runs
/// out, however often it sends.
pub async fn read_head(
    stream: &mut TcpStream,
    max: usize,
    timeout: Duration,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout(timeout));
        }
        let _ = stream.set_read_timeout(Some(left));
        let n = stream.read(&mut chunk).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut {
                HeadError::Timeout(timeout)
            } else {
                HeadError::Io(e.to_string())
            }
        })?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf)? {
            Some((head, len)) => {
                let _ = stream.set_read_timeout(None);
                return Ok((head, buf[len..].to_vec()));
            }
            None if buf.len() > max => return Err(HeadError::TooLarge(max)),
            None => {}
        }
    }
}

/// The JSON body of a `{ctrl}` error at the HTTP level.
pub fn ctrl_body(code: u16, text: &str, now: UnixMillis) -> String {
    serde_json::json!({ "ctrl": { "code": code, "text": text, "ts": rfc3339(now) } }).to_string()
}

/// Writes a complete response and closes the write side.
pub async fn respond(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    content_type: &str,
    body: &str,
) {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache, no-store, must-revalidate\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    let _ = stream.write_all(&out).await;
    let _ = stream.flush().await;
    let _ = stream.close().await;
}

/// Answers a WebSocket upgrade request that needs nothing but the handshake (no API key):
/// `405` for a method other than GET, `400` when it is not an upgrade, else `101 Switching
/// Protocols`. Returns whether the connection is now a WebSocket.
pub async fn websocket_upgrade(
    stream: &mut TcpStream,
    head: &RequestHead,
    now: UnixMillis,
) -> bool {
    if head.method != "GET" {
        let body = ctrl_body(405, "operation or method not allowed", now);
        respond(stream, 405, "Method Not Allowed", "application/json", &body).await;
        return false;
    }
    let Some(ws_key) = websocket_key(head) else {
        let body = ctrl_body(400, "malformed", now);
        respond(stream, 400, "Bad Request", "application/json", &body).await;
        return false;
    };
    let resp = switching_protocols(ws_key);
    stream.write_all(resp.as_bytes()).await.is_ok()
}

/// The `Sec-WebSocket-Key` of a request that asks for a WebSocket upgrade (`Upgrade:
/// websocket`, `Connection: … upgrade …`); `None` when it is not one.
pub fn websocket_key(head: &RequestHead) -> Option<&str> {
    let is_upgrade = head
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && head
            .header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"));
    head.header("sec-websocket-key").filter(|_| is_upgrade)
}

/// The `101 Switching Protocols` response accepting `ws_key`.
pub fn switching_protocols(ws_key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        tungstenite::handshake::derive_accept_key(ws_key.trim().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_from_header_query_or_cookie() {
        let mut h = RequestHead {
            query: "a=1&apikey=AQ%2DB&x".into(),
            ..RequestHead::default()
        };
        assert_eq!(h.api_key().as_deref(), Some("AQ-B"));
        h.headers.push(("x-tinode-apikey".into(), " K ".into()));
        assert_eq!(h.api_key().as_deref(), Some("K"));
        let c = RequestHead {
            headers: vec![("cookie".into(), "a=b; apikey=C".into())],
            ..RequestHead::default()
        };
        assert_eq!(c.api_key().as_deref(), Some("C"));
        assert_eq!(RequestHead::default().api_key(), None);
    }

    #[test]
    fn percent_decoding_tolerates_garbage() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }

    fn parse(text: &str) -> Result<Option<(RequestHead, usize)>, HeadError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn a_head_parses_with_its_length() {
        let text = "POST /v0/channels/lp?sid=x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
        let (head, len) = parse(text).unwrap().unwrap();
        assert_eq!(
            (head.method.as_str(), head.path.as_str()),
            ("POST", "/v0/channels/lp")
        );
        assert_eq!(head.query, "sid=x");
        assert_eq!(&text[len..], "hi");
        assert!(parse("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n";
        assert!(parse(chunked).unwrap().is_some());
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for bad in [
            "Content-Length: 5\r\nContent-Length: 5",
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked\r\nContent-Length: 0",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: chunked, identity",
            "Transfer-Encoding: xchunked",
            "Content-Length: +5",
            "Content-Length: 5, 5",
            "Content-Length: 0x10",
            "Content-Length: ",
            "Content-Length: 99999999999999999999",
            "X-A: 1\r\n folded",
            "Content-Length: 5\r\n\tfolded",
            "Bad Name: x",
        ] {
            let text = format!("POST /v0/channels/lp HTTP/1.1\r\nHost: a\r\n{bad}\r\n\r\n");
            assert!(
                matches!(parse(&text), Err(HeadError::Invalid(_))),
                "{bad:?}"
            );
        }
        let old = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(parse(old), Err(HeadError::Invalid(_))));
    }
}
