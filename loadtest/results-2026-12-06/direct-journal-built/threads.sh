#!/usr/bin/env bash
# Per-thread CPU of the server (../direct-journal/tot.py: totals per thread-name group over the server's life)
# for one run of each variant at RATES (default 2500,25000). From the repository root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RATES=${RATES:-2500,25000}
N=${N:-1}
for v in buffered direct; do
  python3 "$HERE/../direct-journal/tot.py" > "$HERE/thr-$v$N.txt" &
  target/release/coretalk-load w3 --store durable --server-config "$HERE/$v.toml" --pairs 2000 \
    --rate "$RATES" --topic-kind p2p --server-cores 0 --client-cores 1 --duration 8 --warmup 3 \
    --drain 2 --results-dir "$HERE/thr-$v$N" > "$HERE/thr-$v$N.out" 2>&1
  wait
  grep -E "msg/s" "$HERE/thr-$v$N.out" | sed "s/^/thr-$v$N /"; cat "$HERE/thr-$v$N.txt"
done
