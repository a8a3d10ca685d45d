//! Long polling at `/v0/channels/lp`, as the reference server speaks it (tinode-protocol.md
//! §1.4): a request without `sid` creates a session (201 with `params.sid`); with `sid` and a
//! body it carries one client message (200, empty); with `sid` and no body it is a poll that
//! answers the next queued message, exactly one per response, or an empty 200 after
//! `longpoll.hold_ms`. Unknown, expired or forged `sid`: 403. On a cluster node, a `sid` of
//! another node's session is forwarded there (`shard/lp_remote.rs`); 502 when that node's link
//! is down.
//!
//! One request per connection (`Connection: close`). The request goes to its session through
//! [`crate::shard::ShardCtx::longpoll`], whichever shard the kernel gave the connection to; this
//! task only reads the request, waits for the answer (watching for the client going away) and
//! writes it. The HTTP-level error bodies are spelled here, before a session is involved.

use std::future::poll_fn;
use std::time::Duration;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::config::Config;
use crate::proto::{encode, Outcome};
use crate::shard::local::with;
use crate::shard::{now, LpAnswer, LpBody, LpTarget, SessionKind};
use crate::transport::http::{ctrl_body, percent_decode, RequestHead};

/// Most bytes read and thrown away after an error answer, so that closing the socket with an
/// unread body does not reset the connection before the client read the answer.
const LINGER_BYTES: usize = 256 << 10;
const LINGER_TIME: Duration = Duration::from_secs(1);

/// A write that makes no progress for this long ends the request (the reference's writeWait).
const WRITE_STALL: Duration = Duration::from_secs(10);

/// Extra time a request waits for its answer beyond the hold, in case the home shard never
/// answers (it always should).
const ANSWER_SLACK: Duration = Duration::from_secs(10);

/// Why the body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Announced (Content-Length) larger than the long-poll message limit (`limits.max_message_size_lp`, else `session.max_message_size`): 417.
    TooLarge,
    /// Malformed framing, a chunked body over the limit, or a read error: 400.
    Bad,
    /// The client went away or was too slow: no answer.
    Gone,
}

/// A complete answer.
struct Answer {
    status: u16,
    reason: &'static str,
    body: Vec<u8>,
    /// CORS and no-cache headers (every answer after the API key check).
    open: bool,
}

impl Answer {
    fn ok(body: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            reason: "OK",
            body,
            open: true,
        }
    }

    fn ctrl(status: u16, reason: &'static str, code: u16, text: &str) -> Answer {
        Answer {
            status,
            reason,
            body: ctrl_body(code, text, now()).into_bytes(),
            open: true,
        }
    }

    fn invalid_session() -> Answer {
        Answer::ctrl(403, "Forbidden", 403, "invalid or expired session")
    }
}

/// Serves one long-poll request.
pub async fn serve(
    mut stream: TcpStream,
    head: RequestHead,
    leftover: Vec<u8>,
    remote: String,
    cfg: &Config,
) {
    let _ = stream.set_write_timeout(Some(WRITE_STALL));
    if head.method == "OPTIONS" {
        return write_answer(
            &mut stream,
            &head,
            &preflight_answer(),
            Some(&preflight_headers(&head)),
        )
        .await;
    }
    let body = read_body(&mut stream, &head, leftover, cfg).await;
    if body == Err(BodyError::Gone) {
        return;
    }
    // Form values: an urlencoded body's, then the query string's (Go's FormValue).
    let form = match (&body, is_form(&head)) {
        (Ok(b), true) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let value = |name: &str| form_value(&form, name).or_else(|| head.query_param(name));
    let key = head
        .header("x-tinode-apikey")
        .map(|k| k.trim().to_owned())
        .or_else(|| head.query_param("apikey"))
        .or_else(|| form_value(&form, "apikey"))
        .or_else(|| head.api_key());
    if !key.is_some_and(|k| with(|ctx| ctx.api_key_ok(&k))) {
        let mut a = Answer::ctrl(403, "Forbidden", 403, "valid API key required");
        a.open = false;
        return finish(&mut stream, &head, &a, body.is_err()).await;
    }
    let sid = value("sid").unwrap_or_default();
    if sid.is_empty() {
        // A new session; the body is ignored.
        let opened = with(|ctx| ctx.open_session(SessionKind::LongPoll, remote));
        let answer = match opened {
            Some(handle) => {
                let id = value("id");
                let msg = Outcome::Created
                    .ctrl(id.as_deref(), None, now())
                    .param("sid", with(|ctx| ctx.lp_sid(handle)))
                    .msg();
                Answer {
                    status: 201,
                    reason: "Created",
                    body: encode(&msg).to_vec(),
                    open: true,
                }
            }
            None => Answer::ctrl(503, "Service Unavailable", 503, "service unavailable"),
        };
        return finish(&mut stream, &head, &answer, body.is_err()).await;
    }
    // The session's node: this one, or another cluster node the request is forwarded to.
    let (node, handle) = match with(|ctx| ctx.lp_target(&sid)) {
        LpTarget::Here(h) => (None, h),
        LpTarget::Node(n, h) => (Some(n), h),
        LpTarget::Invalid => {
            let a = Answer::invalid_session();
            return finish(&mut stream, &head, &a, body.is_err()).await;
        }
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let status = match e {
                BodyError::TooLarge => (417, "Expectation Failed"),
                _ => (400, "Bad Request"),
            };
            let id = value("id");
            let msg = Outcome::Malformed.ctrl(id.as_deref(), None, now()).msg();
            let a = Answer {
                status: status.0,
                reason: status.1,
                body: encode(&msg).to_vec(),
                open: true,
            };
            return finish(&mut stream, &head, &a, true).await;
        }
    };
    let req = if !has_body(&head) {
        LpBody::Poll
    } else if body == b"1" {
        LpBody::Probe
    } else if is_form(&head) {
        // The body was the form; like the reference, what is left of it (nothing) is the
        // message, which is malformed.
        LpBody::Send(Vec::new())
    } else {
        LpBody::Send(body)
    };
    let poll = req == LpBody::Poll;
    let wait = with(|ctx| match &node {
        Some(node) => ctx.longpoll_remote(node, handle, req),
        None => ctx.longpoll(handle, req.decoded()),
    });
    let limit = Duration::from_millis(cfg.longpoll.hold_ms) + ANSWER_SLACK;
    let _ = stream.set_read_timeout(None);
    enum Got {
        Answer(LpAnswer),
        Gone,
        Late,
    }
    let got = {
        let answer = async { Got::Answer(poll_fn(|cx| wait.poll_answer(cx)).await) };
        let late = async {
            glommio::timer::sleep(limit).await;
            Got::Late
        };
        let gone = async {
            // Only a poll waits long; a client that closes its side meanwhile is gone. Bytes it
            // sends (a pipelined request) are ignored.
            if !poll {
                return std::future::pending().await;
            }
            let mut buf = [0u8; 512];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return Got::Gone,
                    Ok(_) => {}
                }
            }
        };
        futures_lite::future::or(answer, futures_lite::future::or(gone, late)).await
    };
    let answer = match got {
        Got::Answer(a) => a,
        Got::Gone => {
            with(|ctx| ctx.longpoll_gone(handle, wait.ticket()));
            return;
        }
        Got::Late => {
            with(|ctx| ctx.longpoll_gone(handle, wait.ticket()));
            LpAnswer::Empty
        }
    };
    let a = match answer {
        LpAnswer::Accepted | LpAnswer::Empty => Answer::ok(Vec::new()),
        LpAnswer::Frame(f) => Answer::ok(f.to_vec()),
        LpAnswer::Invalid => Answer::invalid_session(),
        LpAnswer::Unreachable => Answer::ctrl(
            502,
            "Bad Gateway",
            502,
            "the session's cluster node is unreachable",
        ),
    };
    finish(&mut stream, &head, &a, false).await;
}

/// Writes the answer and closes; after an error with the body unread, reads and drops what the
/// client still sends for a moment first, so the answer is not lost to a connection reset.
async fn finish(stream: &mut TcpStream, head: &RequestHead, a: &Answer, unread: bool) {
    write_answer(stream, head, a, None).await;
    if unread {
        let mut buf = [0u8; 4096];
        let mut left = LINGER_BYTES;
        let _ = stream.set_read_timeout(Some(LINGER_TIME));
        let deadline = std::time::Instant::now() + LINGER_TIME;
        while left > 0 && std::time::Instant::now() < deadline {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }
}

/// The answer to a CORS preflight: no session, no API key (browsers send none on preflights).
fn preflight_answer() -> Answer {
    Answer {
        status: 204,
        reason: "No Content",
        body: Vec::new(),
        open: true,
    }
}

fn preflight_headers(head: &RequestHead) -> String {
    let allow = head
        .header("access-control-request-headers")
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_, ".contains(&b))
        })
        .unwrap_or("Content-Type, X-Tinode-APIKey, X-Tinode-Auth");
    format!(
        "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\nAccess-Control-Allow-Headers: {allow}\r\nAccess-Control-Max-Age: 86400\r\n"
    )
}

async fn write_answer(stream: &mut TcpStream, head: &RequestHead, a: &Answer, extra: Option<&str>) {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        a.status,
        a.reason,
        a.body.len()
    );
    if a.open {
        out.push_str("Access-Control-Allow-Origin: *\r\n");
        if head.version >= 1 {
            out.push_str("Cache-Control: no-cache, no-store, must-revalidate\r\n");
        } else {
            out.push_str("Pragma: no-cache\r\n");
        }
        out.push_str("Expires: 0\r\n");
    }
    if let Some(extra) = extra {
        out.push_str(extra);
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&a.body);
    let _ = stream.write_all(&bytes).await;
    let _ = stream.flush().await;
    let _ = stream.close().await;
}

/// An urlencoded form body (its values are form values, not a message).
pub(crate) fn is_form(head: &RequestHead) -> bool {
    head.header("content-type").is_some_and(|t| {
        t.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// A value of an urlencoded form, percent-decoded.
pub(crate) fn form_value(form: &str, name: &str) -> Option<String> {
    form.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

pub(crate) fn is_chunked(head: &RequestHead) -> bool {
    head.header("transfer-encoding").is_some_and(|t| {
        t.to_ascii_lowercase()
            .split(',')
            .any(|p| p.trim() == "chunked")
    })
}

/// True when the request carries a body (a non-zero Content-Length, or chunked: the reference
/// counts chunked bodies as non-empty).
pub(crate) fn has_body(head: &RequestHead) -> bool {
    is_chunked(head)
        || head
            .header("content-length")
            .is_some_and(|l| l.trim() != "0")
}

/// How a request's body is framed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (no Content-Length, or 0).
    Empty,
    /// `Content-Length` bytes, at most the limit.
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
}

/// The framing of `head`'s body for a limit of `max` bytes (the head already passed
/// `http::parse_head`'s framing rules).
pub(crate) fn framing(head: &RequestHead, max: usize) -> Result<Framing, BodyError> {
    let chunked = is_chunked(head);
    let length = match head.header("content-length") {
        Some(_) if chunked => return Err(BodyError::Bad),
        Some(l) => Some(l.trim().parse::<usize>().map_err(|_| BodyError::Bad)?),
        None => None,
    };
    match length {
        Some(l) if l > max => Err(BodyError::TooLarge),
        _ if chunked => Ok(Framing::Chunked),
        Some(0) | None => Ok(Framing::Empty),
        Some(l) => Ok(Framing::Length(l)),
    }
}

/// Reads the whole body, bounded by the long-poll message limit and `longpoll.body_timeout_ms`.
async fn read_body(
    stream: &mut TcpStream,
    head: &RequestHead,
    mut buf: Vec<u8>,
    cfg: &Config,
) -> Result<Vec<u8>, BodyError> {
    let max = cfg.max_message_size(crate::config::Transport::LongPoll);
    let length = match framing(head, max)? {
        Framing::Empty => return Ok(Vec::new()),
        Framing::Length(l) => Some(l),
        Framing::Chunked => None,
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(cfg.longpoll.body_timeout_ms)));
    let wants_continue = head
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    let continue_first = wants_continue && buf.is_empty() && head.version >= 1;
    if continue_first
        && stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
    {
        return Err(BodyError::Gone);
    }
    match length {
        Some(len) => {
            while buf.len() < len {
                read_more(stream, &mut buf).await?;
            }
            buf.truncate(len);
            Ok(buf)
        }
        None => {
            let mut chunks = Chunked::default();
            loop {
                if let Some(body) = chunks.advance(&buf, max)? {
                    return Ok(body);
                }
                read_more(stream, &mut buf).await?;
            }
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), BodyError> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => Err(BodyError::Gone),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

/// Incremental decoding of a chunked body of at most `max` bytes, without I/O: each
/// [`Chunked::advance`] gets everything received so far and goes on where the last stopped.
/// Trailers are skipped.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    /// Where the next chunk-size line (or the trailers) starts in the received bytes.
    pos: usize,
    body: Vec<u8>,
    /// The last (zero) chunk was seen; only the trailers are left.
    trailers: bool,
}

impl Chunked {
    /// `Ok(Some(body))` once the body is complete, `Ok(None)` while more bytes are needed;
    /// [`BodyError::Bad`] for a malformed coding, a size line over 1 KiB, trailers over 8 KiB
    /// or a body over `max`. `raw` must extend the bytes given last time.
    pub(crate) fn advance(&mut self, raw: &[u8], max: usize) -> Result<Option<Vec<u8>>, BodyError> {
        loop {
            let rest = raw.get(self.pos..).ok_or(BodyError::Bad)?;
            if self.trailers {
                // Trailers end with an empty line; a body with none ends right here.
                if rest.starts_with(b"\r\n") || rest.windows(4).any(|w| w == b"\r\n\r\n") {
                    return Ok(Some(std::mem::take(&mut self.body)));
                }
                return if rest.len() > 8192 {
                    Err(BodyError::Bad)
                } else {
                    Ok(None)
                };
            }
            let (skip, size) = match httparse::parse_chunk_size(rest) {
                Ok(httparse::Status::Complete(v)) => v,
                Ok(httparse::Status::Partial) if rest.len() < 1024 => return Ok(None),
                _ => return Err(BodyError::Bad),
            };
            if size == 0 {
                self.pos += skip;
                self.trailers = true;
                continue;
            }
            let size = usize::try_from(size).map_err(|_| BodyError::Bad)?;
            if size > max.saturating_sub(self.body.len()) {
                return Err(BodyError::Bad);
            }
            let Some(chunk) = rest.get(skip..skip + size + 2) else {
                return Ok(None);
            };
            let (data, end) = chunk.split_at(size);
            if end != b"\r\n" {
                return Err(BodyError::Bad);
            }
            self.body.extend_from_slice(data);
            self.pos += skip + size + 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            version: 1,
            ..RequestHead::default()
        }
    }

    #[test]
    fn form_values_and_body_kinds() {
        assert_eq!(form_value("a=1&sid=x%2By&b", "sid").as_deref(), Some("x+y"));
        assert_eq!(form_value("", "sid"), None);
        let form = head(&[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("content-length", "5"),
        ]);
        assert!(is_form(&form) && has_body(&form));
        assert!(!has_body(&head(&[("content-length", "0")])));
        assert!(has_body(&head(&[("transfer-encoding", "gzip, chunked")])));
        assert!(!has_body(&head(&[])));
    }

    /// Feeds `raw` to a chunk decoder in pieces of `step` bytes, as reads would deliver it.
    fn dechunk(raw: &[u8], step: usize, max: usize) -> Result<Option<Vec<u8>>, BodyError> {
        let mut dec = Chunked::default();
        let mut got = None;
        for end in (step..raw.len() + step).step_by(step) {
            got = dec.advance(&raw[..end.min(raw.len())], max)?;
            if got.is_some() {
                break;
            }
        }
        Ok(got)
    }

    #[test]
    fn chunked_bodies_decode_in_any_pieces() {
        let raw = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 3, 7, 64] {
            let got = dechunk(raw, step, 100).unwrap();
            assert_eq!(got.as_deref(), Some(&b"Wikipedia"[..]), "step {step}");
        }
        assert_eq!(dechunk(b"0\r\n\r\n", 1, 10).unwrap(), Some(Vec::new()));
        assert_eq!(dechunk(b"4\r\nWiki\r\n", 3, 10).unwrap(), None);
        assert_eq!(dechunk(b"4\r\nWikiXX", 1, 10), Err(BodyError::Bad));
        assert_eq!(dechunk(b"b\r\nhello world\r\n", 1, 10), Err(BodyError::Bad));
        assert_eq!(dechunk(b"zz\r\n", 1, 10), Err(BodyError::Bad));
        let huge = b"ffffffffffffffff\r\n";
        assert_eq!(dechunk(huge, 5, 10), Err(BodyError::Bad));
    }

    #[test]
    fn framing_by_length_or_chunks() {
        let max = 10;
        assert_eq!(framing(&head(&[]), max), Ok(Framing::Empty));
        assert_eq!(
            framing(&head(&[("content-length", "0")]), max),
            Ok(Framing::Empty)
        );
        assert_eq!(
            framing(&head(&[("content-length", "7")]), max),
            Ok(Framing::Length(7))
        );
        assert_eq!(
            framing(&head(&[("content-length", "11")]), max),
            Err(BodyError::TooLarge)
        );
        let chunked = head(&[("transfer-encoding", "chunked")]);
        assert_eq!(framing(&chunked, max), Ok(Framing::Chunked));
    }

    #[test]
    fn preflight_echoes_only_plain_header_names() {
        let h = head(&[(
            "access-control-request-headers",
            "x-tinode-apikey, content-type",
        )]);
        assert!(preflight_headers(&h).contains("Allow-Headers: x-tinode-apikey, content-type\r\n"));
        let bad = head(&[("access-control-request-headers", "x\r\nSet-Cookie: a")]);
        assert!(preflight_headers(&bad).contains("X-Tinode-APIKey"));
    }
}
