#!/usr/bin/env bash
# W3 in memory at half of this VM's saturation: store.group_target_ops 128 (default) against
# smaller targets, alternating, PAIRS rounds. From the repository root, after a release build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PAIRS=${PAIRS:-4}
RATES=${RATES:-15000}
VARIANTS=${VARIANTS:-t128 t32 t16}
for i in $(seq 1 "$PAIRS"); do
  for v in $VARIANTS; do
    target/release/coretalk-load w3 --store memory --server-config "$HERE/$v.toml" --pairs 2000 \
      --rate "$RATES" --topic-kind p2p --server-cores 0 --client-cores 1 --duration 8 --warmup 3 \
      --drain 2 --results-dir "$HERE/$v-$i" > "$HERE/$v-$i.out" 2>&1
    grep -E "msg/s" "$HERE/$v-$i.out" | sed "s/^/$v-$i /"
  done
done
