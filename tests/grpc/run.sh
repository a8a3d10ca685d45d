#!/usr/bin/env bash
# Runs the gRPC end-to-end suite (test_grpc.py) with the official `tinode-grpc` Python bindings
# against the built server binary. tests/setup.sh makes the virtual environment (.venv here);
# this script makes it too when it is missing, so it also runs on its own.
#
#   CORETALK_BIN=path/to/coretalk tests/grpc/run.sh      (default: target/debug/coretalk)
set -euo pipefail
cd "$(dirname "$0")"
if ! .venv/bin/python -c 'import tinode_grpc, grpc' >/dev/null 2>&1; then
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --only-binary=:all: -r requirements.txt
fi
exec .venv/bin/python -u test_grpc.py "$@"
