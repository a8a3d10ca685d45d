#!/usr/bin/env bash
# instructions per echo: perf stat of the server during one W0 20 B run
source <(sed -n '/^serve()/,/^}/p;/^unserve()/,/^}/p' /work/main/loadtest/ab.sh)
LOAD=/work/main/target/release/coretalk-load
for round in 1 2 3; do
 for bin in /tmp/ab/final2 /tmp/ab/src224; do
  serve $bin '[ws]\necho_path = "/echo"\n'
  perf stat -e instructions:u,instructions:k,cycles -p $SRV_PID -o /tmp/es.txt -- sleep 12 &
  PS=$!
  $LOAD w0 --attach $SRV_ADDR --server-pid $SRV_PID --connections 100 --payload 20 --rate 20000 --client-cores 1 --duration 8 --warmup 3 --drain 1 --no-results > /tmp/es.load 2>&1
  wait $PS
  n=$(grep -o '"ops":[0-9]*' /tmp/es.load | head -1)
  echo "$(basename $bin) round=$round $(grep -E 'instructions|cycles' /tmp/es.txt | awk '{printf "%s %s  ", $1, $2}') $(grep -E '^20|points|ops' /tmp/es.load | tail -1)"
  unserve
 done
done
