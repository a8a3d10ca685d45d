//! WebSocket framing (RFC 6455) for the server side, without I/O: a reader that turns the bytes
//! a connection has read into client events, and the encoder for server frames.
//!
//! Built so that an idle connection holds no buffer: the connection task reads into a
//! shard-wide buffer and hands those bytes to [`Reader::next`], which parses (and unmasks) frames
//! in place; only bytes of a frame that is not complete yet, and the fragments of a message
//! being assembled, are copied into the reader's own buffers, which are released as soon as they
//! are consumed ([`Reader::release`]).
//!
//! The checks are those tungstenite made (the server used it before): client frames must be
//! masked; reserved bits must be clear; control frames must be final and at most 125 bytes;
//! continuation frames only inside a fragmented message and data frames only outside one; a
//! frame or a message over the size limit fails as soon as its header says so; text must be
//! UTF-8; a close frame's reason must be UTF-8. Any violation is an [`Error`]: the caller drops
//! the connection, as it did when tungstenite reported one.

/// Opcodes.
pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Why the client's bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A frame or a message longer than the limit.
    TooLarge,
    /// A violation of RFC 6455 (the text says which).
    Protocol(&'static str),
    /// A text message or close reason that is not UTF-8.
    Utf8,
}

/// What a client sent, borrowed from the bytes just read or from the reader's buffers.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text or binary message.
    Message(&'a [u8]),
    /// A ping with its payload (to be echoed in a pong).
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// A close frame, with the payload of the close frame to answer it with (RFC 6455 §5.5.1:
    /// the client's code and reason echoed, `1002 Protocol violation` for a code that must not
    /// be sent, nothing for an empty close).
    Close(CloseReply<'a>),
}

/// The payload of the close frame that answers a client's close.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseReply<'a> {
    /// An empty close frame (the client sent no code).
    Empty,
    /// The client's own payload (code and reason).
    Echo(&'a [u8]),
    /// `1002` "Protocol violation" (the client's code is not one an endpoint may send).
    ProtocolViolation,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// Header length in bytes.
    head: usize,
    /// Payload length in bytes.
    len: u64,
}

/// Parses a frame header from the start of `b`; `None` while incomplete.
fn parse_header(b: &[u8]) -> Result<Option<Header>, Error> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x70 != 0 {
        return Err(Error::Protocol("reserved bits are set"));
    }
    let fin = b[0] & 0x80 != 0;
    let opcode = b[0] & 0x0F;
    let masked = b[1] & 0x80 != 0;
    let (len, mut head) = match b[1] & 0x7F {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([b[2], b[3]])), 4)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let mut l = [0u8; 8];
            l.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(l), 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        if b.len() < head + 4 {
            return Ok(None);
        }
        let mut m = [0u8; 4];
        m.copy_from_slice(&b[head..head + 4]);
        head += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        head,
        len,
    }))
}

/// XORs `data` with the mask, as both directions of masking do.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let m = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ m;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// Whether an endpoint may send this close code (tungstenite's `CloseCode::is_allowed`).
fn close_code_allowed(code: u16) -> bool {
    !matches!(code, 0..=999 | 1004..=1006 | 1015..=2999) && code < 5000
}

/// One connection's incoming side: the unparsed tail of earlier reads and the fragmented message
/// being assembled. Both are empty and unallocated between messages. Every WebSocket session
/// holds its reader for its whole life, so it is kept small (W1): the carried bytes and the
/// rare fragmented message are boxed while there are any, and the size limit is a `u32`.
#[derive(Debug, Default)]
pub struct Reader {
    /// Bytes of frames not yet complete (or not yet handed out); `None` while there are none.
    carry: Option<Box<Carry>>,
    /// The fragments so far of a fragmented message; `in_message` while one is open.
    // A box around the vector on purpose: 8 bytes inline where the vector takes 24.
    #[allow(clippy::box_collection)]
    msg: Option<Box<Vec<u8>>>,
    in_message: bool,
    msg_text: bool,
    /// The largest frame or message taken, in bytes (4 GiB at most).
    max: u32,
}

/// Carried bytes: those of `buf` from `start` on.
#[derive(Debug, Default)]
struct Carry {
    buf: Vec<u8>,
    start: usize,
}

/// Where a complete frame's payload lies.
#[derive(Clone, Copy)]
enum At {
    Input,
    Carry,
}

impl Reader {
    /// A reader refusing frames and messages larger than `max` bytes (4 GiB at most).
    pub fn new(max: usize) -> Reader {
        Reader {
            max: u32::try_from(max).unwrap_or(u32::MAX),
            ..Reader::default()
        }
    }

    /// Takes bytes read before the reader existed (after the HTTP request head) as carried.
    pub fn preload(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.carry = Some(Box::new(Carry {
                buf: bytes,
                start: 0,
            }));
        }
    }

    /// Whether bytes from an earlier read wait to be parsed (then call `next` with no input
    /// before reading more).
    pub fn has_carry(&self) -> bool {
        self.carry.as_ref().is_some_and(|c| c.start < c.buf.len())
    }

    /// Whether the last message handed out was a text message (else binary).
    pub fn last_was_text(&self) -> bool {
        self.msg_text
    }

    /// Bytes this reader holds allocated right now.
    pub fn held(&self) -> usize {
        self.carry.as_ref().map_or(0, |c| c.buf.capacity())
            + self.msg.as_ref().map_or(0, |m| m.capacity())
    }

    /// Frees what the last event borrowed once nothing is left: the carried bytes when all are
    /// consumed, and a delivered message.
    /// `next` calls it first; call it after handling an event so that nothing stays allocated
    /// while the connection is idle.
    pub fn release(&mut self) {
        if !self.has_carry() {
            self.carry = None;
        }
        if !self.in_message {
            self.msg = None;
        }
    }

    /// The next event, parsing carried bytes first and then `input` (fresh bytes, unmasked in
    /// place). Every byte of `input` is either consumed or copied into the reader before this
    /// returns, so the caller may reuse `input` afterwards. `Ok(None)`: no complete event yet.
    pub fn next<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Option<Event<'a>>, Error> {
        self.release();
        let mut pos = 0;
        if let Some(c) = self.carry.as_deref_mut().filter(|_| !input.is_empty()) {
            // Once per read, not per frame: drop what earlier events consumed.
            c.buf.drain(..c.start);
            c.start = 0;
            c.buf.extend_from_slice(input);
            pos = input.len();
        }
        loop {
            let at = if self.has_carry() {
                At::Carry
            } else {
                At::Input
            };
            let buf: &[u8] = match (at, self.carry.as_deref()) {
                (At::Carry, Some(c)) => &c.buf[c.start..],
                _ => &input[pos..],
            };
            let Some(h) = parse_header(buf)? else {
                self.stash(&input[pos..], None);
                return Ok(None);
            };
            self.check(&h)?;
            let total = h.head + h.len as usize;
            if buf.len() < total {
                self.stash(&input[pos..], Some(total));
                return Ok(None);
            }
            // The frame is complete: unmask it where it lies.
            let mask = h.mask.expect("checked: client frames are masked");
            let range = match at {
                At::Carry => {
                    let c = self.carry.get_or_insert_with(Box::default);
                    let r = c.start + h.head..c.start + total;
                    c.start += total;
                    unmask(&mut c.buf[r.clone()], mask);
                    r
                }
                At::Input => {
                    let r = pos + h.head..pos + total;
                    pos += total;
                    unmask(&mut input[r.clone()], mask);
                    if pos < input.len() {
                        // Keep the rest; the event may borrow `input` until the next call.
                        let c = self.carry.get_or_insert_with(Box::default);
                        c.buf.extend_from_slice(&input[pos..]);
                        pos = input.len();
                    }
                    r
                }
            };
            let whole = matches!(h.opcode, OP_TEXT | OP_BINARY) && h.fin;
            if whole || matches!(h.opcode, OP_PING | OP_PONG | OP_CLOSE) {
                let payload: &[u8] = match (at, self.carry.as_deref()) {
                    (At::Carry, Some(c)) => &c.buf[range],
                    _ => &input[range],
                };
                return Ok(Some(match h.opcode {
                    OP_PING => Event::Ping(payload),
                    OP_PONG => Event::Pong,
                    OP_CLOSE => Event::Close(close_reply(payload)?),
                    op => {
                        // A whole message in one frame: handed out where it lies, no copy.
                        self.msg_text = op == OP_TEXT;
                        if op == OP_TEXT {
                            std::str::from_utf8(payload).map_err(|_| Error::Utf8)?;
                        }
                        Event::Message(payload)
                    }
                }));
            }
            // A fragment: it joins the open message.
            if h.opcode != OP_CONT {
                self.in_message = true;
                self.msg_text = h.opcode == OP_TEXT;
            }
            let msg = self.msg.get_or_insert_with(Box::default);
            match (at, self.carry.as_deref()) {
                (At::Carry, Some(c)) => msg.extend_from_slice(&c.buf[range]),
                _ => msg.extend_from_slice(&input[range]),
            }
            if !h.fin {
                continue;
            }
            self.in_message = false;
            let msg: &[u8] = self.msg.as_deref().map_or(&[], Vec::as_slice);
            if self.msg_text {
                std::str::from_utf8(msg).map_err(|_| Error::Utf8)?;
            }
            return Ok(Some(Event::Message(msg)));
        }
    }

    /// Header checks that need no payload.
    fn check(&self, h: &Header) -> Result<(), Error> {
        if h.mask.is_none() {
            return Err(Error::Protocol("unmasked frame from client"));
        }
        match h.opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !h.fin {
                    return Err(Error::Protocol("fragmented control frame"));
                }
                if h.len > 125 {
                    return Err(Error::Protocol("control frame too big"));
                }
            }
            OP_CONT => {
                if !self.in_message {
                    return Err(Error::Protocol("continuation outside a message"));
                }
                let so_far = self.msg.as_ref().map_or(0, |m| m.len());
                if h.len > (self.max as usize).saturating_sub(so_far) as u64 {
                    return Err(Error::TooLarge);
                }
            }
            OP_TEXT | OP_BINARY => {
                if self.in_message {
                    return Err(Error::Protocol("data frame inside a fragmented message"));
                }
            }
            _ => return Err(Error::Protocol("unknown opcode")),
        }
        if h.len > u64::from(self.max) {
            return Err(Error::TooLarge);
        }
        Ok(())
    }

    /// Keeps `rest` (the unparsed tail of the input) for the next read; `frame_len`, once the
    /// header is known, reserves room for the whole frame at once.
    fn stash(&mut self, rest: &[u8], frame_len: Option<usize>) {
        if self.carry.is_none() && rest.is_empty() {
            return;
        }
        let c = self.carry.get_or_insert_with(Box::default);
        if let Some(total) = frame_len {
            let need = c.start + total;
            if need > c.buf.len() {
                c.buf.reserve_exact(need - c.buf.len());
            }
        }
        c.buf.extend_from_slice(rest);
    }
}

/// The answer to a client's close frame (its payload checked).
fn close_reply(payload: &[u8]) -> Result<CloseReply<'_>, Error> {
    match payload.len() {
        0 => Ok(CloseReply::Empty),
        1 => Err(Error::Protocol("close frame with a one-byte payload")),
        _ => {
            std::str::from_utf8(&payload[2..]).map_err(|_| Error::Utf8)?;
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            Ok(if close_code_allowed(code) {
                CloseReply::Echo(payload)
            } else {
                CloseReply::ProtocolViolation
            })
        }
    }
}

/// Appends one final, unmasked server frame (`opcode`, `payload`) to `out`.
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// The payload of the close frame answering a client's close.
pub fn close_payload(reply: &CloseReply<'_>) -> Vec<u8> {
    match reply {
        CloseReply::Empty => Vec::new(),
        CloseReply::Echo(p) => p.to_vec(),
        CloseReply::ProtocolViolation => {
            let mut p = 1002u16.to_be_bytes().to_vec();
            p.extend_from_slice(b"Protocol violation");
            p
        }
    }
}

#[cfg(test)]
#[path = "wsframe_tests.rs"]
mod tests;
