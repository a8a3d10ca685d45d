#!/usr/bin/env bash
# W3 A/B over rates and store modes: SIDES "name:bin:extra-toml" ...
set -euo pipefail
cd /work/main
source <(sed -n '/^serve() {/,/^}/p;/^unserve() {/,/^}/p' loadtest/ab.sh | sed 's/durable = false\\n/durable = '"'"'"$DURABLE"'"'"'\\n'"'"'"$EXTRA"'"'"'/')
OUT=${OUT:-/tmp/ab9/sat2}; mkdir -p $OUT
for run in ${RUNS_LIST:-1 2}; do for mode in ${MODES:-false true}; do for side in $SIDES; do
  name=${side%%:*}; rest=${side#*:}; bin=${rest%%:*}; EXTRA=${rest#*:}
  DURABLE=$mode; d=$OUT/$name-$mode-$run; rm -rf $d
  serve $bin ""
  ./target/release/coretalk-load w3 --attach "$SRV_ADDR" --server-pid "$SRV_PID" --pairs 2000 --rate ${RATES:-2500,10000,20000,30000} --topic-kind p2p \
    --client-cores 1 --duration 8 --warmup 3 --drain 2 --results-dir $d > $d.log 2>&1 || true
  unserve
  python3 - $d "$name durable=$mode run=$run" <<'PY'
import json, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/*/result.json")):
    for p in json.load(open(f))["points"]:
        print(f"{sys.argv[2]:28} offered {p['offered_per_s']:7.0f} got {p['ops_per_s']:8.0f}/s cpu {p['cpu_us_per_op']:6.2f} us  p50 {p['latency']['p50_us']/1000:7.2f} p99 {p['latency']['p99_us']/1000:8.2f} ms drops {p['drops']} srvcpu {p['server_cpu_pct']:.0f}%")
PY
done; done; done
