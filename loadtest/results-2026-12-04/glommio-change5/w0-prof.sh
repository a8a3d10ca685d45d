#!/usr/bin/env bash
# W0 profile: serve BIN with ws.echo_path, run W0 20 B, perf record / stat 5 s mid-run
set -euo pipefail
cd /work/main
source <(sed -n '/^serve() {/,/^}/p;/^unserve() {/,/^}/p' loadtest/ab.sh)
BIN=${BIN:-target/release/coretalk}; TAG=${TAG:-main}
rm -rf /tmp/w0/r-$TAG; serve $BIN '[ws]\necho_path = "/echo"\n'
./target/release/coretalk-load w0 --attach "$SRV_ADDR" --server-pid "$SRV_PID" --connections 100 --rate 20000 --payload 20 \
   --client-cores 1 --duration 12 --warmup 3 --drain 2 --results-dir /tmp/w0/r-$TAG > /tmp/w0/r-$TAG.log 2>&1 &
LP=$!
sleep 7
if [ "${MODE:-perf}" = perf ]; then
  perf record -F 1999 ${PERF_G:--g} -p $SRV_PID -o /tmp/w0/perf-$TAG.data -- sleep 5 2>/dev/null >/dev/null
elif [ "${MODE}" = stat ]; then
  perf stat -x, -e 'syscalls:sys_enter_*' -p $SRV_PID -o /tmp/w0/sys-$TAG.csv -- sleep 5 || true
fi
wait $LP
unserve
python3 - /tmp/w0/r-$TAG <<'PY'
import json, glob, sys
p = json.load(open(sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]))["points"][0]
print(f"{p['cpu_us_per_op']:.2f} us/op p50 {p['latency']['p50_us']} p99 {p['latency']['p99_us']} drops {p['drops']}")
PY
