#!/usr/bin/env bash
# W3 and W4 on the PostgreSQL store beside the embedded store (both durable), with
# PostgreSQL-side figures: loadtest/RESULTS-history.md's "PostgreSQL store" section comes from it.
#
#   loadtest/pg-bench.sh            run every series, then print the tables
#   loadtest/pg-bench.sh summarize DIR
#
# For each run of the postgres series it starts from a new database on one throw-away
# PostgreSQL 15 (tests/pg.sh with fsync ON and synchronous_commit on: a real commit costs a
# real WAL flush), and samples pg_stat_database and pg_stat_wal every second. Each harness run
# measures one point; the rates reported (transactions, rows inserted, WAL flushes per second;
# messages per transaction; PostgreSQL's CPU) are the counters' change over that point's
# measurement window, cut from the samples by the run's end time.
#
# PostgreSQL runs on the same 2-vCPU machine, unpinned, so it competes with the server (core 0)
# and the generator (core 1): a handicap no production deployment has. The server CPU the harness
# reports is coretalk's alone; PostgreSQL's own CPU is printed beside it.
#
# Environment: RUNS [3] DUR [8] WARM [3] DRAIN [2] OUT [loadtest/results/pg-<stamp>]
#   W3_RATES [2500,10000]  W3_PAIRS [2000]  W4_RATE [50]  STORES [embedded,postgres]
# Build first: cargo build --release -p coretalk --bin coretalk -p coretalk-load
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-3}"
DUR="${DUR:-8}"
WARM="${WARM:-3}"
DRAIN="${DRAIN:-2}"
W3_RATES="${W3_RATES:-2500,10000}"
W3_PAIRS="${W3_PAIRS:-2000}"
W4_RATE="${W4_RATE:-50}"
STORES="${STORES:-embedded,postgres}"
LOAD="${LOAD:-$ROOT/target/release/coretalk-load}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
COMMON=(--server-cores 0 --client-cores 1 --duration "$DUR" --warmup "$WARM" --drain "$DRAIN" --store durable)

summarize() {
  loadtest/results.sh summarize "$1"
  python3 - "$1" "$DUR" "$DRAIN" <<'PY'
import json, statistics, sys
from pathlib import Path
out, dur, drain = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print("\n### PostgreSQL side (measurement window; median of runs, min-max)\n")
print("| series | point | acked msgs/s | transactions/s | rows inserted/s | msgs per transaction | WAL flushes/s | PostgreSQL CPU % |")
print("|---|---|---|---|---|---|---|---|")
def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m, lo, hi = statistics.median(xs), min(xs), max(xs)
    f = lambda v: f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
    return f(m) if lo == hi else f"{f(m)} ({f(lo)}–{f(hi)})"
def at(s, t):
    """Counters at time t, interpolated between the samples around it."""
    for a, b in zip(s, s[1:]):
        if a[0] <= t <= b[0]:
            k = (t - a[0]) / (b[0] - a[0])
            return [x + (y - x) * k for x, y in zip(a, b)]
    return None
hz = 100.0  # USER_HZ: /proc/PID/stat ticks
for series in sorted(p for p in out.iterdir() if p.is_dir() and p.name.endswith("-pg")):
    rows = {}
    for run in sorted(series.glob("run*")):
        samples, end = run / "pgstat.csv", run / "end"
        res = list(run.glob("*/result.json"))
        if not samples.exists() or not end.exists() or not res:
            continue
        r = json.loads(res[0].read_text())
        s = [list(map(float, l.split(","))) for l in samples.read_text().split() if l.count(",") == 6]
        # The harness exits a moment after the drain that follows the measurement: the window
        # is the DUR seconds before that drain (the server's stop is not subtracted: ~0.3 s).
        t1 = float(end.read_text()) - drain - 0.5
        a, b = at(s, t1 - dur), at(s, t1)
        if a is None or b is None or len(r["points"]) != 1:
            continue
        dt = b[0] - a[0]
        tx, ins, flush, cpu = ((b[i] - a[i]) / dt for i in (1, 2, 3, 5))
        p = r["points"][0]
        msgs = p["ops_per_s"] if r["workload"] == "w3" else p["ops_per_s"] / max(1, r["params"].get("subscribers", 1))
        rows.setdefault(p["label"], []).append((msgs, tx, ins, msgs / tx if tx else None, flush, cpu / hz * 100))
    for label, xs in rows.items():
        cols = list(zip(*xs))
        print(f"| {series.name} | {label} | " + " | ".join(med(list(c)) for c in cols) + " |")
PY
}

if [[ ${1:-} == summarize ]]; then
  summarize "${2:?summarize DIR}"
  exit 0
fi

OUT="${OUT:-$ROOT/loadtest/results/pg-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
pgdir="$(mktemp -d /tmp/coretalk-pgbench.XXXXXX)"
trap 'kill "${sampler:-0}" 2>/dev/null || true; tests/pg.sh stop "$pgdir"' EXIT
PG_FSYNC=on tests/pg.sh start "$pgdir" >"$OUT/pg.env"
base="$(sed 's/^CORETALK_TEST_PG=//' "$OUT/pg.env")"
psql() { "$PGBIN/psql" "$@"; }
echo "PostgreSQL at $base (fsync on, synchronous_commit on)" | tee -a "$OUT/load.log"

# Samples the database's counters every second: t, commits, rows inserted, WAL syncs, WAL
# writes, PostgreSQL CPU ticks (all its processes), 0.
sample() {
  local db="$1" f="$2"
  while :; do
    local t ticks stat
    t="$(date +%s.%N)"
    ticks="$(for p in $(pgrep -u postgres -f postgres); do awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null; done | awk '{s+=$1} END {print s+0}')"
    stat="$(psql "$base/$db" -Atc "select xact_commit, tup_inserted, (select wal_sync from pg_stat_wal), (select wal_write from pg_stat_wal) from pg_stat_database where datname = current_database()" 2>/dev/null | tr '|' ',')"
    [[ -n $stat ]] && echo "$t,$stat,$ticks,0" >>"$f"
    sleep 1
  done
}

# One point per harness run, so that the PostgreSQL counters can be cut to its window.
series_args() {
  case "$1" in
    w3-*) echo w3 --target coretalk --pairs "$W3_PAIRS" --rate "${1#w3-}" --topic-kind p2p "${COMMON[@]}" ;;
    w4) echo w4 --target coretalk --subscribers 1000 --rate "$W4_RATE" "${COMMON[@]}" ;;
  esac
}

SERIES=()
for r in ${W3_RATES//,/ }; do SERIES+=("w3-$r"); done
SERIES+=(w4)
for s in "${SERIES[@]}"; do
  for store in ${STORES//,/ }; do
    name="$s-$([[ $store == postgres ]] && echo pg || echo embedded)"
    for ((i = 1; i <= RUNS; i++)); do
      dir="$OUT/$name/run$i"
      mkdir -p "$dir"
      extra=()
      if [[ $store == postgres ]]; then
        db="bench_${s//-/_}_$i"
        psql "$base/postgres" -q -c "CREATE DATABASE $db"
        printf '[store]\nurl = "%s/%s"\n' "$base" "$db" >"$dir/server.toml"
        extra=(--server-config "$dir/server.toml")
        sample "$db" "$dir/pgstat.csv" &
        sampler=$!
      fi
      printf '%s %s run %d/%d: %s\n' "$(date -u +%FT%TZ)" "$name" "$i" "$RUNS" "$(uptime)" | tee -a "$OUT/load.log"
      # shellcheck disable=SC2046 # a word list
      "$LOAD" $(series_args "$s") "${extra[@]}" --results-dir "$dir" >"$dir/stdout.log" 2>"$dir/stderr.log" \
        || echo "pg-bench.sh: $name run $i exited non-zero (see $dir/stderr.log)" | tee -a "$OUT/load.log"
      date +%s.%N >"$dir/end"
      if [[ $store == postgres ]]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        sampler=
      fi
    done
  done
done
summarize "$OUT" | tee "$OUT/summary.md"
