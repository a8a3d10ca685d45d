//! `coretalk-load ws-sol` (hidden): the WebSocket speed of light for W1–W4. The smallest
//! program that moves the same WebSocket frames over the same sockets as a Tinode server and
//! does nothing else; prints `ws-sol listening on HOST:PORT`.
//!
//! Shape: one thread, one process, a level-triggered epoll loop over non-blocking sockets
//! (libc), the HTTP upgrade and the WebSocket framing written by hand. Per readiness round it
//! reads at most 64 KiB from each readable socket (into one shared buffer), handles every
//! complete frame in place (client frames are unmasked where they lie), appends what it sends
//! to per-connection output buffers, and then makes one `write` per connection with output.
//! A partial write keeps the rest and waits for EPOLLOUT. Buffers keep their capacity: after
//! warm-up nothing is allocated per message.
//!
//! What it does, exactly:
//! - Upgrade: `GET /v0/channels…` with a `Sec-WebSocket-Key` gets `101`; any other request
//!   (`/echo`, long polling, no key) gets `404` and is closed. The API key is not checked.
//! - Frames: text/binary frames with FIN are Tinode messages; ping → pong; close → close
//!   echoed and the socket closed once written. Unmasked, fragmented or > 1 MiB client frames
//!   close the connection.
//! - `{hi}` → `ctrl 201`. `{acc}` → a new user (a counter; no password, no store) and
//!   `ctrl 200` with `params.user` and `params.token` (the token is the user id);
//!   `"login":true` logs the session in. `{login}` with a token → `ctrl 200` with
//!   `params.user` (401 for a token it never issued; other schemes are not handled).
//! - `{sub}`: `me` → 200; `new…` → a new group `grp<11 digits>`, joined; `grp…` → joins that
//!   group; `usr<peer>` → joins the p2p topic of the two users (found or made in one map);
//!   404 otherwise. `{leave}` detaches the session. There are no permissions, no `{pres}`,
//!   `{meta}` or history, and no persistence of anything.
//! - `{pub}` on a topic the session joined: the topic's sequence number is bumped, ONE
//!   `{data}` frame is prepared (`topic`, `from`, `ts`, `seq`, `content`: coretalk's fields
//!   and field widths, ids being 14 characters like Tinode's; `ts` is a constant, no clock is
//!   read) and appended to every other session of the topic (the publisher never gets its own
//!   message: the harness always sends `noecho`), and the publisher gets `ctrl 202` with the
//!   pub's id and `params.seq`, as coretalk answers. The content must be a JSON string (the
//!   harness's stamp); it is copied verbatim.
//! - Fields are found by substring (`"id":"`, `"topic":"`, `"secret":"`, `"content":"`, first
//!   occurrence): the harness's frames, not a JSON parser. Output buffers are unbounded (no
//!   slow-consumer policy). Running out of file descriptors is not handled beyond retrying.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::{IntoRawFd, RawFd};

use anyhow::{Context, Result};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

mod wire;
use wire::{
    digits, find, frame_head, header, named, parse_name, push_frame, string_at, unmask, usr, Parts,
};

/// Bytes read from one socket per readiness round.
const READ_CHUNK: usize = 64 * 1024;
/// A request head, a client frame or unconsumed input larger than this closes the connection.
const MAX_IN: usize = 1 << 20;
/// The epoll token of the listener.
const LISTENER: u64 = u64::MAX;
/// The `ts` of every frame: the width of coretalk's (milliseconds), without reading a clock.
const TS: &[u8] = b"2026-01-01T00:00:00.123Z";
/// Users and groups are named `usr`/`grp` + 11 digits: 14 bytes, as Tinode's ids.
const NAME: usize = 14;
type Name = [u8; NAME];

/// Binds the listener (backlog 4096), prints the banner and serves until killed.
pub fn main(listen: &str) -> Result<()> {
    raise_nofile();
    let (fd, addr) = bind(listen)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ws-sol listening on {addr}")?;
        out.flush()?;
    }
    serve(fd)
}

/// A non-blocking listening socket on `listen` and its address.
pub fn bind(listen: &str) -> Result<(RawFd, SocketAddr)> {
    let addr = crate::net::resolve(listen)?;
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())
        .with_context(|| format!("bind {addr}"))?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    let local = s
        .local_addr()?
        .as_socket()
        .context("listener has no IP address")?;
    Ok((s.into_raw_fd(), local))
}

/// Runs the loop on a listening socket from [`bind`]; returns only on an epoll error.
pub fn serve(listener: RawFd) -> Result<()> {
    Sol::new(listener)?.run()
}

/// Open files up to the hard limit (W1 holds thousands of sessions).
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on a zeroed rlimit we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[derive(Default)]
struct Conn {
    /// -1: a free slot.
    fd: RawFd,
    /// Bumped on close: events and flushes for an older connection in this slot are ignored.
    gen: u32,
    /// Upgraded to WebSocket.
    open: bool,
    /// Close once the output is written (close frame, refused upgrade).
    closing: bool,
    /// In this round's flush list.
    dirty: bool,
    /// EPOLLOUT registered (a partial write is pending).
    want_out: bool,
    /// Logged-in user (0: none).
    user: u32,
    /// Input carried to the next read (a partial frame or request head).
    rbuf: Vec<u8>,
    out: Vec<u8>,
    /// Topics this session joined, by the name it uses for them.
    subs: Vec<(Name, u32)>,
}

struct Topic {
    name: Name,
    p2p: bool,
    seq: u64,
    /// Connection slots of the sessions attached.
    members: Vec<u32>,
}

struct Sol {
    ep: RawFd,
    listener: RawFd,
    conns: Vec<Conn>,
    free: Vec<usize>,
    topics: Vec<Topic>,
    /// The p2p topic of two users (lower id first).
    p2p: HashMap<(u32, u32), u32>,
    users: u32,
    /// Connections with output this round.
    dirty: Vec<u32>,
    /// The `{data}` frame being delivered.
    frame: Vec<u8>,
}

fn token(c: usize, gen: u32) -> u64 {
    (u64::from(gen) << 32) | c as u64
}

impl Sol {
    fn new(listener: RawFd) -> Result<Sol> {
        // SAFETY: plain syscall.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(std::io::Error::last_os_error()).context("epoll_create1");
        }
        let s = Sol {
            ep,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            topics: Vec::new(),
            p2p: HashMap::new(),
            users: 0,
            dirty: Vec::new(),
            frame: Vec::with_capacity(4096),
        };
        if s.ctl(
            libc::EPOLL_CTL_ADD,
            listener,
            libc::EPOLLIN as u32,
            LISTENER,
        ) < 0
        {
            return Err(std::io::Error::last_os_error()).context("epoll_ctl listener");
        }
        Ok(s)
    }

    fn ctl(&self, op: i32, fd: RawFd, events: u32, tok: u64) -> i32 {
        let mut ev = libc::epoll_event { events, u64: tok };
        // SAFETY: epoll_ctl with a live epoll_event.
        unsafe { libc::epoll_ctl(self.ep, op, fd, &mut ev) }
    }

    fn live(&self, c: usize, gen: u32) -> bool {
        let k = &self.conns[c];
        k.fd >= 0 && k.gen == gen
    }

    fn run(&mut self) -> Result<()> {
        let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        let mut scratch = vec![0u8; READ_CHUNK];
        loop {
            // SAFETY: evs has evs.len() slots.
            let n = unsafe { libc::epoll_wait(self.ep, evs.as_mut_ptr(), evs.len() as i32, -1) };
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                return Err(std::io::Error::last_os_error()).context("epoll_wait");
            }
            for ev in &evs[..n as usize] {
                let (flags, tok) = (ev.events, ev.u64);
                if tok == LISTENER {
                    self.accept();
                    continue;
                }
                let (c, gen) = ((tok & 0xffff_ffff) as usize, (tok >> 32) as u32);
                if !self.live(c, gen) {
                    continue;
                }
                if flags & libc::EPOLLOUT as u32 != 0 {
                    self.flush(c);
                }
                let readable = (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32;
                if flags & readable != 0 && self.live(c, gen) {
                    self.read(c, &mut scratch);
                }
            }
            // One write per connection with output.
            let mut dirty = std::mem::take(&mut self.dirty);
            for &c in &dirty {
                let c = c as usize;
                if self.conns[c].dirty {
                    self.conns[c].dirty = false;
                    self.flush(c);
                }
            }
            dirty.clear();
            self.dirty = dirty;
        }
    }

    fn accept(&mut self) {
        loop {
            // SAFETY: accept4 on our listener; no address wanted.
            let fd = unsafe {
                libc::accept4(
                    self.listener,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return; // EAGAIN, or out of descriptors: the listener stays readable
            }
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on the socket just accepted, with a live c_int.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            let c = match self.free.pop() {
                Some(c) => c,
                None => {
                    self.conns.push(Conn {
                        fd: -1,
                        ..Default::default()
                    });
                    self.conns.len() - 1
                }
            };
            self.conns[c].fd = fd;
            let gen = self.conns[c].gen;
            if self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, token(c, gen)) < 0 {
                self.close(c);
            }
        }
    }

    fn close(&mut self, c: usize) {
        let Sol {
            conns,
            topics,
            free,
            ..
        } = self;
        let k = &mut conns[c];
        if k.fd < 0 {
            return;
        }
        // SAFETY: our descriptor; closing it also removes it from the epoll set.
        unsafe { libc::close(k.fd) };
        for (_, t) in k.subs.drain(..) {
            topics[t as usize].members.retain(|&m| m as usize != c);
        }
        *k = Conn {
            fd: -1,
            gen: k.gen.wrapping_add(1),
            ..Default::default()
        };
        free.push(c);
    }

    fn touch(&mut self, c: usize) {
        if !self.conns[c].dirty {
            self.conns[c].dirty = true;
            self.dirty.push(c as u32);
        }
    }

    /// Writes what `c` has pending (once), then adjusts its EPOLLOUT interest.
    fn flush(&mut self, c: usize) {
        let k = &mut self.conns[c];
        if k.fd < 0 {
            return;
        }
        if !k.out.is_empty() {
            // SAFETY: write from a live buffer of out.len() bytes.
            let n = unsafe { libc::write(k.fd, k.out.as_ptr().cast(), k.out.len()) };
            if n < 0 {
                let e = errno();
                if e != libc::EAGAIN && e != libc::EINTR {
                    self.close(c);
                    return;
                }
            } else if n as usize == k.out.len() {
                k.out.clear();
            } else {
                k.out.drain(..n as usize);
            }
        }
        let k = &mut self.conns[c];
        let pending = !k.out.is_empty();
        if !pending && k.closing {
            self.close(c);
            return;
        }
        if pending != k.want_out {
            k.want_out = pending;
            let (fd, tok) = (k.fd, token(c, k.gen));
            let ev = libc::EPOLLIN as u32 | if pending { libc::EPOLLOUT as u32 } else { 0 };
            self.ctl(libc::EPOLL_CTL_MOD, fd, ev, tok);
        }
    }

    /// One read; handles every complete request/frame; keeps the rest for the next read.
    fn read(&mut self, c: usize, scratch: &mut [u8]) {
        let (fd, gen) = (self.conns[c].fd, self.conns[c].gen);
        // SAFETY: read into a live buffer of scratch.len() bytes.
        let n = unsafe { libc::read(fd, scratch.as_mut_ptr().cast(), scratch.len()) };
        if n == 0 {
            self.close(c);
            return;
        }
        if n < 0 {
            let e = errno();
            if e != libc::EAGAIN && e != libc::EINTR {
                self.close(c);
            }
            return;
        }
        let n = n as usize;
        if self.conns[c].closing {
            return;
        }
        let mut carry = std::mem::take(&mut self.conns[c].rbuf);
        if carry.is_empty() {
            let used = self.process(c, &mut scratch[..n]);
            if self.live(c, gen) {
                carry.extend_from_slice(&scratch[used..n]);
            }
        } else {
            carry.extend_from_slice(&scratch[..n]);
            let used = self.process(c, &mut carry);
            carry.drain(..used);
        }
        if self.live(c, gen) {
            if carry.len() > MAX_IN {
                self.close(c);
            } else {
                self.conns[c].rbuf = carry;
            }
        }
    }

    /// Handles the complete input at the front of `data`; returns the bytes consumed.
    fn process(&mut self, c: usize, data: &mut [u8]) -> usize {
        let gen = self.conns[c].gen;
        let mut off = 0;
        if !self.conns[c].open {
            let Some(end) = find(data, b"\r\n\r\n") else {
                return 0;
            };
            self.upgrade(c, &data[..end + 4]);
            off = end + 4;
        }
        while self.live(c, gen) && !self.conns[c].closing {
            let Some(h) = frame_head(&data[off..]) else {
                break;
            };
            if !h.masked || h.len > MAX_IN || (!h.fin && h.op < 8) || h.op == 0 {
                self.close(c);
                break;
            }
            if data.len() - off < h.hdr + h.len {
                break;
            }
            let (body, end) = (off + h.hdr, off + h.hdr + h.len);
            let mask = [
                data[body - 4],
                data[body - 3],
                data[body - 2],
                data[body - 1],
            ];
            let payload = &mut data[body..end];
            unmask(payload, mask);
            off = end;
            match h.op {
                1 | 2 => self.on_message(c, payload),
                8 => {
                    let code = &payload[..payload.len().min(2)];
                    let k = &mut self.conns[c];
                    k.out.extend_from_slice(&[0x88, code.len() as u8]);
                    k.out.extend_from_slice(code);
                    k.closing = true;
                    self.touch(c);
                }
                9 if payload.len() <= 125 => {
                    let k = &mut self.conns[c];
                    k.out.extend_from_slice(&[0x8a, payload.len() as u8]);
                    k.out.extend_from_slice(payload);
                    self.touch(c);
                }
                10 => {}
                _ => self.close(c),
            }
        }
        off
    }

    /// Answers the HTTP request head: 101 for a Tinode WebSocket, 404 and close otherwise.
    fn upgrade(&mut self, c: usize, head: &[u8]) {
        let tinode =
            head.starts_with(b"GET /v0/channels") && !head.starts_with(b"GET /v0/channels/lp");
        let k = &mut self.conns[c];
        match header(head, b"sec-websocket-key").filter(|_| tinode) {
            Some(key) => {
                k.out.extend_from_slice(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                      Connection: Upgrade\r\nSec-WebSocket-Accept: ",
                );
                k.out.extend_from_slice(derive_accept_key(key).as_bytes());
                k.out.extend_from_slice(b"\r\n\r\n");
                k.open = true;
            }
            None => {
                k.out.extend_from_slice(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                k.closing = true;
            }
        }
        self.touch(c);
    }

    /// Appends a `{ctrl}` for `c`.
    fn ctrl(
        &mut self,
        c: usize,
        id: &[u8],
        topic: Option<&[u8]>,
        code: u16,
        text: &[u8],
        params: &[&[u8]],
    ) {
        let mut num = [0u8; 20];
        let mut p = Parts::default();
        p.push(b"{\"ctrl\":{\"id\":\"");
        p.push(id);
        p.push(b"\"");
        if let Some(t) = topic {
            p.push(b",\"topic\":\"");
            p.push(t);
            p.push(b"\"");
        }
        if !params.is_empty() {
            p.push(b",\"params\":{");
            for x in params {
                p.push(x);
            }
            p.push(b"}");
        }
        p.push(b",\"code\":");
        p.push(digits(u64::from(code), &mut num));
        p.push(b",\"text\":\"");
        p.push(text);
        p.push(b"\",\"ts\":\"");
        p.push(TS);
        p.push(b"\"}}");
        push_frame(&mut self.conns[c].out, p.as_slice());
        self.touch(c);
    }

    /// One Tinode client message.
    fn on_message(&mut self, c: usize, m: &[u8]) {
        let id = string_at(m, b"\"id\":\"").unwrap_or(b"");
        let kind = m
            .strip_prefix(b"{\"")
            .and_then(|r| r.split(|&b| b == b'"').next())
            .unwrap_or(b"");
        match kind {
            b"hi" => self.ctrl(
                c,
                id,
                None,
                201,
                b"created",
                &[b"\"ver\":\"0.25\",\"build\":\"ws-sol\""],
            ),
            b"acc" => {
                self.users += 1;
                let u = usr(self.users);
                if find(m, b"\"login\":true").is_some() {
                    self.conns[c].user = self.users;
                }
                let params: [&[u8]; 5] = [b"\"user\":\"", &u, b"\",\"token\":\"", &u, b"\""];
                self.ctrl(c, id, None, 200, b"ok", &params);
            }
            b"login" => match string_at(m, b"\"secret\":\"").and_then(|s| parse_name(s, b"usr")) {
                Some(n) if n >= 1 && n <= self.users => {
                    self.conns[c].user = n;
                    let u = usr(n);
                    let params: [&[u8]; 3] = [b"\"user\":\"", &u, b"\",\"authlvl\":\"auth\""];
                    self.ctrl(c, id, None, 200, b"ok", &params);
                }
                _ => self.ctrl(c, id, None, 401, b"authentication failed", &[]),
            },
            b"sub" => self.sub(c, id, string_at(m, b"\"topic\":\"").unwrap_or(b"")),
            b"leave" => {
                let topic = string_at(m, b"\"topic\":\"").unwrap_or(b"");
                let Sol { conns, topics, .. } = self;
                let subs = &mut conns[c].subs;
                if let Some(i) = subs.iter().position(|(n, _)| n[..] == *topic) {
                    let (_, t) = subs.swap_remove(i);
                    topics[t as usize].members.retain(|&x| x as usize != c);
                }
                self.ctrl(c, id, Some(topic), 200, b"ok", &[]);
            }
            b"pub" => self.publish(c, id, m),
            _ => self.ctrl(c, id, None, 501, b"not implemented", &[]),
        }
    }

    fn join(&mut self, c: usize, name: Name, t: u32) {
        let k = &mut self.conns[c];
        if !k.subs.iter().any(|(n, _)| *n == name) {
            k.subs.push((name, t));
            self.topics[t as usize].members.push(c as u32);
        }
    }

    fn new_topic(&mut self, p2p: bool) -> u32 {
        let t = self.topics.len() as u32;
        let name = named(if p2p { b"p2p" } else { b"grp" }, t);
        self.topics.push(Topic {
            name,
            p2p,
            seq: 0,
            members: Vec::new(),
        });
        t
    }

    fn sub(&mut self, c: usize, id: &[u8], topic: &[u8]) {
        let me = self.conns[c].user;
        if me == 0 {
            return self.ctrl(c, id, Some(topic), 401, b"authentication required", &[]);
        }
        if topic == b"me" {
            return self.ctrl(c, id, Some(topic), 200, b"ok", &[]);
        }
        let (name, t) = if topic.starts_with(b"new") {
            let t = self.new_topic(false);
            (self.topics[t as usize].name, t)
        } else if let Some(t) = parse_name(topic, b"grp")
            .filter(|&t| (t as usize) < self.topics.len() && !self.topics[t as usize].p2p)
        {
            (named(b"grp", t), t)
        } else if let Some(peer) = parse_name(topic, b"usr").filter(|&u| u >= 1 && u <= self.users)
        {
            let key = (me.min(peer), me.max(peer));
            let t = match self.p2p.get(&key) {
                Some(&t) => t,
                None => {
                    let t = self.new_topic(true);
                    self.p2p.insert(key, t);
                    t
                }
            };
            (usr(peer), t)
        } else {
            return self.ctrl(c, id, Some(topic), 404, b"topic not found", &[]);
        };
        self.join(c, name, t);
        self.ctrl(c, id, Some(&name), 200, b"ok", &[]);
    }

    /// `{pub}`: one prepared `{data}` frame to every other session of the topic, `ctrl 202`
    /// to the publisher.
    fn publish(&mut self, c: usize, id: &[u8], m: &[u8]) {
        let topic = string_at(m, b"\"topic\":\"").unwrap_or(b"");
        let Some(content) = string_at(m, b"\"content\":\"") else {
            return self.ctrl(c, id, Some(topic), 400, b"malformed", &[]);
        };
        let Some(&(_, t)) = self.conns[c].subs.iter().find(|(n, _)| n[..] == *topic) else {
            return self.ctrl(c, id, Some(topic), 409, b"must attach first", &[]);
        };
        let Sol {
            conns,
            topics,
            dirty,
            frame,
            ..
        } = self;
        let tp = &mut topics[t as usize];
        tp.seq += 1;
        let mut num = [0u8; 20];
        let seq = digits(tp.seq, &mut num);
        let from = usr(conns[c].user);
        // A p2p topic is named after the other user: the receiver sees the sender's id.
        let tname: &[u8] = if tp.p2p { &from } else { &tp.name };
        frame.clear();
        push_frame(
            frame,
            &[
                b"{\"data\":{\"topic\":\"",
                tname,
                b"\",\"from\":\"",
                &from,
                b"\",\"ts\":\"",
                TS,
                b"\",\"seq\":",
                seq,
                b",\"content\":\"",
                content,
                b"\"}}",
            ],
        );
        for &x in &tp.members {
            let x = x as usize;
            if x == c {
                continue;
            }
            let k = &mut conns[x];
            k.out.extend_from_slice(frame);
            if !k.dirty {
                k.dirty = true;
                dirty.push(x as u32);
            }
        }
        self.ctrl(c, id, Some(topic), 202, b"accepted", &[b"\"seq\":", seq]);
    }
}

#[cfg(test)]
mod tests;
