//! Scratch study (2026-12-05), not part of the build: one redb 4.6 file, 2,000 topics of 40
//! messages each; then (A) each message inserted under its topic, (topic, seq), (B) each
//! message appended to one log table keyed by a global counter, (C) the log moved under the
//! topics in one transaction (read in order, sorted in memory, inserted, the log dropped).
//! Build: a crate with `redb = "=4.6.0"` and `mimalloc` (Cargo.toml.txt); run
//! `taskset -c 1 target/release/redbx GROUP`.
use redb::{Database, Durability, ReadableTable, TableDefinition};
use std::time::Instant;
#[global_allocator]
static A: mimalloc::MiMalloc = mimalloc::MiMalloc;
const MSG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const TOPICS: u64 = 2000;
fn main() {
    let dir = std::env::temp_dir().join(format!("redbx{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Database::create(dir.join("x.redb")).unwrap();
    let names: Vec<String> = (0..TOPICS).map(|t| format!("p2p{t:022}")).collect();
    let val = vec![7u8; 180];
    let mut seqs = vec![0u64; TOPICS as usize];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % TOPICS
    };
    // preload 40 msgs per topic
    {
        let mut t = db.begin_write().unwrap();
        {
            let mut m = t.open_table(MSG).unwrap();
            for tp in 0..TOPICS {
                for s in 1..=40 {
                    m.insert((names[tp as usize].as_str(), s), val.as_slice())
                        .unwrap();
                }
                seqs[tp as usize] = 40;
            }
            t.open_table(LOG).unwrap();
        }
        t.commit().unwrap();
    }
    let group: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(52);
    let rounds = 400_000 / group;
    // A: per-topic inserts
    let t0 = Instant::now();
    for _ in 0..rounds {
        let mut t = db.begin_write().unwrap();
        t.set_durability(Durability::None).unwrap();
        {
            let mut m = t.open_table(MSG).unwrap();
            for _ in 0..group {
                let tp = next() as usize;
                seqs[tp] += 1;
                m.insert((names[tp].as_str(), seqs[tp]), val.as_slice())
                    .unwrap();
            }
        }
        t.commit().unwrap();
    }
    let a = t0.elapsed().as_nanos() as f64 / (rounds * group) as f64;
    // B: global log appends
    let mut g = 0u64;
    let t0 = Instant::now();
    let mut pending: Vec<(usize, u64, u64)> = Vec::new();
    for _ in 0..rounds {
        let mut t = db.begin_write().unwrap();
        t.set_durability(Durability::None).unwrap();
        {
            let mut l = t.open_table(LOG).unwrap();
            for _ in 0..group {
                let tp = next() as usize;
                seqs[tp] += 1;
                g += 1;
                l.insert(g, val.as_slice()).unwrap();
                pending.push((tp, seqs[tp], g));
            }
        }
        t.commit().unwrap();
    }
    let b = t0.elapsed().as_nanos() as f64 / (rounds * group) as f64;
    // C: migrate everything: read the log in order, sort by topic in memory, insert, drop the log
    let _ = &mut pending;
    let n = pending.len();
    let t0 = Instant::now();
    {
        let mut t = db.begin_write().unwrap();
        t.set_durability(Durability::None).unwrap();
        {
            let l = t.open_table(LOG).unwrap();
            let mut rows: Vec<(usize, u64, Vec<u8>)> = Vec::with_capacity(n);
            let mut i = 0;
            for r in l.range(0u64..).unwrap() {
                let (_k, v) = r.unwrap();
                let (tp, s, _) = pending[i];
                rows.push((tp, s, v.value().to_vec()));
                i += 1;
            }
            rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            let mut m = t.open_table(MSG).unwrap();
            for (tp, s, v) in &rows {
                m.insert((names[*tp].as_str(), *s), v.as_slice()).unwrap();
            }
        }
        t.delete_table(LOG).unwrap();
        t.open_table(LOG).unwrap();
        t.commit().unwrap();
    }
    let c = t0.elapsed().as_nanos() as f64 / n as f64;
    println!("group {group}: per-topic insert {a:.0} ns/msg; log append {b:.0} ns/msg; migrate {c:.0} ns/msg ({} msgs, {:.0}/topic)", pending.len(), pending.len() as f64/TOPICS as f64);
    let _ = std::fs::remove_dir_all(&dir);
}
