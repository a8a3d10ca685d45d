//! The executor coretalk runs on (glommio, patched in `vendor/glommio`, see its CORETALK.md)
//! never parks while its own tasks are runnable. Unpatched glommio 0.9.0 does, when a
//! latency-ring completion (a preemption timer) lands between its reactor poll and its round of
//! the task queues: the round stops before running anything, reports "nothing ran", and the
//! executor sleeps on runnable work until an outside event comes, which may be never.
//!
//! Two tasks hand a token back and forth through a local channel (always runnable work; no
//! I/O, no timers, nothing from another thread that could wake a parked executor) under a
//! 50 µs preemption period, so timer completions land between polls often. Unpatched, this
//! hangs within a fraction of a second (measured: 2k–21k hand-offs); patched, it hands off
//! about 150k times a second for the whole run.
//!
//! Nor does it sleep through a timer that is due: a task that only sleeps for a few
//! microseconds at a time (nothing else can wake the executor) keeps running. The reactor
//! keeps its timers armed across sleeps where it can (vendor/glommio/CORETALK.md, change 3);
//! a timer so short that it completes as it is submitted must stop the executor from
//! sleeping, or nothing ever wakes it (a version that missed this hung at once here).
//!
//! Nor does a busy executor miss its I/O: the main ring is set up so that completions do not
//! interrupt a running executor (vendor/glommio/CORETALK.md, change 5); they are posted at its
//! next kernel entry (a system call, the scheduler tick, a reactor pass that sees them
//! flagged). A task that computes without system calls, yielding only when preempted, must
//! still see a socket read complete while it runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel;
use glommio::{LocalExecutorBuilder, Placement};

/// How long the hand-off runs.
const RUN: Duration = Duration::from_secs(3);
/// No hand-off for this long is a hang: far beyond any scheduling hiccup of a loaded CI host.
const HANG: Duration = Duration::from_secs(5);

#[test]
fn an_executor_with_runnable_tasks_never_parks() {
    let count = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (c, d) = (count.clone(), done.clone());
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .preempt_timer(Duration::from_micros(50))
        .spawn(move || async move {
            let (to_b, from_a) = local_channel::new_bounded::<u64>(1);
            let (to_a, from_b) = local_channel::new_bounded::<u64>(1);
            let c2 = c.clone();
            let b = glommio::spawn_local(async move {
                while let Some(v) = from_a.recv().await {
                    // A few microseconds of work per hand-off, so preemption timers fire
                    // while tasks run as well as between polls.
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_micros(3) {}
                    c2.fetch_add(1, Relaxed);
                    if to_a.send(v + 1).await.is_err() {
                        break;
                    }
                }
            });
            let end = Instant::now() + RUN;
            to_b.send(0).await.expect("first hand-off");
            while let Some(v) = from_b.recv().await {
                if Instant::now() > end {
                    break;
                }
                to_b.send(v + 1).await.expect("hand-off");
            }
            drop(to_b);
            b.await;
            d.store(true, Relaxed);
        })
        .expect("executor");

    watch(
        &count,
        &done,
        "hand-offs",
        "parked with its own tasks runnable",
    );
    ex.join().expect("executor thread");
    let n = count.load(Relaxed);
    println!("{n} hand-offs in {RUN:?}, no hang");
    assert!(n > 1000, "the tasks ran: {n} hand-offs");
}

#[test]
fn an_executor_never_sleeps_through_a_due_timer() {
    let count = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (c, d) = (count.clone(), done.clone());
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            let end = Instant::now() + RUN;
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            while Instant::now() < end {
                // 0–63 µs: the shortest are due before the reactor has submitted them.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                glommio::timer::sleep(Duration::from_micros(x % 64)).await;
                c.fetch_add(1, Relaxed);
            }
            d.store(true, Relaxed);
        })
        .expect("executor");
    watch(&count, &done, "sleeps", "asleep with a timer due");
    ex.join().expect("executor thread");
    let n = count.load(Relaxed);
    println!("{n} sleeps in {RUN:?}, no hang");
    assert!(n > 1000, "the timers fired: {n} sleeps");
}

#[test]
fn a_busy_executor_still_completes_its_reads() {
    use futures_util::AsyncReadExt;
    use std::io::Write;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let writer = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().expect("accept");
        // Long enough for the read to be waiting in the ring before the byte comes.
        std::thread::sleep(Duration::from_millis(200));
        peer.write_all(b"x").expect("write");
        std::thread::sleep(Duration::from_secs(1));
    });
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .preempt_timer(Duration::from_millis(10))
        .spawn(move || async move {
            let mut stream = glommio::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let got = std::rc::Rc::new(std::cell::Cell::new(false));
            let g = got.clone();
            let reader = glommio::spawn_local(async move {
                let mut b = [0u8; 1];
                let n = stream.read(&mut b).await.expect("read");
                g.set(n == 1);
            })
            .detach();
            // Computes, no system call, and yields when preempted, until the read is done or
            // BUSY passes.
            const BUSY: Duration = Duration::from_secs(10);
            let start = Instant::now();
            while !got.get() && start.elapsed() < BUSY {
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(200) {}
                glommio::yield_if_needed().await;
            }
            let busy_for = start.elapsed();
            reader.await;
            (got.get(), busy_for < BUSY)
        })
        .expect("executor");
    let (read_done, while_busy) = ex.join().expect("executor thread");
    writer.join().expect("writer");
    assert!(read_done, "the read returned the byte");
    assert!(
        while_busy,
        "the read completed only once the busy task stopped: a completion waited for a kernel entry that never came"
    );
}

#[test]
fn a_wake_from_another_thread_always_reaches_a_sleeping_executor() {
    use atomic_waker::AtomicWaker;
    use std::sync::atomic::Ordering::{Acquire, Release};

    // `turn` is odd while the executor's task has a turn to take, even while the thread's.
    let turn = Arc::new(AtomicU64::new(0));
    let waker = Arc::new(AtomicWaker::new());
    let done = Arc::new(AtomicBool::new(false));
    let (t, w, d) = (turn.clone(), waker.clone(), done.clone());
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            let end = Instant::now() + RUN;
            let mut last = 0;
            while Instant::now() < end {
                last = std::future::poll_fn(|cx| {
                    w.register(cx.waker());
                    match t.load(Acquire) {
                        v if v % 2 == 1 => std::task::Poll::Ready(v),
                        _ => std::task::Poll::Pending,
                    }
                })
                .await;
                t.store(last + 1, Release);
            }
            d.store(true, Relaxed);
            last
        })
        .expect("executor");
    let (t, w, d) = (turn.clone(), waker.clone(), done.clone());
    let waking = std::thread::spawn(move || {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        while !d.load(Relaxed) {
            let v = t.load(Acquire);
            if v % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            // 0-15 µs before the turn is handed over, so that the wake-ups land at every
            // point of the executor's way into its sleep.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let wait = Instant::now();
            while wait.elapsed() < Duration::from_nanos(x % 16_000) {}
            t.store(v + 1, Release);
            w.wake();
        }
    });
    watch(
        &turn,
        &done,
        "turns",
        "asleep although another thread woke its task",
    );
    let n = ex.join().expect("executor thread");
    waking.join().expect("waking thread");
    println!("{} wake-ups from another thread in {RUN:?}, no hang", n / 2);
    assert!(n > 1000, "the turns went back and forth: {n}");
}

/// Fails the test if `count` stops moving for `HANG` before `done`.
fn watch(count: &AtomicU64, done: &AtomicBool, what: &str, why: &str) {
    let (mut last, mut since) = (0, Instant::now());
    while !done.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        let n = count.load(Relaxed);
        if n != last {
            (last, since) = (n, Instant::now());
        }
        assert!(
            since.elapsed() < HANG,
            "the executor stopped after {n} {what}: {why}"
        );
    }
}
