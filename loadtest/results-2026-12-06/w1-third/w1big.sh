#!/usr/bin/env bash
# W1 with 19,000 sessions at the top: alternating pairs of two builds
A=$1 B=$2 OUT=$3 PAIRS=${4:-3}
mkdir -p $OUT
for run in $(seq $PAIRS); do
  for side in a b; do
    bin=$([ $side = a ] && echo $A || echo $B)
    d=$OUT/w1-$side-$run
    /work/main/target/release/coretalk-load w1 --server-bin $bin --steps 1000,5000,10000,19000 --settle 3 --client-cores 1 --results-dir $d > $d.log 2>&1
    python3 - $d "$side run=$run" <<'PY'
import glob, json, sys
f = sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]
r = json.load(open(f))
s = r.get("summary") or {}
print(f"{sys.argv[2]:12} {s.get('bytes_per_session', float('nan')):8.0f} B per idle session")
PY
  done
done
