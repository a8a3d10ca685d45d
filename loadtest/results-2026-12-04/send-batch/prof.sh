#!/usr/bin/env bash
# W3/W4 profile: server on core 0, generator on core 1; perf record of the server.
# env: KIND (w3|w4) RATE N EXTRA (toml) OUTD
set -euo pipefail
ROOT=/work/main
BIN=${BIN:-$ROOT/target/release/coretalk}
LOAD=$ROOT/target/release/coretalk-load
OUTD=${OUTD:-/tmp/p1/out}
mkdir -p $OUTD
D=$(mktemp -d)
printf '[auth]\nbcrypt_cost = 4\n[store]\ndurable = false\n[topic]\nmax_subscriber_count = 100000\n[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n%b' "${EXTRA:-}" > $D/c.toml
taskset -c 0 $BIN --listen 127.0.0.1:0 --data $D/data --grpc-listen "" --shards 1 --config $D/c.toml > $D/out.log 2> $D/err.log &
PID=$!
for _ in $(seq 100); do grep -q "^coretalk listening on" $D/out.log && break; sleep 0.1; done
ADDR=$(grep -o "^coretalk listening on [0-9.:]*" $D/out.log | awk '{print $4}')
if [ "${KIND:-w3}" = w3 ]; then
  $LOAD w3 --attach $ADDR --server-pid $PID --pairs 2000 --rate ${RATE:-2500} --topic-kind p2p --client-cores 1 --duration 14 --warmup 3 --drain 2 --results-dir $OUTD/res > $OUTD/load.log 2>&1 &
else
  $LOAD w4 --attach $ADDR --server-pid $PID --subscribers ${N:-128} --rate ${RATE:-500} --client-cores 1 --duration 14 --warmup 3 --drain 2 --results-dir $OUTD/res > $OUTD/load.log 2>&1 &
fi
LP=$!
sleep 8
perf record -F 2999 -g -p $PID -o $OUTD/perf.data -- sleep 8 2> /dev/null > /dev/null
wait $LP || true
kill $PID; wait $PID 2>/dev/null || true
rm -rf $D
perf report -i $OUTD/perf.data --no-children --sort comm,dso,sym --stdio 2>/dev/null | grep -v "^$" | grep "%" | head -${TOP:-60} > $OUTD/top.txt
perf report -i $OUTD/perf.data --no-children --sort comm --stdio 2>/dev/null | grep "%" | head > $OUTD/comm.txt
