#!/usr/bin/env bash
# W3 profile: serve BIN, run W3, perf record 5 s mid-run, and syscall counts over 5 s
set -euo pipefail
cd /work/main
source <(sed -n '/^serve() {/,/^}/p;/^unserve() {/,/^}/p' loadtest/ab.sh | sed 's/durable = false\\n/durable = false\\n'"${STORE_EXTRA:-}"'/')
BIN=${BIN:-target/release/coretalk}; TAG=${TAG:-main}
rm -rf /tmp/p1/w3-$TAG; serve $BIN "${EXTRA:-}"
./target/release/coretalk-load w3 --attach "$SRV_ADDR" --server-pid "$SRV_PID" --pairs 2000 --rate 2500 --topic-kind p2p \
   --client-cores 1 --duration 14 --warmup 3 --drain 2 --results-dir /tmp/p1/w3-$TAG > /tmp/p1/w3-$TAG.log 2>&1 &
LP=$!
sleep 1
if [ -n "${STORE_PRIO:-}" ]; then
  for t in /proc/$SRV_PID/task/*; do
    if [ "$(cat $t/comm)" = coretalk-store ]; then tid=${t##*/}; if [ "$STORE_PRIO" = idle ]; then chrt -i -p 0 $tid; else renice -n $STORE_PRIO -p $tid >/dev/null; fi; fi
  done
fi
sleep 7
if [ "${MODE:-perf}" = perf ]; then
  perf record -F ${FREQ:-1999} ${PERF_G:--g} ${PERF_T:-} -p $SRV_PID -o /tmp/p1/perf-$TAG.data -- sleep 5 2>/dev/null >/dev/null
else
  perf stat -x, -e 'syscalls:sys_enter_*' -p $SRV_PID -o /tmp/p1/sys-$TAG.csv -- sleep 5 || true
fi
wait $LP
unserve
python3 - /tmp/p1/w3-$TAG <<'PY'
import json, glob, sys
p = json.load(open(sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]))["points"][0]
print(f"{p['cpu_us_per_op']:.2f} us/op p50 {p['latency']['p50_us']} p99 {p['latency']['p99_us']} drops {p['drops']}")
PY
