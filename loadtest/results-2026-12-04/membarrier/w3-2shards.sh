#!/usr/bin/env bash
# 2-shard W3 stress on cores 0-1 (generator on core 1) at RATE for DUR s; prints the harness line, mesh rewakes, lost-wake warnings
set -euo pipefail
BIN=$1; RATE=${RATE:-10000}; DUR=${DUR:-40}
D=$(mktemp -d)
printf '[auth]\nbcrypt_cost = 4\n[store]\ndurable = false\n[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n[monitor]\nmetrics = true\n' > $D/c.toml
taskset -c 0-1 $BIN --listen 127.0.0.1:0 --data $D/data --grpc-listen "" --shards 2 --config $D/c.toml > $D/out.log 2> $D/err.log &
P=$!
for _ in $(seq 100); do grep -q "^coretalk listening on" $D/out.log && break; sleep 0.1; done
A=$(grep -o "^coretalk listening on [0-9.:]*" $D/out.log | awk '{print $4}')
/work/main/target/release/coretalk-load w3 --attach $A --server-pid $P --pairs 2000 --rate $RATE --topic-kind p2p --client-cores 1 --duration $DUR --warmup 3 --drain 2 --results-dir $D/r > $D/load.log 2>&1 || echo "load rc=$?"
curl -s http://$A/metrics | grep -E "mesh_rewakes|mesh_" | grep -v "^#" | head
grep -ci "lost wake" $D/err.log || true
python3 - $D/r <<'PY'
import json, glob, sys
p = json.load(open(sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]))["points"][0]
print(f"{p['cpu_us_per_op']:.2f} us/op p50 {p['latency']['p50_us']} p99 {p['latency']['p99_us']} max {p['latency'].get('max_us')} drops {p['drops']} errors {p['errors']}")
PY
kill $P; wait $P 2>/dev/null || true; rm -rf $D
