//! The fan-out's write path, W4's hot path: one frame pushed into N sessions' outboxes, then
//! written to their sockets by the shard's WebSocket writer (`transport::wsout`), with one
//! `send` per link or batched through the writer's io_uring (`ws.send_batch`, `wsbatch`).
//! Beside it, the floor: the same WebSocket frame, encoded once, written to the same sockets
//! with one `send` each and nothing else (what the harness's ws-sol peer does).
//!
//! Uses the real pieces the way a shard does: `Outbox::push` files each session's `Link` with
//! the writer; `Writer::end_inline` writes up to 64 links at the end of the message's handling
//! and leaves more to the writer's task, which writes them in groups of 64 and yields between.
//! The sockets are loopback TCP pairs; their far ends are read between timed rounds, so no
//! reader is waiting and the kernel's wake-up of a reading client (a large part of a real
//! delivery) is not in these figures. Thread CPU time per delivery is reported beside wall
//! time: the kernel's TCP send is most of both.
//!
//! `cargo bench --bench fanout_write` runs the full table (a few seconds); without `--bench`
//! (as `cargo test --benches` or `--all-targets` runs it) it is a smoke run of a few rounds.

mod common;
use common::thread_cpu;

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::LocalExecutorBuilder;

use coretalk::config::Config;
use coretalk::shard::Outbox;
use coretalk::transport::ws::Scratch;
use coretalk::transport::wsframe::{self, OP_TEXT};
use coretalk::transport::wsout::Link;

/// A `{data}` frame of a typical group message.
const FRAME_BYTES: usize = 200;
/// Rounds between two reads of the far ends (their receive buffers hold far more).
const DRAIN_EVERY: usize = 25;

/// How a round is written.
#[derive(Clone, Copy)]
enum Path {
    /// One `send` of the prepared frame per socket.
    Raw,
    /// The shard writer, `ws.send_batch` sends per submission (0: one `send` per link).
    Writer(usize),
}

impl Path {
    fn name(self) -> String {
        match self {
            Path::Raw => "raw send per socket (floor)".into(),
            Path::Writer(0) => "writer, send per link".into(),
            Path::Writer(b) => format!("writer, batched ({b} per submission)"),
        }
    }
}

struct Measured {
    wall: Duration,
    cpu: Duration,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` runs bench targets without it.
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = |n: usize| if full { 400_000 / n } else { 2 };
    println!(
        "fan-out write: one {FRAME_BYTES} B frame to each of N loopback TCP sockets per round{}",
        if full {
            ""
        } else {
            ", smoke run (use cargo bench for figures)"
        }
    );
    println!();
    println!(
        "{:>5}   {:<36} {:>7} {:>18} {:>17}",
        "N", "path", "rounds", "wall ns/delivery", "CPU ns/delivery"
    );
    for n in [128usize, 1000] {
        for path in [Path::Raw, Path::Writer(0), Path::Writer(64)] {
            let r = run(n, path, rounds(n));
            let deliveries = (n * rounds(n)) as f64;
            println!(
                "{n:>5}   {:<36} {:>7} {:>18.0} {:>17.0}",
                path.name(),
                rounds(n),
                r.wall.as_nanos() as f64 / deliveries,
                r.cpu.as_nanos() as f64 / deliveries,
            );
        }
    }
}

/// `n` connected loopback pairs: (the server's end, the client's end), both non-blocking.
fn pairs(n: usize) -> Vec<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("address");
    (0..n)
        .map(|_| {
            let far = TcpStream::connect(addr).expect("connect");
            let (near, _) = listener.accept().expect("accept");
            near.set_nonblocking(true).expect("non-blocking");
            far.set_nonblocking(true).expect("non-blocking");
            (near, far)
        })
        .collect()
}

/// Reads everything the far ends hold; returns the bytes read.
fn drain(pairs: &mut [(TcpStream, TcpStream)], buf: &mut [u8]) -> usize {
    let mut total = 0;
    for (_, far) in pairs.iter_mut() {
        loop {
            match far.read(buf) {
                Ok(0) => break,
                Ok(k) => total += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
    }
    total
}

/// `rounds` rounds of one frame to `n` sockets along `path`, on a glommio executor as a shard
/// runs it; every byte is checked to have arrived.
fn run(n: usize, path: Path, rounds: usize) -> Measured {
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let ws = Config::default().ws;
            let send_batch = match path {
                Path::Writer(b) => b,
                Path::Raw => 0,
            };
            let scratch = Rc::new(Scratch::new(
                ws.read_buffer,
                send_batch,
                Duration::from_millis(100),
                Duration::ZERO,
            ));
            let writer = scratch.writer.clone();
            glommio::spawn_local(writer.clone().run(scratch.clone())).detach();
            glommio::executor().yield_now().await; // the writer's task runs: links hook in
            assert!(writer.is_running());

            let mut pairs = pairs(n);
            let outboxes: Vec<Rc<Outbox>> = (0..n)
                .map(|_| Rc::new(Outbox::new(1 << 16, 1 << 26)))
                .collect();
            let links: Vec<Rc<Link>> = pairs
                .iter()
                .zip(&outboxes)
                .map(|((near, _), ob)| Link::new(near.as_raw_fd(), ob, &writer, true))
                .collect();
            let payload = format!(
                "{{\"data\":{{\"topic\":\"grpAbCdEfGhIjK\",\"from\":\"usrAbCdEfGhIjK\",\"seq\":1,\"content\":\"{}\"}}}}",
                "x".repeat(FRAME_BYTES - 80)
            );
            let frame = Bytes::from(payload);
            let mut prepared = Vec::new();
            wsframe::encode(&mut prepared, OP_TEXT, &frame);

            let mut buf = vec![0u8; 1 << 16];
            let mut wall = Duration::ZERO;
            let mut cpu = Duration::ZERO;
            let mut received = 0;
            for round in 0..rounds {
                let (t0, c0) = (Instant::now(), thread_cpu());
                match path {
                    Path::Raw => {
                        for (near, _) in &pairs {
                            let fd = near.as_raw_fd();
                            // SAFETY: `prepared` is a live buffer of its length; `fd` is open.
                            let sent = unsafe {
                                libc::send(fd, prepared.as_ptr().cast(), prepared.len(), 0)
                            };
                            assert_eq!(sent, prepared.len() as isize, "a whole send");
                        }
                    }
                    Path::Writer(_) => {
                        writer.begin_inline();
                        for ob in &outboxes {
                            ob.push(frame.clone()).expect("room in the outbox");
                        }
                        writer.end_inline(&scratch);
                        // Past 64 links the writer's task writes the rest, yielding between groups.
                        while outboxes.iter().any(|ob| !ob.is_empty()) {
                            glommio::executor().yield_now().await;
                        }
                    }
                }
                wall += t0.elapsed();
                cpu += thread_cpu() - c0;
                if (round + 1) % DRAIN_EVERY == 0 || round + 1 == rounds {
                    received += drain(&mut pairs, &mut buf);
                }
            }
            // Late bytes still in flight on loopback.
            for _ in 0..100 {
                if received == n * rounds * prepared.len() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
                received += drain(&mut pairs, &mut buf);
            }
            assert_eq!(received, n * rounds * prepared.len(), "every frame arrived");
            assert!(links.iter().all(|l| !l.failed()), "no link failed");
            for l in &links {
                l.detach();
            }
            Measured { wall, cpu }
        })
        .expect("executor")
        .join()
        .expect("bench executor")
}
