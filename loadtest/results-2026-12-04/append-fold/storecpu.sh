#!/usr/bin/env bash
# W3 at 2,500/s: the store thread's and the shard's CPU (schedstat, ns) over 8 s mid-run, per message
set -euo pipefail
cd /work/main
source <(sed -n '/^serve() {/,/^}/p;/^unserve() {/,/^}/p' loadtest/ab.sh)
BIN=$1; TAG=${TAG:-x}
rm -rf /tmp/ab/sc-$TAG; serve $BIN ""
./target/release/coretalk-load w3 --attach "$SRV_ADDR" --server-pid "$SRV_PID" --pairs 2000 --rate 2500 --topic-kind p2p \
   --client-cores 1 --duration 14 --warmup 3 --drain 2 --results-dir /tmp/ab/sc-$TAG > /tmp/ab/sc-$TAG.log 2>&1 &
LP=$!
sleep 8
tids() { for t in /proc/$SRV_PID/task/*; do echo "$(cat $t/comm) $(awk '{print $1}' $t/schedstat)"; done; }
A=$(tids); sleep 8; B=$(tids)
wait $LP; unserve
python3 - "$A" "$B" <<'PY'
import sys
def parse(s):
    d={}
    for l in s.splitlines():
        n,v=l.rsplit(' ',1); d[n]=d.get(n,0)+int(v)
    return d
a,b=parse(sys.argv[1]),parse(sys.argv[2])
msgs=2500*8
st=(b.get('coretalk-store',0)-a.get('coretalk-store',0))/msgs/1000
sh=sum(b[k]-a[k] for k in b if k.startswith('coretalk-shard'))/msgs/1000
print(f"store {st:.2f} us/msg  shard {sh:.2f} us/msg")
PY
