#!/bin/bash
# ab.sh OUT MODE... : W3 20k/s runs, MODE=none or "PREFIX:SLICE_US:NICE[,PREFIX:SLICE:NICE]"
OUT=$1; shift
mkdir -p $OUT
cd /work/main
for round in $(seq 1 ${ROUNDS:-3}); do
for mode in "$@"; do
  if [ "$mode" != none ]; then
    ( for i in $(seq 1 400); do p=$(pgrep -x coretalk | head -1); if [ -n "$p" ] && ls /proc/$p/task >/dev/null 2>&1 && grep -q coretalk-store /proc/$p/task/*/comm 2>/dev/null && grep -q coretalk-shard /proc/$p/task/*/comm 2>/dev/null; then
        IFS=, read -ra parts <<< "$mode"; for pp in "${parts[@]}"; do IFS=: read pre us nc pol <<< "$pp"; python3 $(dirname "$0")/slice.py $p $pre $us "$nc" "$pol"; done; break; fi; sleep 0.05; done ) > $OUT/$round-$mode.tweak 2>&1 &
  fi
  target/release/coretalk-load w3 --target coretalk --pairs 2000 --rate 20000 --topic-kind p2p --server-cores 0 --client-cores 1 --duration ${DUR:-8} --warmup 3 --drain 2 --results-dir $OUT/$round-$mode > $OUT/$round-$mode.log 2>&1
  wait
done; done
