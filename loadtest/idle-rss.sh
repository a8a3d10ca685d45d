#!/usr/bin/env bash
# Idle memory by shard count: starts `coretalk --shards N` (no sessions, in-memory store, gRPC on
# a free port) for each N given, reads VmRSS (and its huge-page part, AnonHugePages) 2 s after it
# listens, stops it.
# Each point is measured REPEAT times (default 3) and the median is printed, then the cost per
# additional shard between the first and the last N. Extra TOML lines may be given in EXTRA.
#   loadtest/idle-rss.sh target/release/coretalk 1 2 8 16 32
#   EXTRA='[runtime]\nring_depth = 128\n' loadtest/idle-rss.sh target/release/coretalk 16 32
set -euo pipefail
bin=$1; shift
repeat=${REPEAT:-3}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
first_n= first_rss= last_n= last_rss=
for n in "$@"; do
  rss_all=() thp_all=()
  for _ in $(seq "$repeat"); do
    dir=$(mktemp -d)
    printf "[store]\ndurable = false\n${EXTRA:-}" > "$dir/c.toml"
    # gRPC on, as by default, but on a free port: a fixed one may be taken by another server.
    "$bin" --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --data "$dir/data" --shards "$n" \
      --config "$dir/c.toml" > "$dir/out" 2> "$dir/err" &
    pid=$!
    for _ in $(seq 200); do grep -qs "^coretalk listening on" "$dir/out" && break; sleep 0.1; done
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "shards=$n: the server exited:" >&2; cat "$dir/err" >&2; exit 1
    fi
    sleep 2
    rss_all+=("$(awk '/^VmRSS/{print $2}' /proc/$pid/status)")
    thp_all+=("$(awk '/^AnonHugePages/{print $2}' /proc/$pid/smaps_rollup)")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
  done
  rss=$(printf '%s\n' "${rss_all[@]}" | median)
  thp=$(printf '%s\n' "${thp_all[@]}" | median)
  echo "shards=$n rss_kib=$rss anon_huge_kib=$thp (runs: ${rss_all[*]})"
  if [ -z "$first_n" ]; then first_n=$n first_rss=$rss; fi
  last_n=$n last_rss=$rss
done
if [ -n "$first_n" ] && [ "$last_n" != "$first_n" ]; then
  awk -v a="$first_n" -v ra="$first_rss" -v b="$last_n" -v rb="$last_rss" 'BEGIN {
    printf "per additional shard (%d -> %d): %.0f KiB = %.2f MiB = %.2f MB\n",
      a, b, (rb - ra) / (b - a), (rb - ra) / (b - a) / 1024, (rb - ra) / (b - a) * 1.024 / 1000 }'
fi
