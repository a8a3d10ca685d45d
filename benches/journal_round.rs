//! A journal round, the durable store's hot path: one round's records written into a segment
//! and synced, as a shard's journal task does before it acknowledges the round's publishes
//! (`shard::journal_file`). Both ways a segment is written are measured side by side: direct
//! I/O into a segment zero-filled ahead (`store.journal_direct_io = true`, the default) and
//! buffered writes through the page cache (`false`, and the fallback where a filesystem refuses
//! direct I/O).
//!
//! Per round it reports the wall time (p50 and p99 of the rounds: the acknowledgement's wait
//! for the disk), the executor thread's CPU, and the whole process's CPU. The process's figure
//! includes the io_uring worker threads, which run a buffered round's `fdatasync` and its
//! write-back; the thread's does not. The segment is created before the timed rounds (a shard
//! prepares its next segment in the background), so neither figure holds the zero-fill.
//!
//! The segment lives in `CORETALK_BENCH_DIR` if set, else the system's temporary directory:
//! point it at the device the journal will use (`store.data_dir`); a tmpfs refuses direct I/O
//! and then both rows measure the buffered path (the output says so).
//!
//! `cargo bench --bench journal_round` runs the full table (about half a minute on a virtual
//! disk); without `--bench` (as `cargo test --benches` or `--all-targets` runs it) it is a smoke
//! run of a few rounds whose bytes are read back and checked.

mod common;
use common::{process_cpu, thread_cpu};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glommio::LocalExecutorBuilder;

use coretalk::shard::journal_file::SegmentFile;

/// Round sizes: one 300 B `{pub}` record (a quiet shard), 4 KiB, and 16 KiB (about W3's
/// 52 publishes of a 10 ms group at 2,500 msgs/s).
const ROUND_BYTES: [usize; 3] = [300, 4096, 16384];

/// What one series of rounds measured.
struct Measured {
    /// Wall time of each round (write and sync).
    walls: Vec<Duration>,
    thread_cpu: Duration,
    process_cpu: Duration,
    /// Whether the segment was written with direct I/O.
    direct: bool,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` runs bench targets without it.
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 2_000 } else { 8 };
    let dir = std::env::var_os("CORETALK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("journal-round-")
        .tempdir_in(&dir)
        .expect("a temporary directory for the segments");
    println!(
        "journal round: records written into a segment and synced, {rounds} rounds each, in {}{}",
        dir.path().display(),
        if full {
            ""
        } else {
            ", smoke run (use cargo bench for figures)"
        }
    );
    println!();
    println!(
        "{:>7}   {:<9} {:>9} {:>9} {:>15} {:>16}",
        "bytes", "segment", "p50 µs", "p99 µs", "thread CPU µs", "process CPU µs"
    );
    let mut refused = false;
    for bytes in ROUND_BYTES {
        for direct in [true, false] {
            let path = dir.path().join(format!("{bytes}-{direct}.seg"));
            let mut m = run(&path, bytes, rounds, direct);
            m.walls.sort_unstable();
            let per = |d: Duration| d.as_secs_f64() * 1e6 / rounds as f64;
            println!(
                "{bytes:>7}   {:<9} {:>9.1} {:>9.1} {:>15.1} {:>16.1}",
                if m.direct { "direct" } else { "buffered" },
                micros(percentile(&m.walls, 0.50)),
                micros(percentile(&m.walls, 0.99)),
                per(m.thread_cpu),
                per(m.process_cpu),
            );
            refused |= direct && !m.direct;
            std::fs::remove_file(&path).expect("remove the segment");
        }
    }
    if refused {
        println!();
        println!("this filesystem refused direct I/O: every row measured the buffered path");
    }
}

/// `rounds` rounds of `bytes` each into a new segment at `path`, on a glommio executor as a
/// shard runs them; the segment is then read back and every byte checked.
fn run(path: &Path, bytes: usize, rounds: usize, direct: bool) -> Measured {
    let owned = path.to_path_buf();
    let m = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let size = (bytes * rounds + (1 << 20)) as u64;
            let opened = SegmentFile::create(owned, size, direct)
                .await
                .expect("create the segment");
            let mut file = opened.file;
            let direct = file.is_direct();
            let mut walls = Vec::with_capacity(rounds);
            let (thread0, process0) = (thread_cpu(), process_cpu());
            let mut pos = 0u64;
            for round in 0..rounds {
                let t = Instant::now();
                file.write(content(round, bytes), pos)
                    .await
                    .expect("write a round");
                file.sync().await.expect("sync a round");
                walls.push(t.elapsed());
                pos += bytes as u64;
            }
            let (thread_cpu, process_cpu) = (thread_cpu() - thread0, process_cpu() - process0);
            file.close().await.expect("close the segment");
            Measured {
                walls,
                thread_cpu,
                process_cpu,
                direct,
            }
        })
        .expect("start an executor")
        .join()
        .expect("the executor's thread");
    let written = std::fs::read(path).expect("read the segment back");
    for round in 0..rounds {
        let at = round * bytes;
        assert!(
            written[at..at + bytes] == content(round, bytes)[..],
            "round {round} of {bytes} B reads back as written"
        );
    }
    m
}

/// A round's bytes: never zero (replay stops at a zero header), different in every round.
fn content(round: usize, bytes: usize) -> Vec<u8> {
    (0..bytes)
        .map(|i| 1 + ((round * 31 + i) % 251) as u8)
        .collect()
}

/// The value at fraction `q` of sorted `v`.
fn percentile(v: &[Duration], q: f64) -> Duration {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
