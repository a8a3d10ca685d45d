#!/usr/bin/env bash
# The transport figures of loadtest/RESULTS-history.md: coretalk's long polling (W5) against the
# plain-HTTP speed of light, and coretalk with gRPC clients beside WebSocket clients (W3, W4).
# Every run starts its own server (pinned to core 0; the generator on core 1); each variant of
# a series is run RUNS times, the variants interleaved run by run; every run's result.json is
# kept and the summary prints median and spread (min-max) per variant and point.
#
#   loadtest/results-transports.sh [SERIES...]     run the series (default: all, in this order)
#   loadtest/results-transports.sh summarize DIR   only print the tables of an earlier OUT
#
# Series and their variants:
#   w5       W5, W5_SESSIONS long-polling sessions; the sweep is in deliveries/s (W5_DELIVERIES):
#            coretalk-lp    coretalk long polling, publishes/s = deliveries/s / W5_SESSIONS
#            http-sol-close plain HTTP, one request per connection (coretalk's LP pattern)
#            http-sol       plain HTTP, keep-alive connections (wrk's pattern)
#   w3       W3, W3_PAIRS p2p pairs at W3_RATES msgs/s: coretalk-ws, coretalk-grpc
#   w4-128   W4, 128 subscribers at W4_128_RATE msgs/s: coretalk-ws, coretalk-grpc
#   w4-1000  W4, 1,000 subscribers at W4_1000_RATE msgs/s: coretalk-ws, coretalk-grpc
#
# Environment (defaults in brackets):
#   RUNS [5]  DUR [8] measured s  WARM [3] warm-up s  DRAIN [2] s
#   OUT [loadtest/results/transports-<UTC stamp>]  LOAD [target/release/coretalk-load]
#   W5_SESSIONS [100]  W5_DELIVERIES [5000,10000,15000,20000,25000,30000,40000]
#   KNEE_P99_MS [50] a W5 point counts as sustained when its median p99 is at most this
#   W3_PAIRS [2000]  W3_RATES [2500]  W4_128_RATE [500]  W4_1000_RATE [50]
#   (the W3/W4 rates are those of the results.sh series in RESULTS-history.md, issue 9)
#
# Duration with the defaults: ~40 min on the 2-core machine (w5 ~25 min: 5 runs x 3
# variants x 7 points of WARM+DUR+drain; w3 ~4 min; w4-128 ~4 min; w4-1000 ~5 min).
# Validation: RUNS=1 DUR=3 WARM=1 DRAIN=1 (~5 min).
#
# Build first: cargo build --release -p coretalk --bin coretalk -p coretalk-load
# Before every run the script appends `uptime` to OUT/load.log: do not compare runs made on a
# busy machine. Needs python3 (standard library only).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-5}"
DUR="${DUR:-8}"
WARM="${WARM:-3}"
DRAIN="${DRAIN:-2}"
LOAD="${LOAD:-$ROOT/target/release/coretalk-load}"
W5_SESSIONS="${W5_SESSIONS:-100}"
W5_DELIVERIES="${W5_DELIVERIES:-5000,10000,15000,20000,25000,30000,40000}"
W3_PAIRS="${W3_PAIRS:-2000}"
W3_RATES="${W3_RATES:-2500}"
W4_128_RATE="${W4_128_RATE:-500}"
W4_1000_RATE="${W4_1000_RATE:-50}"
ALL=(w5 w3 w4-128 w4-1000)

COMMON=(--server-cores 0 --client-cores 1 --duration "$DUR" --warmup "$WARM" --drain "$DRAIN")

# Publishes per second for coretalk: each publish is delivered to every session.
w5_pub_rates() {
  python3 -c 'import sys; s=int(sys.argv[2]); print(",".join(f"{float(d)/s:g}" for d in sys.argv[1].split(",")))' \
    "$W5_DELIVERIES" "$W5_SESSIONS"
}

variants() {
  case "$1" in
    w5) echo coretalk-lp http-sol-close http-sol ;;
    w3 | w4-128 | w4-1000) echo coretalk-ws coretalk-grpc ;;
    *) echo "results-transports.sh: unknown series '$1' (${ALL[*]})" >&2; return 2 ;;
  esac
}

# The harness arguments (after the binary) for one run of a series' variant.
variant_args() {
  local s="$1" v="$2" grpc=()
  [[ $v == coretalk-grpc ]] && grpc=(--transport grpc)
  case "$s/$v" in
    w5/coretalk-lp) echo w5 --target coretalk --transport lp --sessions "$W5_SESSIONS" --rate "$(w5_pub_rates)" "${COMMON[@]}" ;;
    w5/http-sol-close) echo w5 --target http-sol --transport lp --sessions "$W5_SESSIONS" --rate "$W5_DELIVERIES" --http-close "${COMMON[@]}" ;;
    w5/http-sol) echo w5 --target http-sol --transport lp --sessions "$W5_SESSIONS" --rate "$W5_DELIVERIES" "${COMMON[@]}" ;;
    w3/*) echo w3 --target coretalk "${grpc[@]}" --pairs "$W3_PAIRS" --rate "$W3_RATES" --topic-kind p2p "${COMMON[@]}" ;;
    w4-128/*) echo w4 --target coretalk "${grpc[@]}" --subscribers 128 --rate "$W4_128_RATE" "${COMMON[@]}" ;;
    w4-1000/*) echo w4 --target coretalk "${grpc[@]}" --subscribers 1000 --rate "$W4_1000_RATE" "${COMMON[@]}" ;;
    *) echo "results-transports.sh: no variant $v in $s" >&2; return 2 ;;
  esac
}

run_series() {
  local s="$1" i v args
  for ((i = 1; i <= RUNS; i++)); do
    for v in $(variants "$s"); do
      local dir="$OUT/$s/$v/run$i"
      mkdir -p "$dir"
      args="$(variant_args "$s" "$v")"
      printf '%s %s %s run %d/%d: %s\n' "$(date -u +%FT%TZ)" "$s" "$v" "$i" "$RUNS" "$(uptime)" | tee -a "$OUT/load.log"
      # shellcheck disable=SC2086 # args is a word list built above
      if ! "$LOAD" $args --results-dir "$dir" >"$dir/stdout.log" 2>"$dir/stderr.log"; then
        echo "results-transports.sh: $s $v run $i exited non-zero (see $dir/stderr.log)" | tee -a "$OUT/load.log"
      fi
    done
  done
  printf '%s %s done: %s\n' "$(date -u +%FT%TZ)" "$s" "$(uptime)" | tee -a "$OUT/load.log"
}

summarize() {
  python3 - "$1" "${KNEE_P99_MS:-50}" <<'PY'
import json, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])
KNEE_P99_MS = float(sys.argv[2])

def med(xs):
    xs = [x for x in xs if x is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else None

def fmt(t, prec=0):
    if t is None:
        return "-"
    m, lo, hi = t
    f = lambda v: f"{v:,.{prec}f}"
    return f"{f(m)} ({f(lo)}–{f(hi)})" if hi != lo else f(m)

def ratio(a, b, prec=2):
    if a is None or b is None or not b[0]:
        return "-"
    return f"{a[0] / b[0]:.{prec}f}x"

def load(series, variant):
    res = []
    for rj in sorted((out / series / variant).glob("run*/*/result.json")):
        r = json.loads(rj.read_text())
        r["_run"] = rj.parent.parent.name
        res.append(r)
    return res

def fanout(r):
    # coretalk W5: one publish is delivered to every session; http-sol: one request, one op.
    if r["workload"] == "w5" and r["target"] != "http-sol":
        return r["params"]["sessions"]
    if r["workload"] == "w4":
        return r["params"]["subscribers"]
    return 1

def rows_of(rs):
    """Per point index: medians over runs."""
    ok = [r for r in rs if r["status"] == "ok"]
    n = max((len(r["points"]) for r in ok), default=0)
    rows = []
    for i in range(n):
        ps = [(r, r["points"][i]) for r in ok if len(r["points"]) > i]
        cpu_s = lambda p: (p.get("server_cpu_pct") or 0) / 100
        rows.append({
            "offered": med([p["offered_per_s"] * fanout(r) for r, p in ps]),
            "ops": med([p["ops_per_s"] for _, p in ps]),
            "p50": med([p["latency"]["p50_us"] for _, p in ps]),
            "p99": med([p["latency"]["p99_us"] for _, p in ps]),
            "p999": med([p["latency"]["p999_us"] for _, p in ps]),
            "cpu": med([p.get("cpu_us_per_op") for _, p in ps]),
            "pct": med([p.get("server_cpu_pct") for _, p in ps]),
            "percore": med([p["ops_per_s"] / cpu_s(p) if cpu_s(p) > 0 else None for _, p in ps]),
            "cli": med([p.get("client_cpu_pct") for _, p in ps]),
            "drops": sum(p["drops"] for _, p in ps),
            "errors": sum(p["errors"] for _, p in ps),
            "n": len(ps),
        })
    return rows

for series in [s for s in ("w5", "w3", "w4-128", "w4-1000") if (out / s).is_dir()]:
    variants = sorted(p.name for p in (out / series).iterdir() if p.is_dir())
    order = ["coretalk-lp", "http-sol-close", "http-sol", "coretalk-ws", "coretalk-grpc"]
    variants.sort(key=lambda v: order.index(v) if v in order else 99)
    table = {}
    print(f"\n### {series}\n")
    print("| variant | offered ops/s | ops/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/op | server CPU % | ops per server CPU-s | client CPU % | drops (sum) | errors (sum) | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    bad = []
    for v in variants:
        rs = load(series, v)
        bad += [f"{v} {r['_run']}: {r['status']} {r['message']}" for r in rs if r["status"] != "ok"]
        rows = rows_of(rs)
        table[v] = rows
        for row in rows:
            print(f"| {v} | {fmt(row['offered'])} | {fmt(row['ops'])} | {fmt(row['p50'])} | {fmt(row['p99'])} | {fmt(row['p999'])} | {fmt(row['cpu'], 2)} | {fmt(row['pct'], 1)} | {fmt(row['percore'])} | {fmt(row['cli'])} | {row['drops']} | {row['errors']} | {row['n']} |")
    if series == "w5":
        ct = table.get("coretalk-lp", [])
        print(f"\nKnee: the highest offered point each variant sustains (median ops/s ≥ 97 % of offered and median p99 ≤ {KNEE_P99_MS} ms):\n")
        print("| variant | highest sustained offered/s | ops/s there | p99 µs there | ops per server CPU-s there | best ops per server CPU-s (any point) |")
        print("|---|---|---|---|---|---|")
        for v in [x for x in ("coretalk-lp", "http-sol-close", "http-sol") if x in table]:
            rows = table[v]
            ok = [r for r in rows if r["ops"] and r["offered"] and r["ops"][0] >= 0.97 * r["offered"][0]
                  and r["p99"] and r["p99"][0] <= KNEE_P99_MS * 1000]
            top = ok[-1] if ok else None
            best = max((r["percore"][0] for r in rows if r["percore"]), default=None)
            print(f"| {v} | {fmt(top['offered']) if top else '-'} | {fmt(top['ops']) if top else '-'} | {fmt(top['p99']) if top else '-'} | {fmt(top['percore']) if top else '-'} | {f'{best:,.0f}' if best else '-'} |")
        print("\nTargets: W5 ≥ 30,000 LP deliveries/s per core (floor 15k): read 'ops per server CPU-s' and the")
        print("knee of coretalk-lp; ≥ 0.5x the plain-HTTP speed of light: the ratios below.\n")
        print("| point # | offered/s | coretalk / http-sol-close: ops/s | CPU µs/op | ops per CPU-s | coretalk / http-sol: ops/s | CPU µs/op | ops per CPU-s |")
        print("|---|---|---|---|---|---|---|---|")
        for i, a in enumerate(ct):
            c = table.get("http-sol-close", [])
            k = table.get("http-sol", [])
            c = c[i] if i < len(c) else None
            k = k[i] if i < len(k) else None
            g = lambda b, key: ratio(a[key], b[key]) if b else "-"
            print(f"| {i + 1} | {fmt(a['offered'])} | {g(c, 'ops')} | {g(c, 'cpu')} | {g(c, 'percore')} | {g(k, 'ops')} | {g(k, 'cpu')} | {g(k, 'percore')} |")
    else:
        ws, gr = table.get("coretalk-ws", []), table.get("coretalk-grpc", [])
        if ws and gr:
            print("\nRatios of medians, gRPC / WebSocket (CPU and latency: < 1 favours gRPC):\n")
            print("| point # | ops/s | server CPU µs/op | p50 | p99 |")
            print("|---|---|---|---|---|")
            for i, (a, b) in enumerate(zip(gr, ws)):
                print(f"| {i + 1} | {ratio(a['ops'], b['ops'])} | {ratio(a['cpu'], b['cpu'])} | {ratio(a['p50'], b['p50'])} | {ratio(a['p99'], b['p99'])} |")
    for b in bad:
        print(f"\n- not ok: {b}")
PY
}

if [[ ${1:-} == summarize ]]; then
  [[ -d ${2:-} ]] || { echo "usage: results-transports.sh summarize DIR" >&2; exit 2; }
  summarize "$2"
  exit 0
fi

[[ -x $LOAD ]] || { echo "results-transports.sh: $LOAD missing (cargo build --release -p coretalk-load)" >&2; exit 1; }
OUT="${OUT:-$ROOT/loadtest/results/transports-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
SERIES=("$@")
((${#SERIES[@]})) || SERIES=("${ALL[@]}")
for s in "${SERIES[@]}"; do variants "$s" >/dev/null; done
{
  echo "# results-transports.sh $(date -u +%FT%TZ) commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src loadtest/src || echo ' (src dirty)')"
  echo "# RUNS=$RUNS DUR=$DUR WARM=$WARM DRAIN=$DRAIN W5_SESSIONS=$W5_SESSIONS W5_DELIVERIES=$W5_DELIVERIES W3_PAIRS=$W3_PAIRS W3_RATES=$W3_RATES W4_128_RATE=$W4_128_RATE W4_1000_RATE=$W4_1000_RATE series: ${SERIES[*]}"
} | tee -a "$OUT/load.log"
for s in "${SERIES[@]}"; do run_series "$s"; done
summarize "$OUT" | tee "$OUT/summary.md"
echo "results-transports.sh: $OUT/summary.md"
