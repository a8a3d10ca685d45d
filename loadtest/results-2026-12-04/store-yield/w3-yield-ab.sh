#!/usr/bin/env bash
# Not part of the build. W3 at RATE with store.yield_every_us (and, in one experiment, CT_IDLE_BELOW) per run; needs the not-kept diff applied.
# W3 2,000 pairs at RATE, 1 shard on core 0: store.yield_every_us values YS, alternating, same binary
set -euo pipefail
cd /work/main
BIN=${BIN:-/tmp/ab/yield}; RATE=${RATE:-20000}; OUT=${OUT:-/tmp/ab/yield-out}; rm -rf $OUT; mkdir -p $OUT
for run in $(seq ${N:-3}); do for yi in ${YS:-0:0 100:0}; do y=${yi%%:*}; IB=${yi##*:}
  D=$(mktemp -d)
  printf '[auth]\nbcrypt_cost = 4\n[store]\ndurable = false\nyield_every_us = %s\n[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n' $y > $D/c.toml
  CT_IDLE_BELOW=$IB taskset -c 0 $BIN --listen 127.0.0.1:0 --data $D/data --grpc-listen "" --shards 1 --config $D/c.toml > $D/out.log 2> $D/err.log &
  P=$!
  for _ in $(seq 100); do grep -q "^coretalk listening on" $D/out.log && break; sleep 0.1; done
  A=$(grep -o "^coretalk listening on [0-9.:]*" $D/out.log | awk '{print $4}')
  d=$OUT/y$y-ib$IB-r$RATE-$run
  ./target/release/coretalk-load w3 --attach "$A" --server-pid "$P" --pairs 2000 --rate $RATE --topic-kind p2p \
    --client-cores 1 --duration 8 --warmup 3 --drain 2 --results-dir $d > $d.log 2>&1
  kill $P; wait $P 2>/dev/null || true; rm -rf $D
  python3 - $d $yi <<'PY'
import json, glob, sys
p = json.load(open(sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]))["points"][0]
l=p['latency']
print(f"yield:idle_below={sys.argv[2]:>8} {p['cpu_us_per_op']:6.2f} us/op p50 {l['p50_us']:8.0f} p99 {l['p99_us']:8.0f} p99.9 {l.get('p999_us',0):8.0f} drops {p['drops']} errors {p['errors']}")
PY
done; done
