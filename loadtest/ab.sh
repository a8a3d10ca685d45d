#!/usr/bin/env bash
# A/B checks of single changes, PAIRS (default 3) alternating runs per side, server on core 0, generator on core 1.
#   loadtest/ab.sh fanout BEFORE_BIN AFTER_BIN   W4 N=1000 @50/s and N=128 @500/s, two coretalk builds
#   loadtest/ab.sh ring BIN                      W3 2,000 P2P pairs @2,500/s, runtime.ring_depth 128 vs 4096
#   loadtest/ab.sh w6base BASELINE_BIN           W6's tokio peer: W4 N=1000 @50/s, 1 vs 2 runtime threads on cores 0-1
#   loadtest/ab.sh p2p BEFORE_BIN AFTER_BIN       W3 2,000 P2P pairs @2,500/s, two coretalk builds (in-memory store)
#   loadtest/ab.sh setup BEFORE_BIN AFTER_BIN     W2 1,000 token set-ups/s (connect, hi, login, sub me), two coretalk builds
#   loadtest/ab.sh mesh BEFORE_BIN AFTER_BIN      W6: W4 N=1000 @50/s on 2 shards (cores 0-1, generator on core 1), two coretalk builds
#   loadtest/ab.sh fanknob BIN TOML_A TOML_B     W4 N=1000 @50/s and N=128 @500/s, one build under two server configs
#                                                (every TOML_* here is config text with '\n' for newlines, not a file name)
#   loadtest/ab.sh p2pknob BIN TOML_A TOML_B     W3 2,000 P2P pairs @2,500/s, one build under two server configs
#   loadtest/ab.sh knobs BIN TOML...             W3, W4 (N=1000, 128), W0 (20 B, 1 KB) and W2 (WORKLOADS picks), one
#                                                build under several server configs (TOML text, '\n' for newlines) in turn
#   loadtest/ab.sh histo BIN                     monitor.histograms off vs on: W3 as p2p, and W4 N=1000 @50/s and N=128 @500/s
#   loadtest/ab.sh echo BEFORE_BIN AFTER_BIN      W0 echo, 100 connections, 20 B and 1 KB @20,000/s, two coretalk builds and the tokio baseline
#   loadtest/ab.sh idle BEFORE_BIN AFTER_BIN      W1 bytes per idle session (RSS slope, 1,000 → 10,000 sessions; W1_STEPS=1000,5000,10000,19000
#                                                ramps to the workload's top and halves the run-to-run spread), two coretalk builds
# Prints server CPU per operation, p50, p99 and drops per run. Needs target/release/coretalk-load.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOAD="${LOAD:-$ROOT/target/release/coretalk-load}"
OUT="${OUT:-$ROOT/loadtest/results/ab-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
COMMON=(--client-cores 1 --duration 8 --warmup 3 --drain 2)
PAIRS="${PAIRS:-3}" # alternating runs per side

point() { # result dir label → one line
  python3 - "$1" "$2" <<'PY'
import json, glob, sys
f = sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]
p = json.load(open(f))["points"][0]
print(f"{sys.argv[2]:28} {p['cpu_us_per_op']:8.2f} us/op  p50 {p['latency']['p50_us']/1000:8.2f} ms"
      f"  p99 {p['latency']['p99_us']/1000:8.2f} ms  drops {p['drops']}  errors {p['errors']}")
PY
}

points() { # result dir label → one line per point (W0 has one per payload)
  python3 - "$1" "$2" <<'PY'
import json, glob, sys
f = sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]
for p in json.load(open(f))["points"]:
    label = f"{sys.argv[2]} {p.get('label', '')}"
    print(f"{label:28} {p['cpu_us_per_op']:8.2f} us/op  p50 {p['latency']['p50_us']/1000:8.2f} ms"
          f"  p99 {p['latency']['p99_us']/1000:8.2f} ms  drops {p['drops']}  errors {p['errors']}")
PY
}

serve() { # BIN EXTRA_TOML: one-shard coretalk on core 0 (in-memory store); sets SRV_PID, SRV_ADDR, SRV_DIR
  SRV_DIR=$(mktemp -d)
  local limits='[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n'
  local grpc=(--grpc-listen "")
  if ! "$1" --help 2>&1 | grep -q -- --grpc-listen; then
    # A build older than the gRPC listener and [limits] (8d9dd34, the build of the 2026-11-27
    # series): it has neither, and no rate limits to lift.
    limits='' grpc=()
  fi
  printf '[auth]\nbcrypt_cost = 4\n[store]\ndurable = false\n%b%b' "$limits" "$2" > "$SRV_DIR/c.toml"
  taskset -c 0 "$1" --listen 127.0.0.1:0 --data "$SRV_DIR/data" "${grpc[@]}" --shards 1 --config "$SRV_DIR/c.toml" \
    > "$SRV_DIR/out.log" 2> "$SRV_DIR/err.log" &
  SRV_PID=$!
  for _ in $(seq 100); do grep -qs "^coretalk listening on" "$SRV_DIR/out.log" && break; sleep 0.1; done
  SRV_ADDR=$(grep -o "^coretalk listening on [0-9.:]*" "$SRV_DIR/out.log" | awk '{print $4}')
}

unserve() {
  kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true
  rm -rf "$SRV_DIR"
}

w3_on() { # BIN EXTRA_TOML RESULT_DIR: W3 2,000 P2P pairs @2,500/s against serve BIN EXTRA_TOML
  serve "$1" "$2"
  "$LOAD" w3 --attach "$SRV_ADDR" --server-pid "$SRV_PID" --pairs 2000 --rate 2500 --topic-kind p2p \
    "${COMMON[@]}" --results-dir "$3" > "$3.log" 2>&1
  unserve
}

w4_on() { # BIN EXTRA_TOML N RATE RESULT_DIR: W4, N subscribers of one group at RATE msgs/s
  serve "$1" "[topic]\nmax_subscriber_count = $(($3 + 16))\n$2"
  "$LOAD" w4 --target coretalk --attach "$SRV_ADDR" --server-pid "$SRV_PID" --subscribers "$3" \
    --rate "$4" "${COMMON[@]}" --results-dir "$5" > "$5.log" 2>&1
  unserve
}

w2_on() { # BIN RESULT_DIR [EXTRA_TOML]: W2 1,000 token set-ups/s for 12 s (4 s warm-up) against serve BIN
  serve "$1" "${3:-}"
  "$LOAD" w2 --attach "$SRV_ADDR" --server-pid "$SRV_PID" --rate 1000 --duration 12 --warmup 4 \
    --client-cores 1 --results-dir "$2" > "$2.log" 2>&1
  unserve
}

case "${1:-}" in
  fanout)
    before=$2 after=$3
    for run in $(seq "$PAIRS"); do
      for side in before after; do
        bin=$([ $side = before ] && echo "$before" || echo "$after")
        for n in 1000 128; do
          rate=$([ $n = 1000 ] && echo 50 || echo 500)
          d="$OUT/$side-$n-$run"
          w4_on "$bin" "" $n $rate "$d"
          point "$d" "$side n=$n run=$run"
        done
      done
    done ;;
  knobs)
    # One build under several server configs (each a TOML text, printf %b escapes), taken in
    # turn each round: W3, W4 N=1000 and N=128, W0 20 B and 1 KB, W2. WORKLOADS limits them.
    # W4 and W0 merge the config over the harness's settings; W3 and W2 append it to serve's
    # file, which already has [auth], [store] and [limits] tables (a config may not reopen them).
    bin=$2; shift 2
    for run in $(seq "$PAIRS"); do
      i=0
      for toml in "$@"; do
        i=$((i + 1))
        printf '%b' "$toml" > "$OUT/k$i.toml"
        for w in ${WORKLOADS:-w3 w4 w0 w2}; do
          d="$OUT/$w-k$i-$run"
          case $w in
            w3) w3_on "$bin" "$toml" "$d"; point "$d" "w3 k$i run=$run" ;;
            w2) w2_on "$bin" "$d" "$toml"; point "$d" "w2 k$i run=$run" ;;
            w4) for n in 1000 128; do
                  rate=$([ $n = 1000 ] && echo 50 || echo 500)
                  "$LOAD" w4 --target coretalk --server-bin "$bin" --server-config "$OUT/k$i.toml" \
                    --subscribers $n --rate $rate --server-cores 0 "${COMMON[@]}" --results-dir "$d-$n" \
                    > "$d-$n.log" 2>&1
                  point "$d-$n" "w4 n=$n k$i run=$run"
                done ;;
            w0) "$LOAD" w0 --target coretalk --server-bin "$bin" --server-config "$OUT/k$i.toml" \
                  --connections 100 --payload 20,1024 --rate 20000 --server-cores 0 "${COMMON[@]}" \
                  --results-dir "$d" > "$d.log" 2>&1
                points "$d" "w0 k$i run=$run" ;;
          esac
        done
      done
    done ;;
  fanknob | p2pknob)
    # The two-config forms of `knobs`: W4 alone, W3 alone.
    OUT=$OUT WORKLOADS=$([ "$1" = fanknob ] && echo w4 || echo w3) exec "$0" knobs "${@:2}" ;;
  ring)
    bin=$2
    for run in $(seq "$PAIRS"); do
      for depth in 128 4096; do
        d="$OUT/ring$depth-$run"
        w3_on "$bin" "[runtime]\nring_depth = $depth\n" "$d"
        point "$d" "ring_depth=$depth run=$run"
      done
    done ;;
  w6base)
    base=$2
    for run in $(seq "$PAIRS"); do
      for threads in 1 2; do
        dir=$(mktemp -d)
        taskset -c 0-1 "$base" --listen 127.0.0.1:0 --threads $threads > "$dir/out.log" 2> "$dir/err.log" &
        pid=$!
        for _ in $(seq 100); do grep -q "^coretalk listening on" "$dir/out.log" && break; sleep 0.1; done
        addr=$(grep -o "^coretalk listening on [0-9.:]*" "$dir/out.log" | awk '{print $4}')
        d="$OUT/baseline-t$threads-$run"
        "$LOAD" w4 --target baseline --attach "$addr" --server-pid $pid --subscribers 1000 --rate 50 \
          "${COMMON[@]}" --results-dir "$d" > "$d.log" 2>&1
        kill $pid; wait $pid 2>/dev/null || true
        rm -rf "$dir"
        point "$d" "baseline threads=$threads run=$run"
      done
    done ;;
  p2p|setup)
    before=$2 after=$3 w=$([ "$1" = p2p ] && echo w3 || echo w2)
    for run in $(seq "$PAIRS"); do
      for side in before after; do
        bin=$([ $side = before ] && echo "$before" || echo "$after")
        d="$OUT/$w-$side-$run"
        if [ $w = w3 ]; then w3_on "$bin" "" "$d"; else w2_on "$bin" "$d"; fi
        point "$d" "$w $side run=$run"
      done
    done ;;
  mesh)
    before=$2 after=$3
    for run in $(seq "$PAIRS"); do
      for side in before after; do
        bin=$([ $side = before ] && echo "$before" || echo "$after")
        d="$OUT/w6-$side-$run"
        "$LOAD" w6 --server-bin "$bin" --subscribers 1000 --rate 50 --shards-list 2 --server-cores 0-1 \
          "${COMMON[@]}" --results-dir "$d" > "$d.log" 2>&1
        point "$d" "w6 2 shards $side run=$run"
      done
    done ;;
  histo)
    bin=$2
    for run in $(seq "$PAIRS"); do
      for h in false true; do
        d="$OUT/w3-histograms-$h-$run"
        w3_on "$bin" "[monitor]\nhistograms = $h\n" "$d"
        point "$d" "w3 histograms=$h run=$run"
        printf '[monitor]\nhistograms = %s\n' "$h" > "$OUT/histograms-$h.toml"
        for n in 1000 128; do
          rate=$([ $n = 1000 ] && echo 50 || echo 500)
          d="$OUT/w4-histograms-$h-$n-$run"
          "$LOAD" w4 --target coretalk --server-bin "$bin" --server-config "$OUT/histograms-$h.toml" \
            --subscribers $n --rate $rate --server-cores 0 "${COMMON[@]}" --results-dir "$d" > "$d.log" 2>&1
          point "$d" "w4 n=$n histograms=$h run=$run"
        done
      done
    done ;;
  idle)
    before=$2 after=$3
    for run in $(seq "$PAIRS"); do
      for side in before after; do
        bin=$([ $side = before ] && echo "$before" || echo "$after")
        d="$OUT/w1-$side-$run"
        serve "$bin" ""
        "$LOAD" w1 --attach "$SRV_ADDR" --server-pid "$SRV_PID" --steps "${W1_STEPS:-1000,2500,5000,10000}" --settle 3 \
          --client-cores 1 --results-dir "$d" > "$d.log" 2>&1
        unserve
        python3 - "$d" "w1 $side run=$run" <<'PY'
import glob, json, sys
f = sorted(glob.glob(sys.argv[1] + "/*/result.json"))[0]
s = json.load(open(f))["summary"]
print(f"{sys.argv[2]:28} {s['bytes_per_session']:8.0f} B per idle session")
PY
      done
    done ;;
  echo)
    before=$2 after=$3
    for run in $(seq "$PAIRS"); do
      for side in before after baseline; do
        case $side in
          before) target=(--target coretalk --server-bin "$before") ;;
          after) target=(--target coretalk --server-bin "$after") ;;
          baseline) target=(--target baseline) ;;
        esac
        d="$OUT/w0-$side-$run"
        "$LOAD" w0 "${target[@]}" --connections 100 --payload 20,1024 --rate 20000 --server-cores 0 \
          "${COMMON[@]}" --results-dir "$d" > "$d.log" 2>&1
        points "$d" "w0 $side run=$run"
      done
    done ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
