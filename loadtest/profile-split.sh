#!/usr/bin/env bash
# Where the server's CPU goes under W3 (2,000 pairs at 2,500/s) and W4 (N = 1,000 at 50/s), or
# W2 (1,000 token set-ups/s) when named:
# one shard on core 0 (in memory), the generator on core 1, 5 s of `perf record --call-graph
# dwarf` of the whole server per workload, split into buckets by loadtest/profile-split.py.
#   loadtest/profile-split.sh BIN OUTDIR [WORKLOAD...]   (w2, w3, w4; default w3 w4; needs perf
#   and target/release/coretalk-load)
# Writes OUTDIR/<workload>-split.txt (the buckets, the shares by binary and the top symbols) and
# each load's output. RESULTS.md "Where the CPU goes" comes from it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOAD="${LOAD:-$ROOT/target/release/coretalk-load}"
bin=$1 out=$2
shift 2
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(w3 w4)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

prof() { # NAME LOAD_ARGS...
  local name=$1; shift
  rm -rf "$work/data"
  printf '[auth]\nbcrypt_cost = 4\n[store]\ndurable = false\n[topic]\nmax_subscriber_count = 1016\n[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n' > "$work/c.toml"
  taskset -c 0 "$bin" --listen 127.0.0.1:0 --grpc-listen "" --data "$work/data" --shards 1 \
    --config "$work/c.toml" > "$work/$name.out" 2> "$work/$name.err" &
  local pid=$!
  for _ in $(seq 100); do grep -q "^coretalk listening on" "$work/$name.out" && break; sleep 0.1; done
  local addr
  addr=$(grep -o "^coretalk listening on [0-9.:]*" "$work/$name.out" | awk '{print $4}')
  # The profile covers 5 s in the middle of the 16 s measured (after set-up and warm-up).
  ( sleep 14; perf record -F 2999 --call-graph dwarf,16384 -p "$pid" -o "$work/$name.data" -- sleep 5 \
      > /dev/null 2>&1 ) &
  local perf_pid=$!
  "$LOAD" "$@" --attach "$addr" --server-pid "$pid" --duration 16 --warmup 3 --client-cores 1 \
    --no-results > "$out/$name.load.txt" 2>&1
  wait "$perf_pid" || true
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  perf script -i "$work/$name.data" -F comm,tid,ip,sym > "$work/$name.script" 2>/dev/null
  {
    echo "# $name: perf record -F 2999 --call-graph dwarf for 5 s of the server (1 shard, core 0, in memory), split by loadtest/profile-split.py; load: $*"
    python3 "$ROOT/loadtest/profile-split.py" "$work/$name.script"
    echo "# shares by binary (self)"
    perf report -i "$work/$name.data" --no-children --sort dso -g none -q 2>/dev/null | grep -v '^$' | head -6 || true
    echo "# top symbols (self)"
    perf report -i "$work/$name.data" --no-children --sort sym -g none -q 2>/dev/null | grep -v '^$' | head -25 || true
  } > "$out/$name-split.txt"
  echo "$out/$name-split.txt"
}

for w in "${workloads[@]}"; do
  case $w in
    w2) prof w2 w2 --rate 1000 ;;
    w3) prof w3 w3 --pairs 2000 --rate 2500 --topic-kind p2p ;;
    w4) prof w4 w4 --subscribers 1000 --rate 50 ;;
    *) echo "unknown workload $w (w2, w3, w4)" >&2; exit 2 ;;
  esac
done
