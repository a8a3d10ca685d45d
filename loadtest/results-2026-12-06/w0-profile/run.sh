#!/usr/bin/env bash
# W0 echo at 20,000/s over 100 connections, 20 B and 1 KB: coretalk (one shard) and the tokio
# baseline, each on core 0 with the generator on core 1; 5 s of `perf record` of the server
# in the middle of a 16 s run. Writes OUT/<target>-<bytes>.txt: the load's line, the shares by
# binary and the top symbols.
#   OUT=DIR loadtest/results-2026-12-06/w0-profile/run.sh     (needs perf)
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
L=$ROOT/target/release/coretalk-load
OUT=${OUT:?a results folder}
mkdir -p "$OUT"
for tgt in coretalk baseline; do
  for pl in 20 1024; do
    name=$tgt-$pl data=$(mktemp)
    pat=$([ $tgt = coretalk ] && echo 'release/coretalk --listen' || echo coretalk-baseline)
    ( sleep 10; pid=$(pgrep -n -f "$pat")
      perf record -F 2999 -g -p "$pid" -o "$data" -- sleep 5 > /dev/null 2>&1 ) &
    "$L" w0 --target $tgt --connections 100 --payload $pl --rate 20000 --server-cores 0 \
      --client-cores 1 --duration 16 --warmup 3 --no-results > "$OUT/$name.load.txt" 2>&1
    wait
    {
      echo "# W0 $pl B at 20,000/s, $tgt: $(grep -E '^[0-9]+B @' "$OUT/$name.load.txt")"
      echo "# shares by binary (self)"
      perf report -i "$data" --no-children --sort dso -g none -q 2>/dev/null | grep -v '^$' | head -6
      echo "# top symbols (self)"
      perf report -i "$data" --no-children --sort sym -g none -q 2>/dev/null | grep -v '^$' | head -25
    } > "$OUT/$name.txt"
    rm -f "$data"
  done
done
