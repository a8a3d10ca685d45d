#!/usr/bin/env bash
# The fuzz targets (cargo-fuzz, libFuzzer), built with the nightly toolchain.
#   fuzz/run.sh short [TARGET...]  each target for FUZZ_SECONDS (default 10) s: the test suite's run
#   fuzz/run.sh long  [TARGET...]  each target for FUZZ_RUNS (default 10000000) executions, one at
#                                  a time, at nice 19; logs in fuzz/logs/TARGET.log (fuzz/RESULTS.md)
# The committed corpus (fuzz/corpus/TARGET) is read, never written: new inputs go to
# fuzz/corpus-work/TARGET (ignored by git). A crash stops the script with libFuzzer's report and
# the input in fuzz/artifacts/TARGET/; add it to fuzz/regressions/TARGET and fix it.
# Installs what is missing: the nightly toolchain (rustup) and cargo-fuzz (crate registry).
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-short}"
shift || true
all=(json http_head ws_frames longpoll protobuf store_record journal token api_key)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# No sanitizer: the code is safe Rust (ASan would halve the executions); debug assertions on,
# so overflow checks and debug_asserts fire.
flags=(--sanitizer none --debug-assertions)
nice -n 19 cargo +nightly fuzz build "${flags[@]}"

mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus-work/$t"
  case "$mode" in
    short) limit=(-max_total_time="${FUZZ_SECONDS:-10}") ;;
    long) limit=(-runs="${FUZZ_RUNS:-10000000}") ;;
    *) echo "usage: fuzz/run.sh short|long [TARGET...]" >&2; exit 2 ;;
  esac
  printf '==> fuzz %s (%s)\n' "$t" "$mode"
  start=$(date +%s)
  nice -n 19 cargo +nightly fuzz run "${flags[@]}" "$t" "corpus-work/$t" "corpus/$t" -- \
    "${limit[@]}" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"logs/$t.log" 2>&1 || { tail -n 40 "logs/$t.log"; echo "fuzz target $t failed" >&2; exit 1; }
  grep -E '^#[0-9]+ +DONE' "logs/$t.log" | tail -n 1 || tail -n 2 "logs/$t.log"
  echo "    $(( $(date +%s) - start )) s"
done
