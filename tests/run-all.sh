#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit/integration/tidy tests, bench smoke runs,
# the end-to-end tests with the official tinode-sdk under Node (npm packages installed here), the
# short run of every fuzz target (fuzz/run.sh), the
# gRPC end-to-end tests with the official tinode-grpc Python bindings (tests/grpc), and the
# official web app driven in headless Chromium (tests/webapp); the integration and client suites
# run twice, on the embedded store and on a throw-away PostgreSQL (tests/pg.sh). It starts with tests/setup.sh,
# which installs what is missing (Node, Chromium, nats-server, mosquitto, rustfmt, clippy, the
# gRPC suite's Python venv), so it runs on a fresh machine as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tests/setup.sh (install what is missing)"
tests/setup.sh

step "throw-away PostgreSQL (tests/pg.sh): the PostgreSQL store's tests and second runs"
pgdir="$(mktemp -d /tmp/coretalk-pg.XXXXXX)"
trap 'tests/pg.sh stop "$pgdir"' EXIT
pgenv="$(tests/pg.sh start "$pgdir")"
export "$pgenv"
echo "$CORETALK_TEST_PG"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build (server binary for integration and SDK tests)"
cargo build --workspace --bins

step "cargo test (unit incl. both stores' conformance, integration, tidy, bench smoke)"
cargo test --workspace --all-targets

step "fuzz targets, a short run of each (fuzz/run.sh short: nightly, cargo-fuzz, ~10 s per target)"
fuzz/run.sh short

step "integration tests against PostgreSQL (tests/it, CORETALK_TEST_STORE=postgres)"
CORETALK_TEST_STORE=postgres cargo test --test it

bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/coretalk"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/webapp && npm ci --no-audit --no-fund --loglevel=error && node prepare.js)
# Each client suite runs once per store: embedded, then PostgreSQL (the SDK suite's cluster
# scenarios, tests/e2e/test/20-cluster.test.js, need the PostgreSQL pass and say so in the other).
for store in embedded postgres; do
  step "SDK end-to-end tests, $store store (tests/e2e, tinode-sdk under Node, WebSocket and long polling)"
  (cd tests/e2e && CORETALK_TEST_STORE=$store CORETALK_BIN="$bin" npm test)

  step "gRPC end-to-end tests, $store store (tests/grpc, official tinode-grpc bindings under Python)"
  CORETALK_TEST_STORE=$store CORETALK_BIN="$bin" tests/grpc/run.sh

  step "Web app in a browser, $store store (tests/webapp, tinode-webapp in headless Chromium, ws and lp)"
  (cd tests/webapp && CORETALK_TEST_STORE=$store CORETALK_BIN="$bin" npm test)
done

step "all tests passed"
