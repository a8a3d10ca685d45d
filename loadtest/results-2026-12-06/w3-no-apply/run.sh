#!/usr/bin/env bash
# W3 2,000 pairs at 2,500/s: the head, the head with the store's volatile apply skipped
# (CT_HACK_NO_APPLY, no-apply.diff), and nats-server; PAIRS rounds, alternating.
set -u
L=$(cd "$(dirname "$0")/../../.." && pwd)/target/release/coretalk-load; OUT=${OUT:?a results folder}
for r in $(seq ${PAIRS:-5}); do
  for side in head hack nats; do
    d=$OUT/$side-$r
    case $side in
      head) env -u CT_HACK_NO_APPLY $L w3 --server-bin ${HEAD_BIN:?a build of the head} --store memory --pairs 2000 --rate 2500 --topic-kind p2p --server-cores 0 --client-cores 1 --duration 8 --warmup 3 --drain 2 --results-dir $d > $d.log 2>&1 ;;
      hack) CT_HACK_NO_APPLY=1 $L w3 --server-bin ${HACK_BIN:?a build with no-apply.diff} --store memory --pairs 2000 --rate 2500 --topic-kind p2p --server-cores 0 --client-cores 1 --duration 8 --warmup 3 --drain 2 --results-dir $d > $d.log 2>&1 ;;
      nats) $L w3 --target nats --pairs 2000 --rate 2500 --topic-kind p2p --server-cores 0 --client-cores 1 --duration 8 --warmup 3 --drain 2 --results-dir $d > $d.log 2>&1 ;;
    esac
    echo "$side $r $(grep -E '^2500 msg/s' $d.log | awk '{print "cpu_us="$(NF-3), "p50="$5, "p99="$6}')"
  done
done
