#!/usr/bin/env bash
# Before/after in one run: the build of the 2026-11-27 series against the head, alternating, on
# this machine (server on core 0, generator on core 1, in-memory store, one shard). Each
# workload of issue 10 that the old build can serve:
#   W4 N = 1,000 @50/s and N = 128 @500/s, W3 2,000 pairs @2,500/s, W2 1,000 set-ups/s
#     (loadtest/ab.sh fanout|p2p|setup, PAIRS alternating runs per side);
#   W1 bytes per idle session, 1,000 → 10,000 sessions (W1_PAIRS alternating runs per side);
#   idle RSS by shard count (loadtest/idle-rss.sh's measure, REPEAT runs per point).
# W0 has no "before": the echo endpoint came with issue 10.
#   loadtest/then-now.sh OLD_BIN NEW_BIN      (OUT=dir, default loadtest/results/then-now-<time>)
# The old build is made with: git worktree add /tmp/old 8d9dd34 &&
#   (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old/target cargo build --release -p coretalk --bin coretalk)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOAD="${LOAD:-$ROOT/target/release/coretalk-load}"
OUT="${OUT:-$ROOT/loadtest/results/then-now-$(date -u +%Y%m%d-%H%M%S)}"
PAIRS="${PAIRS:-5}"
W1_PAIRS="${W1_PAIRS:-3}"
REPEAT="${REPEAT:-3}"
SHARDS="${SHARDS:-1 2 8 16}"
old=$1 new=$2
mkdir -p "$OUT"
echo "old: $old ($("$old" --version 2>/dev/null || echo "no --version"))" | tee "$OUT/builds.txt"
echo "new: $new ($("$new" --version 2>/dev/null || echo "no --version"))" | tee -a "$OUT/builds.txt"

# A build older than the gRPC listener and [limits] has neither (and no rate limits to lift).
grpc_flag() { if "$1" --help 2>&1 | grep -q -- --grpc-listen; then echo "--grpc-listen=$2"; fi; }
config() {
  printf '[auth]\nbcrypt_cost = 4\n[store]\ndurable = false\n'
  if "$1" --help 2>&1 | grep -q -- --grpc-listen; then
    printf '[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n'
  fi
}
start() { # BIN SHARDS CORES → sets PID, ADDR, DIR
  DIR=$(mktemp -d)
  config "$1" > "$DIR/c.toml"
  local g; g=$(grpc_flag "$1" "")
  taskset -c "$3" "$1" --listen 127.0.0.1:0 --data "$DIR/data" $g --shards "$2" --config "$DIR/c.toml" \
    > "$DIR/out" 2> "$DIR/err" &
  PID=$!
  for _ in $(seq 200); do grep -qs "^coretalk listening on" "$DIR/out" && break; sleep 0.1; done
  ADDR=$(grep -o "^coretalk listening on [0-9.:]*" "$DIR/out" | awk '{print $4}')
  [ -n "$ADDR" ] || { echo "the server did not start:" >&2; cat "$DIR/err" >&2; exit 1; }
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"; }

echo "== W4 (fanout), W3 (p2p), W2 (setup): $PAIRS alternating pairs each"
for mode in fanout p2p setup; do
  echo "-- $mode"
  OUT="$OUT/$mode" PAIRS="$PAIRS" LOAD="$LOAD" bash "$ROOT/loadtest/ab.sh" "$mode" "$old" "$new" \
    | tee "$OUT/$mode.txt"
done

echo "== W1: bytes per idle session, $W1_PAIRS alternating pairs" | tee "$OUT/w1.txt"
for run in $(seq "$W1_PAIRS"); do
  for side in old new; do
    bin=$([ $side = old ] && echo "$old" || echo "$new")
    d="$OUT/w1/$side-$run"
    mkdir -p "$d"
    start "$bin" 1 0
    "$LOAD" w1 --attach "$ADDR" --server-pid "$PID" --steps 1000,2500,5000,10000 --settle 3 \
      --client-cores 1 --results-dir "$d" > "$d.log" 2>&1 || true
    stop
    python3 - "$d" "$side run=$run" <<'PY' | tee -a "$OUT/w1.txt"
import glob, json, sys
f = sorted(glob.glob(sys.argv[1] + "/*/result.json"))
s = json.load(open(f[0]))["summary"] if f else {}
b = s.get("bytes_per_session")
print(f"{sys.argv[2]:16} " + (f"{b:8.0f} B per session" if b else "no result (see the log)"))
PY
  done
done

echo "== idle RSS by shard count ($REPEAT runs per point, median)" | tee "$OUT/shards.txt"
for side in old new; do
  bin=$([ $side = old ] && echo "$old" || echo "$new")
  for n in $SHARDS; do
    all=()
    for _ in $(seq "$REPEAT"); do
      start "$bin" "$n" "0-1"
      sleep 2
      all+=("$(awk '/^VmRSS/{print $2}' /proc/$PID/status)")
      stop
    done
    med=$(printf '%s\n' "${all[@]}" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
    echo "$side shards=$n rss_kib=$med (runs: ${all[*]})" | tee -a "$OUT/shards.txt"
  done
done
echo "files: $OUT"
