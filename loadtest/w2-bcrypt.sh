#!/usr/bin/env bash
# W2's second target: bcrypt logins never stall other sessions. One coretalk (one shard, core 0,
# auth.bcrypt_cost COST [8; one hash thread does ~15 hashes/s at 10 here], in-memory store) carries W3 (PAIRS P2P pairs at RATE msgs/s); in
# alternating runs a second generator adds basic-auth logins (a bcrypt check each) at
# LOGINS/s. Prints W3's p50/p99 with and without the logins, RUNS times each.
#   loadtest/w2-bcrypt.sh [BIN]      env: PAIRS [200] RATE [2500] LOGINS [50] RUNS [2] IDLE [true] NICE [19] COST [8] DELAY [10]
# IDLE sets auth.hash_sched_idle; with IDLE=false, NICE sets auth.hash_nice (0 to compare with the
# hash threads at the shards' priority).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-$ROOT/target/release/coretalk}"
LOAD="${LOAD:-$ROOT/target/release/coretalk-load}"
PAIRS="${PAIRS:-200}" RATE="${RATE:-2500}" LOGINS="${LOGINS:-50}" RUNS="${RUNS:-2}" NICE="${NICE:-19}"
IDLE="${IDLE:-true}"
COST="${COST:-8}" DELAY="${DELAY:-10}"
OUT="${OUT:-$ROOT/loadtest/results/w2-bcrypt-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
dir=$(mktemp -d)
printf '[auth]\nbcrypt_cost = %s\nhash_sched_idle = %s\nhash_nice = %s\n[store]\ndurable = false\n[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n' "$COST" "$IDLE" "$NICE" > "$dir/c.toml"
taskset -c 0 "$BIN" --listen 127.0.0.1:0 --grpc-listen "" --data "$dir/data" --shards 1 \
  --config "$dir/c.toml" > "$dir/out.log" 2> "$dir/err.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q "^coretalk listening on" "$dir/out.log" && break; sleep 0.1; done
addr=$(grep -o "^coretalk listening on [0-9.:]*" "$dir/out.log" | awk '{print $4}')
W3=(w3 --attach "$addr" --server-pid "$pid" --pairs "$PAIRS" --rate "$RATE" --topic-kind p2p
  --client-cores 1 --duration 10 --warmup 3 --drain 2)
W2=(w2 --attach "$addr" --server-pid "$pid" --login basic --rate "$LOGINS" --accounts 50
  --client-cores 1 --duration 25 --warmup 0 --drain 2)
point() {
  python3 - "$1" "$2" <<'PY'
import json, glob, sys
f = sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]
r = json.load(open(f)); p = r["points"][0]
print(f"{sys.argv[2]:24} p50 {p['latency']['p50_us']:8.0f} us  p99 {p['latency']['p99_us']:8.0f} us"
      f"  drops {p['drops']}  errors {p['errors']}")
PY
}
for run in $(seq "$RUNS"); do
  "$LOAD" "${W3[@]}" --results-dir "$OUT/alone-$run" > "$OUT/alone-$run.log" 2>&1
  point "$OUT/alone-$run" "W3 alone run $run"
  # W3 first creates its 2 x PAIRS accounts (bcrypt at COST), then measures; the logins start
  # DELAY s later (after those accounts exist) and cover its window.
  "$LOAD" "${W3[@]}" --results-dir "$OUT/with-$run" > "$OUT/with-$run.log" 2>&1 &
  w3=$!
  sleep "$DELAY"
  "$LOAD" "${W2[@]}" --results-dir "$OUT/logins-$run" > "$OUT/logins-$run.log" 2>&1 &
  w2=$!
  wait $w3 || true
  point "$OUT/with-$run" "W3 + logins run $run"
  wait $w2 || true
  point "$OUT/logins-$run" "basic logins run $run"
done
