//! WebSocket sessions at `/v0/channels`: the upgrade handshake, then one task per connection
//! that reads client frames into the shard and writes everything queued on the session's
//! outbox in one write, with server pings and the pong deadline.
//!
//! Framing is `wsframe`'s; the socket is glommio's. An idle connection holds no buffer: its
//! task waits on the socket's readiness, reads into the shard's [`Scratch`] (shared by every
//! connection of the shard, borrowed only inside one synchronous poll) and hands the bytes to
//! its [`wsframe::Reader`], which copies only what is left of an incomplete frame. Writes are
//! encoded into the shard's write buffer and sent at once; only a write the socket cannot take
//! whole is copied into the connection's own buffer until it drains. Frames the shard queues
//! are written by the shard's writer ([`wsout`](super::wsout)) unless `ws.shard_writer` is off;
//! the task writes its control frames, and whatever the writer hands back to it. Nothing here
//! knows the protocol beyond the network probe `1` → `0`.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::config::Config;
use crate::shard::local::with;
use crate::shard::SessionKind;
use crate::shard::{now, CloseReason, Outbox};
use crate::transport::door::Ticket;
use crate::transport::http::{ctrl_body, respond, switching_protocols, websocket_key, RequestHead};
use crate::transport::tick::{Filing, Wheel};
use crate::transport::wsframe::{
    self, Event as Frame, Reader, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT,
};
use crate::transport::wsout::{Link, Writer};

/// A shared buffer that grew past this (one huge write) is given back after use.
pub(super) const SCRATCH_KEEP: usize = 1 << 20;

/// The buffers every WebSocket connection of one shard shares: each is borrowed only within
/// one synchronous poll, so one set per shard serves all its connections.
pub struct Scratch {
    /// Bytes just read from a socket (`ws.read_buffer` long).
    read: RefCell<Vec<u8>>,
    /// Frames being encoded for one write.
    pub(super) write: RefCell<Vec<u8>>,
    /// Frames just drained from an outbox, until encoded.
    pub(super) frames: RefCell<Vec<Bytes>>,
    /// Every connection's ping and pong deadlines (its driver runs beside the acceptor).
    pub wheel: Rc<Wheel>,
    /// The shard's writer of queued frames (its task runs beside the acceptor).
    pub writer: Rc<Writer>,
    /// How long one write may stay blocked before the client counts as gone
    /// (`session.write_stall_ms`; zero: unbounded). Here rather than in each `Conn` (W1).
    stall: Duration,
    /// The ping settings (`ws.*`), read by every connection's loop. Here rather than a
    /// reference to the config in each connection (W1).
    ping: Pings,
}

/// The `ws` ping settings a connection's loop reads.
#[derive(Clone, Copy, Debug)]
pub struct Pings {
    /// `ws.ping_interval_ms`.
    every: Duration,
    /// `ws.pong_timeout_ms`.
    pong_timeout: Duration,
    /// `ws.max_pings_per_sec` (at least 1).
    max_per_sec: u32,
}

impl Pings {
    /// The settings of `cfg`.
    pub fn of(cfg: &Config) -> Pings {
        Pings {
            every: Duration::from_millis(cfg.ws.ping_interval_ms),
            pong_timeout: Duration::from_millis(cfg.ws.pong_timeout_ms),
            max_per_sec: cfg.ws.max_pings_per_sec.max(1),
        }
    }
}

impl Scratch {
    /// One shard's buffers; reads take up to `read_size` bytes at a time; the writer batches
    /// up to `send_batch` sends (`ws.send_batch`); deadlines are kept to `resolution`; a write
    /// blocked for `stall` fails (zero: never).
    pub fn new(
        read_size: usize,
        send_batch: usize,
        resolution: Duration,
        stall: Duration,
    ) -> Scratch {
        Scratch {
            read: RefCell::new(vec![0; read_size]),
            write: RefCell::new(Vec::new()),
            frames: RefCell::new(Vec::new()),
            wheel: Rc::new(Wheel::new(resolution)),
            writer: Rc::new(Writer::new(send_batch)),
            stall,
            ping: Pings::of(&Config::default()),
        }
    }

    /// The same, with `cfg`'s ping settings (the defaults' otherwise).
    pub fn pinging(mut self, cfg: &Config) -> Scratch {
        self.ping = Pings::of(cfg);
        self
    }
}

/// What woke the connection task.
enum Event {
    /// Frames were drained from the outbox into the scratch (`None`), or it closed (`Some`).
    Out(Option<CloseReason>),
    /// Something from the client (a message was already handed to the shard).
    In(In),
    /// Time to ping (and to check the pong deadline).
    Tick,
    /// No more client input is at hand: answer the last ping read.
    Pong,
    /// The shard's writer left bytes the socket did not take.
    Flush,
}

/// A close frame's payload: the status code (RFC 6455 §7.4), then the reason.
fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// The client's side of one wake-up.
enum In {
    /// A message, already handed to the shard.
    Message,
    /// A ping to answer with this payload.
    Ping(Box<[u8]>),
    Pong,
    /// A close frame, to answer with this payload before closing.
    Close(Vec<u8>),
    /// End of stream, a read error or a protocol violation: drop the connection.
    End,
}

/// One connection: the socket, its frame reader and any write the socket has not taken yet.
struct Conn {
    stream: TcpStream,
    reader: Reader,
    /// The shard writer's view of it, whose `tx` holds the unsent bytes of a write that
    /// blocked (empty, unallocated, otherwise).
    link: Rc<Link>,
    scratch: Rc<Scratch>,
}

/// Sets SO_SNDBUF of the socket `fd` (the kernel doubles it for its bookkeeping).
pub(super) fn set_send_buffer(fd: std::os::fd::RawFd, bytes: usize) -> io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a socket fd the caller holds open and a c_int option value that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether `path` is the WebSocket endpoint.
pub fn is_path(path: &str) -> bool {
    matches!(path, "/v0/channels" | "/v0/channels/")
}

/// Validates the upgrade request and answers it; then runs the session, which holds the
/// front door's ticket for its life.
pub async fn serve(
    mut stream: TcpStream,
    ticket: Ticket,
    head: RequestHead,
    leftover: Vec<u8>,
    remote: String,
    cfg: &Rc<Config>,
    scratch: &Rc<Scratch>,
) {
    if head.method != "GET" {
        let body = ctrl_body(405, "operation or method not allowed", now());
        let r = respond(
            &mut stream,
            405,
            "Method Not Allowed",
            "application/json",
            &body,
        );
        return Box::pin(r).await;
    }
    let key_ok = head
        .api_key()
        .is_some_and(|k| with(|ctx| ctx.api_key_ok(&k)));
    if !key_ok {
        let body = ctrl_body(403, "valid API key required", now());
        let r = respond(&mut stream, 403, "Forbidden", "application/json", &body);
        return Box::pin(r).await;
    }
    let Some(ws_key) = websocket_key(&head) else {
        let body = ctrl_body(400, "malformed", now());
        let r = respond(&mut stream, 400, "Bad Request", "application/json", &body);
        return Box::pin(r).await;
    };
    // Nothing of the request outlives the handshake (the task's memory is held all session).
    let resp = switching_protocols(ws_key);
    drop(head);
    if stream.write_all(resp.as_bytes()).await.is_err() {
        return;
    }
    drop(resp);
    let _ = stream.set_nodelay(true);
    if cfg.session.socket_send_buffer > 0 {
        let bytes = cfg.session.socket_send_buffer;
        if let Err(e) = set_send_buffer(std::os::fd::AsRawFd::as_raw_fd(&stream), bytes) {
            // The kernel's default stays.
            log::debug!("SO_SNDBUF {bytes}: {e}");
        }
    }
    // A WebSocket session has its connection attached for its whole life and ends with it.
    let opened = with(|ctx| {
        let handle = ctx.open_session(SessionKind::WebSocket, remote)?;
        Some((handle.sid, ctx.attach_transport(handle)?))
    });
    let Some((sid, outbox)) = opened else {
        return;
    };
    ticket.upgraded(sid);
    let max = cfg.max_message_size(crate::config::Transport::WebSocket);
    let link = {
        use std::os::fd::AsRawFd;
        Link::new(
            stream.as_raw_fd(),
            &outbox,
            &scratch.writer,
            cfg.ws.shard_writer,
        )
    };
    let mut conn = Conn {
        stream,
        reader: Reader::new(max),
        link,
        scratch: scratch.clone(),
    };
    // Bytes the client sent right after its request head are its first frames.
    conn.reader.preload(leftover);
    drop(outbox); // the link holds it
    let live = Live::new(conn, sid);
    // The session gets a task of its own, sized for its loop alone; this one (with the request
    // head and the handshake's state) ends here and frees its memory.
    glommio::spawn_local(session(live, ticket)).detach();
}

/// A session's connection and everything its loop keeps from one wake-up to the next, in one
/// struct that the session's task holds once: an `async` block lays out each local that lives
/// across an await on its own (with padding between them), and its arguments apart from its
/// locals, in every session's task for its whole life (W1).
/// (Its outbox is reached through the writer's link, its settings through the shard's
/// scratch: one pointer each fewer in every idle session.)
struct Live {
    conn: Conn,
    sid: crate::ids::SessionId,
    /// The connection's place on the shard's wheel, which wakes the task at the next ping or
    /// at the pong deadline, whichever comes first: a silent client is dropped `pong_timeout`
    /// after its last pong, not a ping period later.
    filing: Filing,
    /// Deadlines, not periods (the periods are read from the scratch where used), as ticks of the
    /// shard's wheel (8 bytes where an `Instant` takes 16: W1). A deadline is due once its tick
    /// has fired, which is never before the deadline.
    pong_due: u64,
    next_ping: u64,
    /// Client pings are counted per second of the wheel's clock: the second and the count.
    ping_second: u32,
    pings: u32,
    /// Pongs are coalesced: the payload of the last ping read, answered once no more input is
    /// at hand. (Boxed: 8 bytes where a boxed slice takes 16; client pings are rare.)
    pong: Option<Box<Box<[u8]>>>,
}

/// The session's task: its loop, then the end of the session.
/// (A plain fn around an `async move` block: an `async fn` would store its arguments twice.)
#[allow(clippy::manual_async_fn)]
fn session(mut live: Live, ticket: Ticket) -> impl Future<Output = ()> {
    async move {
        live.run().await;
        // The socket closes with `live`, at the end of this block: the writer lets go first.
        live.conn.link.detach();
        live.conn.link.outbox().close(CloseReason::Ended);
        with(|ctx| ctx.close_session(live.sid));
        drop(ticket);
    }
}

impl Live {
    fn new(conn: Conn, sid: crate::ids::SessionId) -> Live {
        let now = Instant::now();
        let (wheel, ping) = (&conn.scratch.wheel, conn.scratch.ping);
        let (pong_due, next_ping) = (
            wheel.tick_of(now + ping.pong_timeout),
            wheel.tick_of(now + ping.every),
        );
        Live {
            conn,
            sid,
            filing: Filing::default(),
            pong_due,
            next_ping,
            ping_second: 0,
            pings: 0,
            pong: None,
        }
    }

    /// The session's loop, until the connection or the session ends. Every wait that is not
    /// the wait for the next event is boxed while it runs, so the task is sized for the idle
    /// wait alone (W1). (A plain fn around an `async move` block: an `async fn` keeps `self`
    /// twice.)
    #[allow(clippy::manual_async_fn)]
    fn run(&mut self) -> impl Future<Output = ()> + '_ {
        async move {
            loop {
                let paused = with(|ctx| ctx.should_pause_reading());
                let ev = if paused {
                    // Back-pressure from the mesh: only write and tick until the backlog drains.
                    let next = self.next_event(true);
                    Box::pin(futures_lite::future::or(next, async {
                        glommio::timer::sleep(Duration::from_millis(1)).await;
                        Event::In(In::Message)
                    }))
                    .await
                } else {
                    self.next_event(false).await
                };
                // The step is taken apart before the await, so the task does not keep it.
                let w = match self.step(ev) {
                    Step::Go => continue,
                    Step::Stop => return,
                    Step::Write(w) => w,
                };
                if !Box::pin(self.write(w)).await {
                    return;
                }
            }
        }
    }

    /// The next thing to do: a failed link, bytes the writer left, frames drained from the
    /// outbox, client input (unless `paused`), a pong to send, a tick of the wheel.
    fn next_event(&mut self, paused: bool) -> impl Future<Output = Event> + '_ {
        let due = self.next_ping.min(self.pong_due);
        poll_fn(move |cx| {
            let Live {
                conn,
                sid,
                filing,
                pong,
                ..
            } = &mut *self;
            if conn.link.failed() {
                return Poll::Ready(Event::In(In::End));
            }
            if !conn.link.tx.is_empty() {
                return Poll::Ready(Event::Flush);
            }
            let drained = {
                let mut frames = conn.scratch.frames.borrow_mut();
                conn.link.outbox().poll_drain(cx, &mut frames)
            };
            if let Poll::Ready(r) = drained {
                return Poll::Ready(Event::Out(r));
            }
            if !paused {
                if let Poll::Ready(i) = conn.poll_in(cx, *sid) {
                    return Poll::Ready(Event::In(i));
                }
            }
            if pong.is_some() {
                return Poll::Ready(Event::Pong);
            }
            let wheel = &conn.scratch.wheel;
            if wheel.is_due(due) {
                return Poll::Ready(Event::Tick);
            }
            wheel.file(due, filing, cx.waker());
            Poll::Pending
        })
    }

    /// Applies `ev` to the loop's state, and says what is left to write.
    fn step(&mut self, ev: Event) -> Step {
        let sid = self.sid;
        let (wheel, ping) = (&*self.conn.scratch.wheel, self.conn.scratch.ping);
        match ev {
            Event::Out(None) => return Step::Write(Write::Drained),
            Event::Flush => return Step::Write(Write::Flush),
            Event::Out(Some(reason)) => {
                let payload = match reason {
                    CloseReason::Overflow => {
                        close_payload(1008, "slow consumer: outbound queue full")
                    }
                    CloseReason::Shutdown => close_payload(1001, "server shutdown"),
                    CloseReason::Ended => close_payload(1000, ""),
                    CloseReason::Shed => close_payload(1013, "try again later"),
                };
                let drain = reason != CloseReason::Overflow;
                return Step::Write(Write::Close { drain, payload });
            }
            Event::In(In::Message) => {}
            Event::In(In::Pong) => {
                self.pong_due = wheel.tick_of(Instant::now() + ping.pong_timeout);
            }
            Event::In(In::Ping(p)) => {
                let second = wheel.second_of(Instant::now());
                if second != self.ping_second {
                    (self.ping_second, self.pings) = (second, 0);
                }
                self.pings += 1;
                let max_pings = ping.max_per_sec;
                if self.pings > max_pings {
                    log::debug!("session {sid}: more than {max_pings} pings a second, closing");
                    let payload = close_payload(1008, "too many pings");
                    return Step::Write(Write::Close {
                        drain: false,
                        payload,
                    });
                }
                self.pong = Some(Box::new(p));
            }
            Event::Pong => {
                if let Some(p) = self.pong.take() {
                    return Step::Write(Write::Control(OP_PONG, *p));
                }
            }
            Event::In(In::Close(payload)) => {
                return Step::Write(Write::Close {
                    drain: false,
                    payload,
                })
            }
            Event::In(In::End) => return Step::Stop,
            Event::Tick => {
                if wheel.is_due(self.pong_due) {
                    log::debug!(
                        "session {sid}: no pong for {:?}, closing",
                        ping.pong_timeout
                    );
                    let payload = close_payload(1001, "no pong");
                    return Step::Write(Write::Close {
                        drain: false,
                        payload,
                    });
                }
                if wheel.is_due(self.next_ping) {
                    self.next_ping = wheel.tick_of(Instant::now() + ping.every);
                    return Step::Write(Write::Control(OP_PING, Box::default()));
                }
            }
        }
        Step::Go
    }

    /// Writes what a step left (its caller boxes this while it runs: W1); false once the
    /// session's loop is over.
    async fn write(&mut self, w: Write) -> bool {
        let conn = &mut self.conn;
        match w {
            Write::Drained => match conn.write_drained().await {
                Ok(()) => true,
                Err(e) => {
                    write_failed(conn, self.sid, e);
                    false
                }
            },
            Write::Flush => match conn.finish_write().await {
                Ok(()) => true,
                Err(e) => {
                    write_failed(conn, self.sid, e);
                    false
                }
            },
            Write::Control(opcode, payload) => conn.write_frame(opcode, &payload).await.is_ok(),
            Write::Close { drain, payload } => {
                if drain {
                    let _ = conn.write_drained().await;
                }
                let _ = conn.write_frame(OP_CLOSE, &payload).await;
                false
            }
        }
    }
}

/// What the loop does after an event.
enum Step {
    /// Wait for the next one.
    Go,
    /// The session's loop is over (the connection ended or failed).
    Stop,
    /// Write this first (then go on, unless the write failed or was a close).
    Write(Write),
}

/// A write left to the session's task.
enum Write {
    /// The frames drained from the outbox into the scratch.
    Drained,
    /// The bytes the shard's writer left in the link.
    Flush,
    /// A ping, or a pong with the payload of the last ping read.
    Control(u8, Box<[u8]>),
    /// A close frame with this payload, after the frames drained (`drain`); the loop ends.
    Close { drain: bool, payload: Vec<u8> },
}

/// A write of queued frames failed: a stalled one closes the session as a slow consumer.
fn write_failed(conn: &Conn, sid: crate::ids::SessionId, e: io::Error) {
    if e.kind() == io::ErrorKind::TimedOut {
        log::info!("session {sid}: {e} for {:?}, closing", conn.scratch.stall);
        with(|ctx| ctx.note_stalled_writer());
        conn.link.outbox().close(CloseReason::Overflow);
    }
}

impl Conn {
    /// The next thing the client sent: carried bytes first, then a read into the shard's
    /// scratch (`Pending` arms the socket's readiness and holds no buffer). A message is
    /// handed to the shard right here, while its bytes are borrowed.
    fn poll_in(&mut self, cx: &mut Context<'_>, sid: crate::ids::SessionId) -> Poll<In> {
        let Conn {
            reader,
            stream,
            link,
            scratch,
        } = self;
        let outbox = &**link.outbox();
        loop {
            if reader.has_carry() {
                let got = match reader.next(&mut []) {
                    Ok(Some(ev)) => Some(on_event(ev, sid, outbox, scratch)),
                    Ok(None) => None,
                    Err(e) => Some(fail(sid, e)),
                };
                reader.release();
                if let Some(i) = got {
                    return Poll::Ready(i);
                }
            }
            let mut buf = scratch.read.borrow_mut();
            let n = match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(In::End),
                Poll::Ready(Ok(n)) => n,
            };
            let got = match reader.next(&mut buf[..n]) {
                Ok(Some(ev)) => Some(on_event(ev, sid, outbox, scratch)),
                Ok(None) => None,
                Err(e) => Some(fail(sid, e)),
            };
            reader.release();
            if let Some(i) = got {
                return Poll::Ready(i);
            }
        }
    }

    /// Writes every frame drained into the scratch, as text frames, in one write.
    async fn write_drained(&mut self) -> io::Result<()> {
        let scratch = self.scratch.clone();
        self.write(|out| {
            for f in scratch.frames.borrow_mut().drain(..) {
                debug_assert!(std::str::from_utf8(&f).is_ok(), "frames are UTF-8");
                wsframe::encode(out, OP_TEXT, &f);
            }
        })
        .await
    }

    /// Writes one control frame (a ping, a pong, a close).
    async fn write_frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.write(|out| wsframe::encode(out, opcode, payload))
            .await
    }

    /// Encodes with `fill` into the shard's write buffer and writes what the socket takes at
    /// once; only the rest is copied into the connection's own buffer, and only then does the
    /// write become a (boxed, so the session's future stays small) wait for the socket, which
    /// `session.write_stall_ms` bounds: past it the write fails with `TimedOut` (the client
    /// stopped reading: a slow consumer).
    async fn write(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let mut fill = Some(fill);
        let first = poll_fn(|cx| match fill.take() {
            Some(f) => Poll::Ready(self.write_start(cx, f)),
            None => Poll::Ready(Poll::Ready(Ok(()))),
        })
        .await;
        match first {
            Poll::Ready(r) => r,
            Poll::Pending => Box::pin(self.finish_write()).await,
        }
    }

    /// The first attempt of [`Conn::write`]: what the socket does not take stays in `tx`.
    fn write_start(
        &mut self,
        cx: &mut Context<'_>,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Poll<io::Result<()>> {
        let mut out = self.scratch.write.borrow_mut();
        out.clear();
        fill(&mut out);
        let mut done = 0;
        let r = poll_write_all(&mut self.stream, cx, &out, &mut done);
        if r.is_pending() {
            self.link.tx.push(&out[done..]);
        }
        if out.capacity() > SCRATCH_KEEP {
            *out = Vec::new();
        }
        r
    }

    /// Writes out the link's `tx` as the socket takes it, within the stall bound.
    async fn finish_write(&mut self) -> io::Result<()> {
        let stall = self.scratch.stall;
        let Conn { stream, link, .. } = self;
        let drain = poll_fn(|cx| {
            link.tx.with(|tx| {
                let mut done = 0;
                let r = poll_write_all(stream, cx, tx, &mut done);
                tx.drain(..done);
                if r.is_ready() {
                    tx.clear();
                }
                r
            })
        });
        if stall.is_zero() {
            return drain.await;
        }
        let timeout = async move {
            glommio::timer::sleep(stall).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "slow consumer: queued frames not written",
            ))
        };
        futures_lite::future::or(drain, timeout).await
    }
}

/// Writes `buf[*done..]` until all is written, the socket would block, or it fails.
fn poll_write_all(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &[u8],
    done: &mut usize,
) -> Poll<io::Result<()>> {
    while *done < buf.len() {
        match Pin::new(&mut *stream).poll_write(cx, &buf[*done..]) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => *done += n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(()))
}

/// A client frame: messages go to the shard (the network probe is answered here), control
/// frames become what the task must do.
fn on_event(ev: Frame<'_>, sid: crate::ids::SessionId, outbox: &Outbox, scratch: &Scratch) -> In {
    match ev {
        Frame::Message(data) => {
            // What the message queues is written when it was handled, by this task.
            scratch.writer.begin_inline();
            on_frame(sid, outbox, data);
            scratch.writer.end_inline(scratch);
            In::Message
        }
        Frame::Ping(p) => In::Ping(p.into()),
        Frame::Pong => In::Pong,
        Frame::Close(reply) => In::Close(wsframe::close_payload(&reply)),
    }
}

/// A frame the client should not have sent: the connection is dropped.
fn fail(sid: crate::ids::SessionId, e: wsframe::Error) -> In {
    log::debug!("session {sid}: bad WebSocket input ({e:?}), closing");
    In::End
}

/// One client message: the network probe is answered here, anything else goes to the shard.
fn on_frame(sid: crate::ids::SessionId, outbox: &Outbox, data: &[u8]) {
    if data == b"1" {
        let _ = outbox.push(Bytes::from_static(b"0"));
        return;
    }
    with(|ctx| ctx.client_frame(sid, data));
}

/// The size of a session task's future (a test keeps it small).
#[cfg(test)]
pub(crate) fn session_future_size() -> usize {
    fn size<F, Fut>(_: &F) -> usize
    where
        F: Fn(Live, Ticket) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }
    size(&session)
}
