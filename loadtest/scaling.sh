#!/usr/bin/env bash
# Multi-core scaling of coretalk on a many-core host (issue 10: "run W4 and W6 from 1 to 8
# shards"). One prepared run, about four minutes on 16 cores:
#
#   1. W4, one group of N = 1,000 subscribers, at 1, 2, 4 and 8 shards, each shard count on a
#      fresh server pinned to cores 0..S-1; the offered rate sweeps S x W4_PER_SHARD msgs/s, so
#      the same per-shard load is offered at every shard count.
#   2. W6's shard sweep (1,2,4,8 at one fixed rate): server CPU per delivery and the
#      efficiency of S shards against 1, mesh envelopes per message.
#   3. W6's placement runs on 2 shards: local, remote and split subscribers.
#
# The clients run on their own cores (CLIENT_CORES), several worker processes, so that client
# reading does not set the latency. Every point's result.json lands under OUT; machine,
# kernel, commit and core list go to OUT/machine.txt.
#
#   loadtest/scaling.sh                      (after cargo build --release -p coretalk
#                                             --bin coretalk and -p coretalk-load)
# Environment (defaults in brackets):
#   BIN [target/release]  directory with coretalk and coretalk-load
#   OUT [loadtest/results/scaling-<UTC stamp>]
#   SHARDS ["1 2 4 8"]  CLIENT_CORES [8-15]  CLIENTS [8]
#   W4_PER_SHARD [100,250,400,550]  (msgs/s per shard; x1,000 deliveries each)
#   W4_GROUPS [1]  (step 1's subscribers spread over this many groups, whose home shards
#                   spread their master work; a message then has 1,000 / W4_GROUPS
#                   deliveries, so multiply W4_PER_SHARD by it for the same deliveries)
#   W6_RATE [200]  DUR [4]  WARM [2]  DRAIN [1]
#   PLACEMENT [1]  (0 skips step 3)
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BIN="${BIN:-$ROOT/target/release}"
OUT="${OUT:-$ROOT/loadtest/results/scaling-$(date -u +%Y%m%dT%H%M%SZ)}"
SHARDS="${SHARDS:-1 2 4 8}"
CLIENT_CORES="${CLIENT_CORES:-8-15}"
CLIENTS="${CLIENTS:-8}"
W4_PER_SHARD="${W4_PER_SHARD:-100,250,400,550}"
W4_GROUPS="${W4_GROUPS:-1}"
W6_RATE="${W6_RATE:-200}"
DUR="${DUR:-4}"
WARM="${WARM:-2}"
DRAIN="${DRAIN:-1}"
PLACEMENT="${PLACEMENT:-1}"
LOAD="$BIN/coretalk-load"
SERVER="$BIN/coretalk"
mkdir -p "$OUT"

# 1,000 subscribers per run need far fewer descriptors, but raise the cap where allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "kernel: $(uname -r)"
  echo "cpus: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo
  free -g | sed -n 2p
  echo "open files: $(ulimit -n)"
  echo "server: $SERVER ($("$SERVER" --version 2>&1 | head -1))"
  echo "shards: $SHARDS; clients: $CLIENTS on cores $CLIENT_CORES"
  echo "W4 per shard: $W4_PER_SHARD msgs/s; W6 rate: $W6_RATE; dur/warm/drain: $DUR/$WARM/$DRAIN"
} | tee "$OUT/machine.txt"

COMMON=(--server-bin "$SERVER" --client-cores "$CLIENT_CORES" --clients "$CLIENTS"
  --duration "$DUR" --warmup "$WARM" --drain "$DRAIN")

run() {
  local name="$1"
  shift
  echo "== $name ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
  mkdir -p "$OUT/$name"
  if ! "$LOAD" "$@" --results-dir "$OUT/$name" >"$OUT/$name/stdout.log" 2>"$OUT/$name/stderr.log"; then
    echo "scaling.sh: $name exited non-zero:"
    tail -5 "$OUT/$name/stderr.log"
  fi
  # The harness's table: the points' rows.
  grep -E 'offered/s|subs (in [0-9]+ groups )?@|summary' "$OUT/$name/stdout.log" | head -40
}

for s in $SHARDS; do
  rates=$(python3 -c "import sys; print(','.join(str(int(x) * $s) for x in '$W4_PER_SHARD'.split(',')))")
  run "w4-s$s" w4 --target coretalk --shards "$s" --server-cores "0-$((s - 1))" \
    --subscribers 1000 --groups "$W4_GROUPS" --rate "$rates" "${COMMON[@]}"
done

max=0
for s in $SHARDS; do ((s > max)) && max=$s; done
run w6-sweep w6 --subscribers 1000 --rate "$W6_RATE" --shards-list "${SHARDS// /,}" \
  --server-cores "0-$((max - 1))" "${COMMON[@]}"

if [[ $PLACEMENT == 1 ]]; then
  run w6-place w6 --placement local,remote,split --subscribers 1000 --rate "$W6_RATE" \
    --server-cores 0-1 "${COMMON[@]}"
fi
echo "== done $(date -u +%T)"
