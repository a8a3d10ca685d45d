#!/usr/bin/env bash
# Idle memory by shard count: starts `coretalk --shards N` (no sessions, in-memory store) for each
# N given, reads VmRSS 2 s after it listens, stops it. Extra TOML lines may be given in EXTRA.
#   loadtest/idle-rss.sh target/release/coretalk 1 2 8 16 32
#   EXTRA='[runtime]\nring_depth = 128\n' loadtest/idle-rss.sh target/release/coretalk 16 32
set -euo pipefail
bin=$1; shift
for n in "$@"; do
  dir=$(mktemp -d)
  printf "[store]\ndurable = false\n${EXTRA:-}" > "$dir/c.toml"
  "$bin" --listen 127.0.0.1:0 --data "$dir/data" --shards "$n" --config "$dir/c.toml" \
    > "$dir/out" 2> "$dir/err" &
  pid=$!
  for _ in $(seq 200); do grep -q "^coretalk listening on" "$dir/out" && break; sleep 0.1; done
  sleep 2
  echo "shards=$n rss_kib=$(awk '/VmRSS/{print $2}' /proc/$pid/status)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
done
