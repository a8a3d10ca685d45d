#!/usr/bin/env bash
# W7, the cluster: `coretalk-load w7` RUNS times on one throw-away PostgreSQL 15 (tests/pg.sh,
# fsync on), then a table of every (layout, part) point: median and min-max over the runs of
# server CPU per delivery (the nodes' sum), latency, and the ratios cross-node / same-node.
# loadtest/RESULTS-history.md's "Issue 12: W7" section comes from it.
#
#   loadtest/w7-bench.sh              run, then print the tables
#   loadtest/w7-bench.sh summarize DIR
#
# Every layout of every run starts fresh processes on a fresh database: `single` is one
# standalone server on PostgreSQL, `local`/`remote`/`spread` are NODES cluster nodes with one
# shard each, all pinned to core 0 (so the cluster gets the same CPU budget as one node, and
# server CPU is comparable); the generator runs on core 1 and PostgreSQL unpinned.
#
# Environment: RUNS [3] DUR [10] WARM [3] DRAIN [2] NODES [3] SUBS [1000] W4_RATE [50]
#   PAIRS [2000] W3_RATE [2500] LAYOUTS [single,local,remote,spread] OUT [loadtest/results/w7-<stamp>]
# Build first: cargo build --release -p coretalk --bin coretalk -p coretalk-load
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

summarize() {
  python3 - "$1" <<'PY'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
rows, meta = {}, None
for res in sorted(out.glob("run*/*/result.json")):
    r = json.loads(res.read_text())
    meta = meta or r
    for p in r["points"]:
        key = (p["extra"]["part"], p["extra"]["layout"])
        rows.setdefault(key, []).append(p)
def med(xs, f=lambda v: f"{v:,.1f}"):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m, lo, hi = statistics.median(xs), min(xs), max(xs)
    return f(m) if lo == hi else f"{f(m)} ({f(lo)}–{f(hi)})"
if meta:
    e = meta.get("env", {})
    print(f"machine: {e.get('machine','?')}, {e.get('cores','?')} CPUs, kernel {e.get('kernel','?')}, {e.get('rustc','?')}, "
          f"commit {e.get('git_commit','?')}{' (dirty)' if e.get('git_dirty') else ''}, runs: {len([d for d in out.glob("run*") if d.is_dir()])}\n")
print("| part | layout | deliveries/s | server CPU µs/delivery (nodes' sum) | p50 ms | p99 ms | p99.9 ms | lost | errors |")
print("|---|---|---|---|---|---|---|---|---|")
order = ["single", "local", "remote", "spread"]
cpu = {}
for part in ["w4", "w3"]:
    for lay in order:
        ps = rows.get((part, lay))
        if not ps:
            continue
        cpu[(part, lay)] = [p["cpu_us_per_op"] for p in ps]
        ms = lambda k: [p["latency"][k] / 1e3 if p["latency"].get(k) is not None else None for p in ps]
        print(f"| {part.upper()} | {lay} | {med([p['ops_per_s'] for p in ps], lambda v: f'{v:,.0f}')} | "
              f"{med(cpu[(part, lay)], lambda v: f'{v:,.2f}')} | {med(ms('p50_us'), lambda v: f'{v:.2f}')} | "
              f"{med(ms('p99_us'), lambda v: f'{v:.2f}')} | {med(ms('p999_us'), lambda v: f'{v:.2f}')} | "
              f"{sum(p['drops'] for p in ps)} | {sum(p['errors'] for p in ps)} |")
print("\n| part | ratio | median (min–max over runs) |\n|---|---|---|")
for part in ["w4", "w3"]:
    for a, b in [("remote", "local"), ("spread", "local"), ("local", "single")]:
        xa, xb = cpu.get((part, a)), cpu.get((part, b))
        if xa and xb:
            rs = [x / y for x, y in zip(xa, xb) if x and y]
            print(f"| {part.upper()} | {a} / {b} | {med(rs, lambda v: f'{v:.2f}')} |")
PY
}

if [[ "${1:-}" == summarize ]]; then
  summarize "$2"
  exit 0
fi

RUNS="${RUNS:-3}"
DUR="${DUR:-10}"
WARM="${WARM:-3}"
DRAIN="${DRAIN:-2}"
NODES="${NODES:-3}"
SUBS="${SUBS:-1000}"
W4_RATE="${W4_RATE:-50}"
PAIRS="${PAIRS:-2000}"
W3_RATE="${W3_RATE:-2500}"
LAYOUTS="${LAYOUTS:-single,local,remote,spread}"
LOAD="${LOAD:-$ROOT/target/release/coretalk-load}"
OUT="${OUT:-$ROOT/loadtest/results/w7-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
pgdir="$(mktemp -d /tmp/coretalk-w7-pg.XXXXXX)"
trap 'tests/pg.sh stop "$pgdir" >/dev/null 2>&1 || true' EXIT
pg="$(PG_FSYNC=on tests/pg.sh start "$pgdir")"
pg="${pg#CORETALK_TEST_PG=}"
echo "PostgreSQL: $pg; results in $OUT"
for i in $(seq 1 "$RUNS"); do
  echo "== run $i of $RUNS ($(date -u +%H:%M:%SZ))"
  "$LOAD" w7 --pg "$pg" --nodes "$NODES" --layouts "$LAYOUTS" \
    --subscribers "$SUBS" --fanout-rate "$W4_RATE" --pairs "$PAIRS" --pair-rate "$W3_RATE" \
    --server-cores 0 --client-cores 1 --duration "$DUR" --warmup "$WARM" --drain "$DRAIN" \
    --results-dir "$OUT/run$i" | tee "$OUT/run$i.txt"
done
summarize "$OUT" | tee "$OUT/summary.md"
