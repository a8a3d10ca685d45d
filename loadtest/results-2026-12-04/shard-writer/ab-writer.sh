#!/usr/bin/env bash
# A/B of ws.shard_writer in one binary: W4 (N = 1,000 at 50/s and N = 128 at 500/s) and W3
# (2,000 pairs at 2,500/s), and on request (WORKLOADS) W2 (1,000 token set-ups/s): writer off
# and on alternating, RUNS times (default 3).
#   loadtest/results-2026-12-04/shard-writer/ab-writer.sh BIN OUT
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=$1 OUT=$2 RUNS=${RUNS:-3}
LOAD=target/release/coretalk-load
mkdir -p "$OUT"
COMMON=(--client-cores 1 --duration 8 --warmup 3 --drain 2)
point() {
  python3 - "$1" "$2" <<'PY'
import json, glob, sys
f = sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]
p = json.load(open(f))["points"][0]
print(f"{sys.argv[2]:34} {p['cpu_us_per_op']:8.2f} us/op  p50 {p['latency']['p50_us']/1000:8.2f} ms"
      f"  p99 {p['latency']['p99_us']/1000:8.2f} ms  drops {p['drops']}  errors {p['errors']}")
PY
}
for run in $(seq "$RUNS"); do
  for side in off on; do
    printf '[ws]\nshard_writer = %s\n' "$([ $side = on ] && echo true || echo false)" > "$OUT/$side.toml"
    for w in ${WORKLOADS:-w4-1000 w4-128 w3}; do
      d="$OUT/$w-$side-$run"
      case $w in
        w4-1000) args=(w4 --subscribers 1000 --rate 50) ;;
        w4-128) args=(w4 --subscribers 128 --rate 500) ;;
        w3) args=(w3 --pairs 2000 --rate 2500 --topic-kind p2p) ;;
        w2) args=(w2 --rate 1000) ;;
      esac
      "$LOAD" "${args[@]}" --target coretalk --server-bin "$BIN" --server-config "$OUT/$side.toml" \
        --server-cores 0 "${COMMON[@]}" --results-dir "$d" > "$d.log" 2>&1 || echo "$w $side $run failed"
      point "$d" "$w writer=$side run=$run"
    done
  done
done
