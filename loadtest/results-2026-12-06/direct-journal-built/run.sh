#!/usr/bin/env bash
# A/B of the journal's direct I/O (built, store.journal_direct_io) against buffered writes:
# durable W3, 2,000 pairs, 2,500 and 10,000 msgs/s, one shard on core 0, PAIRS alternating pairs.
# Usage (from the repository root, after a release build): loadtest/results-2026-12-06/direct-journal-built/run.sh
# (the saturation check: TAG=sat- PAIRS=3 RATES=20000,25000)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PAIRS=${PAIRS:-5}
RATES=${RATES:-2500,10000}
TAG=${TAG:-}
for i in $(seq 1 "$PAIRS"); do
  for v in buffered direct; do
    target/release/coretalk-load w3 --store durable --server-config "$HERE/$v.toml" --pairs 2000 \
      --rate "$RATES" --topic-kind p2p --server-cores 0 --client-cores 1 --duration 8 --warmup 3 \
      --drain 2 --results-dir "$HERE/$TAG$v$i" > "$HERE/$TAG$v$i.out" 2>&1
    grep -E "msg/s" "$HERE/$TAG$v$i.out" | sed "s/^/$TAG$v$i /"
  done
done
