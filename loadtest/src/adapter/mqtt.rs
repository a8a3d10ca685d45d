//! MQTT 3.1.1 over WebSocket (mosquitto's `protocol websockets` listener, subprotocol
//! `mqtt`, binary frames): CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH at QoS 0, PINGREQ.
//! A WebSocket frame may carry several packets or part of one, so the parser buffers.

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 5);
    v.push(first);
    varint(body.len(), &mut v);
    v.extend_from_slice(body);
    v
}

/// CONNECT with a clean session. Keep-alive 0 (off): idle sessions need no client pings,
/// which matches how the harness treats the other targets (their pings are answered, not sent).
pub fn connect(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.push(4); // protocol level 3.1.1
    body.push(0x02); // clean session
    body.extend_from_slice(&0u16.to_be_bytes()); // keep-alive off
    string(client_id.as_bytes(), &mut body);
    packet(0x10, &body)
}

pub fn subscribe(packet_id: u16, topic: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&packet_id.to_be_bytes());
    string(topic.as_bytes(), &mut body);
    body.push(0); // QoS 0
    packet(0x82, &body)
}

pub fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 2);
    string(topic.as_bytes(), &mut body);
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

#[derive(Debug, PartialEq, Eq)]
pub enum In<'a> {
    ConnAck(u8),
    SubAck(u16, u8),
    Publish(&'a [u8]),
    PingResp,
    Other(u8),
}

#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    pub fn feed(&mut self, data: &[u8], mut f: impl FnMut(In<'_>)) -> Result<(), String> {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            if rest.len() < 2 {
                break;
            }
            let (mut len, mut mult, mut i) = (0usize, 1usize, 1usize);
            let complete_len = loop {
                let Some(b) = rest.get(i) else {
                    break false;
                };
                len += (*b & 0x7f) as usize * mult;
                mult *= 128;
                i += 1;
                if b & 0x80 == 0 {
                    break true;
                }
                if i > 4 {
                    return Err("bad MQTT remaining length".into());
                }
            };
            if !complete_len || rest.len() < i + len {
                break;
            }
            let kind = rest[0] >> 4;
            let qos = (rest[0] >> 1) & 3;
            let body = &rest[i..i + len];
            match kind {
                2 => f(In::ConnAck(body.get(1).copied().unwrap_or(255))),
                9 => {
                    let pid = u16::from_be_bytes([body[0], body[1]]);
                    f(In::SubAck(pid, body.get(2).copied().unwrap_or(0x80)))
                }
                3 => {
                    if body.len() < 2 {
                        return Err("short PUBLISH".into());
                    }
                    let tl = u16::from_be_bytes([body[0], body[1]]) as usize;
                    let mut off = 2 + tl;
                    if qos > 0 {
                        off += 2;
                    }
                    if off > body.len() {
                        return Err("bad PUBLISH".into());
                    }
                    f(In::Publish(&body[off..]))
                }
                13 => f(In::PingResp),
                k => f(In::Other(k)),
            }
            pos += i + len;
        }
        self.buf.drain(..pos);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_parses_publish() {
        let big = vec![b'x'; 300];
        let p = publish("a/b", &big);
        assert_eq!(p[0], 0x30);
        let mut parser = Parser::default();
        let mut n = 0;
        parser.feed(&p[..100], |_| n += 1).unwrap();
        assert_eq!(n, 0);
        parser
            .feed(&p[100..], |e| {
                assert_eq!(e, In::Publish(&big[..]));
                n += 1
            })
            .unwrap();
        assert_eq!(n, 1);
        let mut got = Vec::new();
        parser
            .feed(&[0x20, 2, 0, 0, 0x90, 3, 0, 1, 0], |e| {
                got.push(format!("{e:?}"))
            })
            .unwrap();
        assert_eq!(got, ["ConnAck(0)", "SubAck(1, 0)"]);
    }
}
