#!/usr/bin/env bash
# W3 p99 at half of this VM's saturation (15,000 msgs/s), coretalk (in memory) beside nats-server
# and ws-sol, ROUNDS alternating rounds. From the repository root, after a release build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-3}
for i in $(seq 1 "$ROUNDS"); do
  for t in coretalk nats ws-sol; do
    extra=()
    [ "$t" = coretalk ] && extra=(--store memory)
    target/release/coretalk-load w3 --target "$t" "${extra[@]}" --pairs 2000 --rate 15000 \
      --topic-kind p2p --server-cores 0 --client-cores 1 --duration 8 --warmup 3 --drain 2 \
      --results-dir "$HERE/$t-$i" > "$HERE/$t-$i.out" 2>&1
    grep -E "msg/s" "$HERE/$t-$i.out" | grep -v "pub→" | sed "s/^/$t-$i /"
  done
done
