//! NATS text protocol over WebSocket (nats-server's `websocket {}` listener): `CONNECT`,
//! `SUB`, `PUB`, `PING`/`PONG` out; `INFO`, `MSG`, `PING`, `PONG`, `+OK`, `-ERR` in. Server
//! frames may hold several protocol messages or part of one, so the parser buffers.

/// `CONNECT` (no verbose acks, echo on so a client can receive its own subject) and a `PING`
/// whose `PONG` confirms the server processed it.
pub fn connect() -> Vec<u8> {
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"echo\":true,\"lang\":\"rust\",\"version\":\"0.1\",\"name\":\"coretalk-load\",\"headers\":false,\"no_responders\":false}\r\nPING\r\n".to_vec()
}

/// `SUB` followed by `PING`, so the `PONG` tells the subscription is in place.
pub fn sub(subject: &str, sid: u64) -> Vec<u8> {
    format!("SUB {subject} {sid}\r\nPING\r\n").into_bytes()
}

pub fn publish(subject: &str, payload: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(subject.len() + payload.len() + 24);
    v.extend_from_slice(format!("PUB {subject} {}\r\n", payload.len()).as_bytes());
    v.extend_from_slice(payload.as_bytes());
    v.extend_from_slice(b"\r\n");
    v
}

pub fn pong() -> Vec<u8> {
    b"PONG\r\n".to_vec()
}

#[derive(Debug, PartialEq, Eq)]
pub enum In<'a> {
    Msg(&'a [u8]),
    Ping,
    Pong,
    Ok,
    Info,
    Err(String),
}

#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    /// Feeds a frame and calls `f` for every complete protocol message.
    pub fn feed(&mut self, data: &[u8], mut f: impl FnMut(In<'_>)) -> Result<(), String> {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line = &rest[..eol];
            let upper: Vec<u8> = line
                .iter()
                .take(5)
                .map(|c| c.to_ascii_uppercase())
                .collect();
            if upper.starts_with(b"MSG ") {
                let text = std::str::from_utf8(line).map_err(|_| "MSG line not UTF-8")?;
                let parts: Vec<&str> = text.split_whitespace().collect();
                let n: usize = parts
                    .last()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("bad MSG line: {text}"))?;
                let start = eol + 2;
                if rest.len() < start + n + 2 {
                    break;
                }
                f(In::Msg(&rest[start..start + n]));
                pos += start + n + 2;
                continue;
            }
            let ev = if upper.starts_with(b"PING") {
                In::Ping
            } else if upper.starts_with(b"PONG") {
                In::Pong
            } else if upper.starts_with(b"+OK") {
                In::Ok
            } else if upper.starts_with(b"INFO") {
                In::Info
            } else if upper.starts_with(b"-ERR") {
                In::Err(String::from_utf8_lossy(line).into_owned())
            } else {
                return Err(format!(
                    "unknown NATS line: {}",
                    String::from_utf8_lossy(line)
                ));
            };
            f(ev);
            pos += eol + 2;
        }
        self.buf.drain(..pos);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_and_joined_messages() {
        let mut p = Parser::default();
        let mut got = Vec::new();
        p.feed(b"INFO {}\r\nMSG a.b 1 5\r\nhel", |e| {
            got.push(format!("{e:?}"))
        })
        .unwrap();
        p.feed(b"lo\r\nPING\r\nMSG x 2 0\r\n\r\n", |e| {
            got.push(format!("{e:?}"))
        })
        .unwrap();
        assert_eq!(
            got,
            ["Info", "Msg([104, 101, 108, 108, 111])", "Ping", "Msg([])"]
        );
        assert_eq!(publish("s", "hey"), b"PUB s 3\r\nhey\r\n");
    }
}
