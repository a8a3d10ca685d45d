#!/usr/bin/env bash
# io_uring_enter, membarrier, sendto per W2 set-up: perf stat per second over a W2 run at 1,000/s, median of the busy seconds
# usage: SIDES="base sleep2" bash count.sh, with release builds at /tmp/ct-SIDE (base = 8dab9de, sleep2 = fa6d339, fence = fa6d339 + fence.diff); run from anywhere
set -euo pipefail
cd /work/main
source <(sed -n '/^serve() {/,/^}/p;/^unserve() {/,/^}/p' loadtest/ab.sh)
for run in 1 2; do
for side in ${SIDES:-base sleep2}; do
  serve /tmp/ct-$side ""
  perf stat -I 1000 -x, -e syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_membarrier,syscalls:sys_enter_sendto -p $SRV_PID -o /tmp/ab8/perf-$side-$run.csv &
  ppid=$!
  ./target/release/coretalk-load w2 --attach "$SRV_ADDR" --server-pid "$SRV_PID" --rate 1000 --duration 12 --warmup 4 \
    --client-cores 1 --results-dir /tmp/ab8/cnt-$side-$run > /tmp/ab8/cnt-$side-$run.log 2>&1
  kill -INT $ppid; wait $ppid || true
  unserve
  python3 - /tmp/ab8/perf-$side-$run.csv $side $run <<'PY'
import sys, statistics, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith('#') or not line.strip(): continue
    f = line.split(',')
    try: d[f[3].split(':')[-1]].append(float(f[1]))
    except: pass
# busy seconds: sendto within 10 % of the peak second's count (5 sends per set-up)
s = d['sys_enter_sendto']; peak = sorted(s)[-3]
busy = [i for i, v in enumerate(s) if v > 0.9 * peak]
out = [f"{sys.argv[2]:6} run {sys.argv[3]}: {len(busy)} busy s"]
for k in ('sys_enter_io_uring_enter', 'sys_enter_membarrier', 'sys_enter_sendto'):
    out.append(f"{k[10:]} {statistics.median(d[k][i] for i in busy)/1000:.2f}/set-up")
print("  ".join(out))
PY
done
done
