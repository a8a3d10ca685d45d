#!/usr/bin/env bash
# System calls, io_uring requests submitted and completions, and context switches of the server per operation, from `perf stat`
# over 5 s in the middle of a W3 (2,000 pairs at 2,500/s) or W0 (100 connections, 20 B at
# 20,000/s) run; one shard on core 0, generator on core 1, in-memory store.
#   instr.sh w3|w0 BIN LABEL   (prints one line; needs perf and target/release/coretalk-load)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
LOAD="$ROOT/target/release/coretalk-load"
w=$1 bin=$2 label=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '[auth]\nbcrypt_cost = 4\n[store]\ndurable = false\n[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n[ws]\necho_path = "/echo"\n' > "$dir/c.toml"
taskset -c 0 "$bin" --listen 127.0.0.1:0 --grpc-listen "" --data "$dir/data" --shards 1 --config "$dir/c.toml" > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q "^coretalk listening on" "$dir/out" && break; sleep 0.1; done
addr=$(grep -o "^coretalk listening on [0-9.:]*" "$dir/out" | awk '{print $4}')
case $w in
  w3) args=(w3 --pairs 2000 --rate 2500 --topic-kind p2p); rate=2500; at=12 ;;
  w0) args=(w0 --target coretalk --connections 100 --payload 20 --rate 20000); rate=20000; at=6 ;;
esac
( sleep $at; perf stat -x, -e raw_syscalls:sys_enter,io_uring:io_uring_submit_req,io_uring:io_uring_complete,context-switches -p $pid -- sleep 5 2> "$dir/stat" ) &
sp=$!
"$LOAD" "${args[@]}" --attach "$addr" --server-pid $pid --duration 12 --warmup 3 --client-cores 1 --no-results > "$dir/load" 2>&1
wait $sp || true
kill -INT $pid; wait $pid 2>/dev/null || true
python3 - "$dir/stat" "$rate" "$label" <<'PY'
import sys
vals = {}
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].replace(".", "").isdigit():
        vals[f[2]] = float(f[0])
ops = float(sys.argv[2]) * 5
g = lambda k: vals.get(k, 0) / ops
print(f"{sys.argv[3]:12} per op: system calls {g('raw_syscalls:sys_enter'):5.2f}  io_uring requests {g('io_uring:io_uring_submit_req'):5.2f}"
      f"  completions {g('io_uring:io_uring_complete'):5.2f}  context switches {g('context-switches'):5.2f}")
PY
