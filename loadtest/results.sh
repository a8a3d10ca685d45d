#!/usr/bin/env bash
# Reproduces the tables of loadtest/RESULTS.md: runs each series RUNS times through
# coretalk-load (each run on freshly started servers), keeps every run's result.json and
# prints median and spread (min-max) per target and point.
#
#   loadtest/results.sh [SERIES...]       run the series (default: all, in the order below)
#   loadtest/results.sh summarize DIR     only print the tables of an earlier output DIR
#
# Series: w4-128 w4-1000 w4-sat w4-durable w3 w3-sat w6 w1, and (not run by default)
# w4-max (coretalk and mosquitto, N = 1,000, rates W4_MAX_RATES), w3-durable (coretalk,
# durable store, W3_RATES), w3-sat-durable (W3_SAT_RATES, durable), w0 (coretalk vs the
# baseline, 100 connections, 20 B and 1 KB at W0_RATE), w6place (remote vs local subscribers)
#
# Environment (defaults in brackets):
#   RUNS [5]  runs per point (W1 uses W1_RUNS [3])   DUR [8]  measured s   WARM [3]  warm-up s
#   DRAIN [2] drain s   OUT [loadtest/results/series-<UTC stamp>]   LOAD [target/release/coretalk-load]
#   W4_128_RATE [500]  W4_1000_RATE [50]  W4_SAT_RATE [200]  W3_PAIRS [2000]  W3_RATES [2500]
#   W3_SAT_RATES [10000,20000] (coretalk only)
#   W1_STEPS [1000,2500,5000,10000]  W1_SETTLE [3]  PEERS [coretalk,baseline,nats,mosquitto]
#
# Build first: cargo build --release -p coretalk --bin coretalk -p coretalk-load -p coretalk-baseline
# and loadtest/peers.sh install. The server is pinned to core 0 and the generator to core 1
# (W6: server on cores 0-1, the generator on core 1 shares one of them). Before every run the
# script appends `uptime` to OUT/load.log: do not compare runs made on a busy machine.
# Needs python3 (standard library only).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-5}"
W1_RUNS="${W1_RUNS:-3}"
DUR="${DUR:-8}"
WARM="${WARM:-3}"
DRAIN="${DRAIN:-2}"
LOAD="${LOAD:-$ROOT/target/release/coretalk-load}"
PEERS="${PEERS:-coretalk,baseline,nats,mosquitto}"
W4_128_RATE="${W4_128_RATE:-500}"
W4_1000_RATE="${W4_1000_RATE:-50}"
W4_SAT_RATE="${W4_SAT_RATE:-200}"
W3_PAIRS="${W3_PAIRS:-2000}"
W3_RATES="${W3_RATES:-2500}"
W3_SAT_RATES="${W3_SAT_RATES:-10000,20000}"
W1_STEPS="${W1_STEPS:-1000,2500,5000,10000}"
W1_SETTLE="${W1_SETTLE:-3}"
W4_MAX_RATES="${W4_MAX_RATES:-100,200,300,400}"
W0_RATE="${W0_RATE:-20000}"
ALL=(w4-128 w4-1000 w4-sat w4-durable w3 w3-sat w6 w1)

COMMON=(--server-cores 0 --client-cores 1 --duration "$DUR" --warmup "$WARM" --drain "$DRAIN")

# One series: the harness arguments (after the binary) for one run.
series_args() {
  case "$1" in
    w4-128) echo compare w4 --subscribers 128 --rate "$W4_128_RATE" --peers "$PEERS" "${COMMON[@]}" ;;
    w4-1000) echo compare w4 --subscribers 1000 --rate "$W4_1000_RATE" --peers "$PEERS" "${COMMON[@]}" ;;
    w4-sat) echo w4 --target coretalk --subscribers 1000 --rate "$W4_SAT_RATE" "${COMMON[@]}" ;;
    w4-durable) echo w4 --target coretalk --store durable --subscribers 1000 --rate "$W4_1000_RATE" "${COMMON[@]}" ;;
    w3) echo compare w3 --pairs "$W3_PAIRS" --rate "$W3_RATES" --topic-kind p2p --peers "$PEERS" "${COMMON[@]}" ;;
    w3-sat) echo w3 --target coretalk --pairs "$W3_PAIRS" --rate "$W3_SAT_RATES" --topic-kind p2p "${COMMON[@]}" ;;
    w4-max) echo compare w4 --subscribers 1000 --rate "$W4_MAX_RATES" --peers coretalk,mosquitto "${COMMON[@]}" ;;
    w3-durable) echo w3 --target coretalk --store durable --pairs "$W3_PAIRS" --rate "$W3_RATES" --topic-kind p2p "${COMMON[@]}" ;;
    w3-sat-durable) echo w3 --target coretalk --store durable --pairs "$W3_PAIRS" --rate "$W3_SAT_RATES" --topic-kind p2p "${COMMON[@]}" ;;
    w0) echo compare w0 --connections 100 --payload 20,1024 --rate "$W0_RATE" --peers coretalk,baseline "${COMMON[@]}" ;;
    w6place) echo w6 --placement local,remote,split --subscribers 1000 --rate "$W4_1000_RATE" \
      --server-cores 0 --client-cores 1 --duration "$DUR" --warmup "$WARM" --drain "$DRAIN" ;;
    w6) echo w6 --subscribers 1000 --rate "$W4_1000_RATE" --shards-list 1,2 --server-cores 0-1 \
      --client-cores 1 --duration "$DUR" --warmup "$WARM" --drain "$DRAIN" ;;
    w1) echo compare w1 --steps "$W1_STEPS" --settle "$W1_SETTLE" --peers "$PEERS" \
      --server-cores 0 --client-cores 1 ;;
    *) echo "results.sh: unknown series '$1' (${ALL[*]})" >&2; return 2 ;;
  esac
}

run_series() {
  local s="$1" n="$RUNS" i args
  [[ $s == w1 ]] && n="$W1_RUNS"
  args="$(series_args "$s")"
  for ((i = 1; i <= n; i++)); do
    local dir="$OUT/$s/run$i"
    mkdir -p "$dir"
    printf '%s %s run %d/%d: %s\n' "$(date -u +%FT%TZ)" "$s" "$i" "$n" "$(uptime)" | tee -a "$OUT/load.log"
    # shellcheck disable=SC2086 # args is a word list built above
    if ! "$LOAD" $args --results-dir "$dir" >"$dir/stdout.log" 2>"$dir/stderr.log"; then
      echo "results.sh: $s run $i exited non-zero (see $dir/stderr.log)" | tee -a "$OUT/load.log"
    fi
  done
  printf '%s %s done: %s\n' "$(date -u +%FT%TZ)" "$s" "$(uptime)" | tee -a "$OUT/load.log"
}

summarize() {
  python3 - "$1" <<'PY'
import json, os, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])

def med(xs):
    xs = [x for x in xs if x is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else None

def fmt(t, prec=0, scale=1.0):
    if t is None:
        return "-"
    m, lo, hi = (v * scale for v in t)
    f = lambda v: f"{v:,.{prec}f}"
    return f"{f(m)} ({f(lo)}–{f(hi)})" if hi != lo else f(m)

def get(d, *path):
    for k in path:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d

def runs(series):
    res = []
    for rj in sorted((out / series).glob("run*/*/result.json")):
        r = json.loads(rj.read_text())
        r["_run"] = rj.parent.parent.name
        res.append(r)
    return res

for series in sorted(p.name for p in out.iterdir() if p.is_dir()):
    rs = runs(series)
    if not rs:
        continue
    print(f"\n### {series}  ({len({r['_run'] for r in rs})} runs)\n")
    targets = []
    for r in rs:
        if r["target"] not in targets:
            targets.append(r["target"])
    bad = [f"{r['target']} {r['_run']}: {r['status']} {r['message']}" for r in rs if r["status"] != "ok"]
    if rs[0]["workload"] == "w1":
        print("| target | bytes/session (RSS slope) | idle CPU % at top | RSS MiB at top | sessions at top | set-up sessions/s at top step | errors |")
        print("|---|---|---|---|---|---|---|")
        for t in targets:
            tr = [r for r in rs if r["target"] == t and r["status"] == "ok"]
            if not tr:
                continue
            bps = med([get(r, "summary", "bytes_per_session") for r in tr])
            idle = med([get(r, "summary", "idle_cpu_pct_at_top") for r in tr])
            top = med([(r["points"][-1].get("server_rss_kib") or 0) / 1024 for r in tr])
            held = med([get(r["points"][-1], "extra", "held") for r in tr])
            rate = med([r["points"][-1]["ops_per_s"] for r in tr])
            errs = sum(sum(p["errors"] for p in r["points"]) for r in tr)
            print(f"| {t} | {fmt(bps)} | {fmt(idle, 2)} | {fmt(top, 1)} | {fmt(held)} | {fmt(rate)} | {errs} |")
        print("\nRSS (MiB) by step, median of runs:\n")
        steps = sorted({s["sessions"] for r in rs for s in (get(r, 'summary', 'ramp') or [])})
        print("| target | " + " | ".join(str(s) for s in steps) + " |")
        print("|---|" + "---|" * len(steps))
        for t in targets:
            tr = [r for r in rs if r["target"] == t and r["status"] == "ok"]
            cells = []
            for s in steps:
                v = med([x.get("rss_kib") for r in tr for x in get(r, "summary", "ramp") or [] if x["sessions"] == s])
                cells.append(f"{v[0]/1024:.1f}" if v else "-")
            print(f"| {t} | " + " | ".join(cells) + " |")
    else:
        print("| target | point | deliveries/s | p50 µs | p99 µs | p99.9 µs | max µs | server CPU µs/op | server CPU % | RSS MiB | client CPU % | drops (sum) | errors (sum) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        rows = {}
        for t in targets:
            tr = [r for r in rs if r["target"] == t and r["status"] == "ok"]
            labels = []
            for r in tr:
                for p in r["points"]:
                    if p["label"] not in labels:
                        labels.append(p["label"])
            for lab in labels:
                ps = [p for r in tr for p in r["points"] if p["label"] == lab]
                row = {
                    "ops": med([p["ops_per_s"] for p in ps]),
                    "p50": med([p["latency"]["p50_us"] for p in ps]),
                    "p99": med([p["latency"]["p99_us"] for p in ps]),
                    "p999": med([p["latency"]["p999_us"] for p in ps]),
                    "max": med([p["latency"]["max_us"] for p in ps]),
                    "cpu": med([p.get("cpu_us_per_op") for p in ps]),
                    "pct": med([p.get("server_cpu_pct") for p in ps]),
                    "rss": med([(p.get("server_rss_kib") or 0) / 1024 for p in ps]),
                    "cli": med([p.get("client_cpu_pct") for p in ps]),
                    "drops": sum(p["drops"] for p in ps),
                    "errors": sum(p["errors"] for p in ps),
                    "n": len(ps),
                    "extra": [p.get("extra") for p in ps],
                }
                rows[(t, lab)] = row
                print(f"| {t} | {lab} | {fmt(row['ops'])} | {fmt(row['p50'])} | {fmt(row['p99'])} | {fmt(row['p999'])} | {fmt(row['max'])} | {fmt(row['cpu'], 2)} | {fmt(row['pct'], 1)} | {fmt(row['rss'], 1)} | {fmt(row['cli'], 0)} | {row['drops']} | {row['errors']} |")
        # Ratios coretalk / peer of the medians, point by point (same position in the sweep).
        ct = [(lab, row) for (t, lab), row in rows.items() if t == "coretalk"]
        peers = [t for t in targets if t != "coretalk"]
        if ct and peers and rs[0]["workload"] != "w6":
            print("\nRatios of medians, coretalk / peer (throughput: >1 favours coretalk; CPU and latency: <1 favours coretalk):\n")
            print("| peer | point # | deliveries/s | server CPU µs/op | p50 | p99 |")
            print("|---|---|---|---|---|---|")
            for t in peers:
                pl = [(lab, row) for (tt, lab), row in rows.items() if tt == t]
                for i, ((_, a), (_, b)) in enumerate(zip(ct, pl)):
                    def q(k):
                        if a[k] is None or b[k] is None or not b[k][0]:
                            return "-"
                        return f"{a[k][0] / b[k][0]:.2f}x"
                    print(f"| {t} | {i + 1} | {q('ops')} | {q('cpu')} | {q('p50')} | {q('p99')} |")
        if rs[0]["workload"] == "w6":
            print("\nW6 mesh figures (median (min–max) over runs):\n")
            print("| point | envelopes/message | hops (doorbell rings)/message | remote-session fraction | sessions per shard (run 1) | deliveries per server CPU-s |")
            print("|---|---|---|---|---|---|")
            for (t, lab), row in rows.items():
                ex = [e for e in row["extra"] if e]
                epm = med([e.get("envelopes_per_message") for e in ex])
                hpm = med([e.get("hops_per_message") for e in ex])
                rem = med([e.get("remote_session_fraction") for e in ex])
                dps = med([e.get("deliveries_per_cpu_second") for e in ex])
                sps = ex[0].get("sessions_per_shard") if ex else None
                print(f"| {lab} | {fmt(epm, 3)} | {fmt(hpm, 3)} | {fmt(rem, 3)} | {sps} | {fmt(dps)} |")
            def ratios(key):
                return [x.get("ratio") for r in rs for x in (get(r, "summary", key) or [])]
            if ratios("remote_vs_local"):
                print(f"\nRemote vs local delivery (server CPU per delivery, per run): {fmt(med(ratios('remote_vs_local')), 3)}; split vs local {fmt(med(ratios('split_vs_local')), 3)}")
            effs = [e.get("efficiency_per_cpu") for r in rs for e in (get(r, "summary", "efficiency_vs_1_shard") or [])]
            thr = [e.get("throughput_ratio") for r in rs for e in (get(r, "summary", "efficiency_vs_1_shard") or [])]
            print(f"\nEfficiency of 2 shards vs 1 (deliveries per CPU-s): {fmt(med(effs), 3)}; throughput ratio {fmt(med(thr), 3)}")
    for b in bad:
        print(f"\n- not ok: {b}")
PY
}

if [[ ${1:-} == summarize ]]; then
  [[ -d ${2:-} ]] || { echo "usage: results.sh summarize DIR" >&2; exit 2; }
  summarize "$2"
  exit 0
fi

[[ -x $LOAD ]] || { echo "results.sh: $LOAD missing (cargo build --release -p coretalk-load)" >&2; exit 1; }
OUT="${OUT:-$ROOT/loadtest/results/series-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
SERIES=("$@")
((${#SERIES[@]})) || SERIES=("${ALL[@]}")
for s in "${SERIES[@]}"; do series_args "$s" >/dev/null; done
{
  echo "# results.sh $(date -u +%FT%TZ) commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src || echo ' (src dirty)')"
  echo "# RUNS=$RUNS W1_RUNS=$W1_RUNS DUR=$DUR WARM=$WARM DRAIN=$DRAIN series: ${SERIES[*]}"
} | tee -a "$OUT/load.log"
for s in "${SERIES[@]}"; do run_series "$s"; done
summarize "$OUT" | tee "$OUT/summary.md"
echo "results.sh: $OUT/summary.md"
