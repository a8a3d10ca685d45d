//! The cross-core mesh between two glommio executors: one-way envelopes per second at several
//! flush batch sizes, and round-trip latency with the executors parking or spinning.
//!
//! Uses the real `shard::mesh` (`build`, `ShardLink::send`/`flush`/`poll_ready`/`drain`) the way
//! `shard::tasks::mesh_loop` does: the receiver waits on its doorbell, drains up to 256
//! envelopes, yields. Executors are pinned to the first two cores of the affinity mask
//! (`CORETALK_BENCH_NOPIN=1` leaves them unbound). Thread CPU time per message is reported
//! beside throughput, since wall-clock rates on a shared VM are noisy.
//!
//! `cargo bench --bench mesh` runs the full table (a few seconds); without `--bench` (as
//! `cargo test --benches` or `--all-targets` runs it) it is a smoke run of a few milliseconds.

mod common;
use common::thread_cpu;

use std::future::poll_fn;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use coretalk::config::MeshConfig;
use coretalk::ids::{SessionId, ShardId, UnixMillis};
use coretalk::proto::server::{raw, Data, ServerMsg, Ts};
use coretalk::proto::Frame;
use coretalk::shard::mesh::{self, Envelope, ShardLink};

/// Envelopes taken per doorbell wake-up, as `shard::tasks::DRAIN_BATCH`.
const DRAIN_BATCH: usize = 256;
/// The shared frame every envelope carries, as a fan-out batch would.
const FRAME_BYTES: usize = 200;

/// How much work each measurement does.
struct Scale {
    one_way: usize,
    round_trips: usize,
}

const FULL: Scale = Scale {
    one_way: 1_000_000,
    round_trips: 20_000,
};
const SMOKE: Scale = Scale {
    one_way: 2_000,
    round_trips: 50,
};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` runs bench targets without it.
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { FULL } else { SMOKE };
    let placements = placements();
    let capacity = MeshConfig::default().queue_capacity;
    println!(
        "mesh: 2 shards, {}, queue_capacity {capacity}, Envelope::Deliver ({FRAME_BYTES} B shared frame, 1 sid){}",
        placements.1,
        if full { "" } else { ", smoke run (use cargo bench for figures)" }
    );
    println!();
    println!("one-way 0 -> 1   batch    messages   Mmsg/s   send CPU ns/msg   recv CPU ns/msg");
    for batch in [1, 32, 256] {
        let r = one_way(&placements.0, capacity, batch, scale.one_way);
        println!(
            "                 {batch:>5} {:>11} {:>8.2} {:>17.0} {:>17.0}",
            scale.one_way,
            scale.one_way as f64 / r.wall.as_secs_f64() / 1e6,
            r.send_cpu.as_nanos() as f64 / scale.one_way as f64,
            r.recv_cpu.as_nanos() as f64 / scale.one_way as f64,
        );
    }
    println!();
    println!(
        "round trip 0 -> 1 -> 0   spin_before_park   trips    p50 us   p99 us   p99.9 us   max us"
    );
    for spin_us in [0u64, 100] {
        let mut rtts = round_trips(&placements.0, capacity, spin_us, scale.round_trips);
        rtts.sort_unstable();
        let pct = |p: f64| {
            let i = ((rtts.len() as f64 * p).ceil() as usize).clamp(1, rtts.len()) - 1;
            rtts[i].as_secs_f64() * 1e6
        };
        println!(
            "                          {:>13} us {:>7} {:>9.1} {:>8.1} {:>10.1} {:>8.1}",
            spin_us,
            rtts.len(),
            pct(0.50),
            pct(0.99),
            pct(0.999),
            pct(1.0),
        );
    }
}

/// Where the two executors run, and a description for the table's title.
fn placements() -> ([Placement; 2], String) {
    let unbound = || [Placement::Unbound, Placement::Unbound];
    if std::env::var("CORETALK_BENCH_NOPIN").is_ok_and(|v| v == "1") {
        return (unbound(), "unpinned (CORETALK_BENCH_NOPIN=1)".into());
    }
    match core_affinity::get_core_ids() {
        Some(cores) if cores.len() >= 2 => (
            [Placement::Fixed(cores[0].id), Placement::Fixed(cores[1].id)],
            format!("pinned to cores {} and {}", cores[0].id, cores[1].id),
        ),
        _ => (unbound(), "unpinned (fewer than 2 cores allowed)".into()),
    }
}

/// A shared `{data}` frame of about `FRAME_BYTES` of JSON, encoded once up front.
fn shared_frame() -> Frame {
    let content = format!("\"{}\"", "x".repeat(FRAME_BYTES.saturating_sub(80)));
    let frame = Frame::new(ServerMsg::Data(Data {
        topic: "grpBenchBench".into(),
        from: None,
        ts: Ts(UnixMillis(0)),
        seq: 1,
        head: None,
        content: raw(&content),
    }));
    frame.json();
    frame
}

fn envelope(frame: &Frame, i: u64) -> Envelope {
    Envelope::Deliver {
        frame: frame.clone(),
        sids: vec![SessionId::new(ShardId(1), i)],
    }
}

/// Runs `a` on the first executor and `b` on the second, each with its end of a fresh
/// two-shard mesh, released together by a barrier.
fn pair<A, B, FA, FB, RA, RB>(
    placements: &[Placement; 2],
    capacity: usize,
    spin_us: u64,
    a: A,
    b: B,
) -> (RA, RB)
where
    A: FnOnce(ShardLink) -> FA + Send + 'static,
    B: FnOnce(ShardLink) -> FB + Send + 'static,
    FA: std::future::Future<Output = RA> + 'static,
    FB: std::future::Future<Output = RB> + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let (mut links, _services) = mesh::build(2, capacity);
    let link_b = links.pop().expect("two links");
    let link_a = links.pop().expect("two links");
    let start = Arc::new(Barrier::new(2));
    let builder = |i: usize| {
        LocalExecutorBuilder::new(placements[i].clone())
            .name(&format!("bench-shard-{i}"))
            .io_memory(1 << 20)
            .spin_before_park(Duration::from_micros(spin_us))
    };
    let sa = start.clone();
    let ha = builder(0)
        .spawn(move || async move {
            sa.wait();
            a(link_a).await
        })
        .expect("start executor 0");
    let sb = start;
    let hb = builder(1)
        .spawn(move || async move {
            sb.wait();
            b(link_b).await
        })
        .expect("start executor 1");
    (
        ha.join().expect("executor 0"),
        hb.join().expect("executor 1"),
    )
}

struct OneWay {
    wall: Duration,
    send_cpu: Duration,
    recv_cpu: Duration,
}

/// Shard 0 sends `n` envelopes to shard 1, flushing every `batch`; a full queue is retried at
/// once (the best case of the backlog path). Wall time runs from the first send to the last
/// receive.
fn one_way(placements: &[Placement; 2], capacity: usize, batch: usize, n: usize) -> OneWay {
    let ((t0, send_cpu), (t1, recv_cpu)) = pair(
        placements,
        capacity,
        0,
        move |mut link: ShardLink| async move {
            let frame = shared_frame();
            let cpu0 = thread_cpu();
            let t0 = Instant::now();
            let mut sent = 0;
            while sent < n {
                let k = batch.min(n - sent);
                for i in 0..k {
                    link.send(ShardId(1), envelope(&frame, (sent + i) as u64));
                }
                sent += k;
                link.flush();
                while link.backlog_len() > 0 {
                    glommio::yield_if_needed().await;
                    link.flush();
                }
            }
            (t0, thread_cpu() - cpu0)
        },
        move |link: ShardLink| async move {
            let cpu0 = thread_cpu();
            let mut buf = Vec::with_capacity(DRAIN_BATCH);
            let mut got = 0;
            while got < n {
                poll_fn(|cx| link.poll_ready(cx)).await;
                link.drain(DRAIN_BATCH, &mut Vec::new(), &mut buf);
                got += buf.len();
                buf.clear();
                glommio::yield_if_needed().await;
            }
            (Instant::now(), thread_cpu() - cpu0)
        },
    );
    OneWay {
        wall: t1.saturating_duration_since(t0),
        send_cpu,
        recv_cpu,
    }
}

/// Shard 0 sends one envelope, shard 1 sends it back; `n` times in sequence. Returns each
/// round trip as seen by shard 0.
fn round_trips(
    placements: &[Placement; 2],
    capacity: usize,
    spin_us: u64,
    n: usize,
) -> Vec<Duration> {
    let (rtts, ()) = pair(
        placements,
        capacity,
        spin_us,
        move |mut link: ShardLink| async move {
            let frame = shared_frame();
            let mut buf = Vec::with_capacity(DRAIN_BATCH);
            let mut rtts = Vec::with_capacity(n);
            for i in 0..n {
                let t = Instant::now();
                link.send(ShardId(1), envelope(&frame, i as u64));
                link.flush();
                while buf.is_empty() {
                    poll_fn(|cx| link.poll_ready(cx)).await;
                    link.drain(DRAIN_BATCH, &mut Vec::new(), &mut buf);
                }
                rtts.push(t.elapsed());
                buf.clear();
            }
            rtts
        },
        move |mut link: ShardLink| async move {
            let mut buf = Vec::with_capacity(DRAIN_BATCH);
            let mut back = 0;
            while back < n {
                poll_fn(|cx| link.poll_ready(cx)).await;
                link.drain(DRAIN_BATCH, &mut Vec::new(), &mut buf);
                for env in buf.drain(..) {
                    link.send(ShardId(0), env);
                    back += 1;
                }
                link.flush();
            }
        },
    );
    rtts
}
