//! Socket reads on the executor coretalk runs on (glommio, patched in `vendor/glommio`, see
//! its CORETALK.md, change 8): a socket's read readiness is one multishot poll, armed when the
//! stream is made and kept for its life, instead of a one-shot poll armed after every short
//! read. What must still hold:
//!
//! - every byte arrives once and in order, whether the reader waits for it, is busy when it
//!   comes, or reads with a buffer the data overflows; the end of the stream reads as 0, again
//!   and again;
//! - a close that comes together with the last data is seen: one poll completion may stand for
//!   both, and the read that follows returns only the data (a version that took every short
//!   read for a drained socket waited for ever here, and in about half the runs of the first
//!   test);
//! - a stream dropped while its poll is armed lets go of its socket: the peer sees the close,
//!   and the process's open sockets come back to where they were (the poll held a reference
//!   to the socket until its cancellation completed).

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::time::{Duration, Instant};

use futures_util::AsyncReadExt;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};

/// The tests run one at a time: one counts the process's open sockets, and the read-poll mode
/// is the process's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` with multishot read polls (coretalk's default), then with one-shot polls
/// (`runtime.multishot_read_polls = false`, and what a kernel without multishot polls gets).
fn in_both_modes(test: fn(&str)) {
    /// Puts the default back, whatever happens.
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            glommio::net::set_multishot_read_polls(true);
        }
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _restore = Restore;
    for (on, mode) in [(true, "multishot"), (false, "one-shot")] {
        glommio::net::set_multishot_read_polls(on);
        test(mode);
    }
}

/// Bytes the writer sends in the ordered-bytes test.
const TOTAL: usize = 1 << 20;

/// The byte at `i` of the test stream: a pattern whose shifts and repeats a check would see.
fn byte(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

/// Runs `f` on a fresh executor and returns its result.
fn on_executor<T: Send + 'static, F, Fut>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(f)
        .expect("executor")
        .join()
        .expect("executor ran")
}

#[test]
fn every_byte_arrives_once_and_in_order_and_the_end_reads_as_zero() {
    in_both_modes(every_byte_arrives_once_and_in_order_and_the_end_reads_as_zero_in);
}

fn every_byte_arrives_once_and_in_order_and_the_end_reads_as_zero_in(mode: &str) {
    let got = on_executor(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // The writer: chunks of varied sizes, with pauses, so the reader sees reads that fill
        // its buffer, short reads, waits for data, and data that came while it was busy.
        let writer = std::thread::spawn(move || {
            let mut s = StdStream::connect(addr).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let data: Vec<u8> = (0..TOTAL).map(byte).collect();
            let mut at = 0;
            let mut n = 0usize;
            while at < TOTAL {
                let len = [1, 7, 300, 4096, 65536, 13][n % 6].min(TOTAL - at);
                s.write_all(&data[at..at + len]).expect("write");
                at += len;
                n += 1;
                if n.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let mut stream = listener.accept().await.expect("accept");
        let mut got = Vec::with_capacity(TOTAL);
        let mut reads = 0usize;
        loop {
            // Alternate a small buffer (often filled: the next read must not wait for a
            // poll) with a large one (short reads: the socket is drained).
            let mut buf = vec![
                0u8;
                if reads.is_multiple_of(2) {
                    512
                } else {
                    64 * 1024
                }
            ];
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            reads += 1;
            if reads.is_multiple_of(64) {
                // Busy for a while: data and poll completions pile up meanwhile.
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(1) {}
            }
        }
        writer.join().expect("writer");
        let mut buf = [0u8; 16];
        let again = (
            stream.read(&mut buf).await.expect("read at the end"),
            stream.read(&mut buf).await.expect("read at the end"),
        );
        (got, again)
    });
    let (got, again) = got;
    assert_eq!(got.len(), TOTAL, "{mode}: every byte arrives");
    if let Some(i) = (0..TOTAL).find(|&i| got[i] != byte(i)) {
        panic!("{mode}: byte {i} is {} where {} was sent", got[i], byte(i));
    }
    assert_eq!(
        again,
        (0, 0),
        "{mode}: the end of the stream reads as 0, again and again"
    );
}

#[test]
fn a_close_that_comes_with_the_last_data_is_seen() {
    in_both_modes(a_close_that_comes_with_the_last_data_is_seen_in);
}

fn a_close_that_comes_with_the_last_data_is_seen_in(mode: &str) {
    let outcomes = on_executor(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut outcomes = Vec::new();
        for round in 0..20 {
            let client = std::thread::spawn(move || {
                let mut c = StdStream::connect(addr).expect("connect");
                c.write_all(b"last words").expect("write");
                // Dropped: the close follows the data at once.
            });
            let mut s = listener.accept().await.expect("accept");
            client.join().expect("client");
            // Busy until both the data and the close are in: the read poll is armed after
            // them, and its first completion reports both.
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(20) {}
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            let outcome = loop {
                let read = glommio::timer::timeout(Duration::from_secs(5), async {
                    Ok(s.read(&mut buf).await?)
                });
                match read.await {
                    Ok(0) => break Ok(got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        let got = String::from_utf8_lossy(&got);
                        break Err(format!("round {round}: {e}, after reading {got:?}"));
                    }
                }
            };
            let failed = outcome.is_err();
            outcomes.push(outcome);
            if failed {
                break;
            }
        }
        outcomes
    });
    for o in outcomes {
        match o {
            Ok(got) => assert_eq!(got, b"last words", "{mode}"),
            Err(e) => panic!("{mode}: the close was not seen: {e}"),
        }
    }
}

/// The process's open sockets.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn a_stream_dropped_while_its_poll_is_armed_lets_go_of_its_socket() {
    in_both_modes(a_stream_dropped_while_its_poll_is_armed_lets_go_of_its_socket_in);
}

fn a_stream_dropped_while_its_poll_is_armed_lets_go_of_its_socket_in(mode: &str) {
    const CONNS: usize = 500;
    let before = open_sockets();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        on_executor(move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            addr_tx.send(listener.local_addr().expect("addr")).unwrap();
            let mut held = Vec::with_capacity(CONNS);
            for _ in 0..CONNS {
                let mut s = listener.accept().await.expect("accept");
                // One read, so the poll has completed once and stays armed for the next.
                let mut b = [0u8; 8];
                assert_eq!(s.read(&mut b).await.expect("read"), 1);
                held.push(s);
            }
            // Every stream now waits on an armed poll; drop them all while they do.
            drop(held);
            // Let the reactor submit the cancellations and collect their completions.
            while done_rx.try_recv().is_err() {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
        })
    });
    let addr = addr_rx.recv().expect("address");
    let mut clients: Vec<StdStream> = (0..CONNS)
        .map(|_| {
            let mut c = StdStream::connect(addr).expect("connect");
            c.write_all(b"x").expect("write");
            c
        })
        .collect();
    // Each client sees the server's close: the socket was released, not held by its poll.
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(0) => {}
            other => panic!("{mode}: client {i}: expected the server's close, got {other:?}"),
        }
    }
    drop(clients);
    done_tx.send(()).unwrap();
    server.join().expect("server");
    let after = open_sockets();
    assert_eq!(
        after, before,
        "{mode}: open sockets: {before} before, {after} after {CONNS} streams were dropped"
    );
}
