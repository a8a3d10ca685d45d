#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit/integration/tidy tests, bench smoke runs,
# the end-to-end tests with the official tinode-sdk under Node (npm packages installed here), the
# gRPC end-to-end tests with the official tinode-grpc Python bindings (tests/grpc), and the
# official web app driven in headless Chromium (tests/webapp). It starts with tests/setup.sh,
# which installs what is missing (Node, Chromium, nats-server, mosquitto, rustfmt, clippy, the
# gRPC suite's Python venv), so it runs on a fresh machine as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tests/setup.sh (install what is missing)"
tests/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build (server binary for integration and SDK tests)"
cargo build --workspace --bins

step "cargo test (unit, integration, tidy, bench smoke)"
cargo test --workspace --all-targets

step "SDK end-to-end tests (tests/e2e, tinode-sdk under Node, over WebSocket and long polling)"
(
  cd tests/e2e
  npm ci --no-audit --no-fund --loglevel=error
  CORETALK_BIN="${CARGO_TARGET_DIR:-$PWD/../../target}/debug/coretalk" npm test
)

step "gRPC end-to-end tests (tests/grpc, official tinode-grpc bindings under Python)"
CORETALK_BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/coretalk" tests/grpc/run.sh

step "Web app in a browser (tests/webapp, tinode-webapp in headless Chromium, ws and lp)"
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/coretalk"
(
  cd tests/webapp
  npm ci --no-audit --no-fund --loglevel=error
  node prepare.js
  CORETALK_BIN="$bin" npm test
)

step "all tests passed"
