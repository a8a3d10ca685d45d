#!/usr/bin/env bash
# Installs what the test suite (tests/run-all.sh, which calls this first) needs and does not find,
# so that the README's test command works on a fresh Debian machine:
#   - Node.js and npm: the SDK end-to-end tests (tests/e2e) and the web app test (tests/webapp);
#   - Debian's Chromium at /usr/bin/chromium: the web app test;
#   - nats-server and mosquitto, through `loadtest/peers.sh install`: the load harness's smoke test;
#   - PostgreSQL 15's server binaries (postgresql-15): tests/pg.sh's throw-away instance, on which
#     the PostgreSQL store's tests and the second run of the end-to-end suites run;
#   - the rustfmt and clippy components: `cargo fmt --check` and `cargo clippy`;
#   - a Python virtual environment at tests/grpc/.venv with the official `tinode-grpc` bindings
#     (wheels only, pinned in tests/grpc/requirements.txt): the gRPC end-to-end suite.
# What is present is left alone, so on a prepared machine this is a quick no-op. apt-get update
# runs at most once, and only when a package has to be installed (which needs root).
#
#   tests/setup.sh          install what is missing
#   tests/setup.sh --check  list what is missing and install nothing; exit status 1 if anything is
#
# CHROMIUM_BIN names another browser binary (as in tests/webapp); it is then only checked.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

say() { printf 'setup: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

apt_packages=()
have node || apt_packages+=(nodejs)
have npm || apt_packages+=(npm)
[[ -x ${PGBIN:-/usr/lib/postgresql/15/bin}/initdb ]] || apt_packages+=(postgresql-15)
chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [[ ! -x $chromium ]]; then
  [[ -z ${CHROMIUM_BIN:-} ]] || die "CHROMIUM_BIN=$CHROMIUM_BIN is not an executable"
  apt_packages+=(chromium)
fi
peers=0
have nats-server && have mosquitto || peers=1
grpc_venv=tests/grpc/.venv
pyenv=0
"$grpc_venv/bin/python" -c 'import tinode_grpc, grpc' >/dev/null 2>&1 || pyenv=1
if ((pyenv)); then
  have python3 || apt_packages+=(python3)
  # Debian's python3 makes virtual environments only with python3-venv (ensurepip).
  python3 -c 'import ensurepip' >/dev/null 2>&1 || apt_packages+=(python3-venv)
fi
components=()
cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || components+=(clippy)

if have node; then
  node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if ((node_major < 20)); then
    say "warning: node $(node --version) is older than the >= 20 that tests/e2e and tests/webapp require"
  fi
fi

missing=("${apt_packages[@]}")
((peers)) && missing+=("nats-server and mosquitto (loadtest/peers.sh install)")
((${#components[@]})) && missing+=("rustup components: ${components[*]}")
((pyenv)) && missing+=("$grpc_venv (tinode-grpc for tests/grpc)")
if ((${#missing[@]} == 0)); then
  say "nothing to install"
  exit 0
fi
if ((check)); then
  say "missing:"
  printf '  %s\n' "${missing[@]}"
  exit 1
fi

if ((${#apt_packages[@]} || peers)); then
  [[ ${EUID:-$(id -u)} -eq 0 ]] || die "installing ${missing[*]} needs root (apt-get); run tests/setup.sh as root, or install them yourself"
  have apt-get || die "no apt-get: install ${missing[*]} yourself"
  export DEBIAN_FRONTEND=noninteractive
  say "apt-get update"
  apt-get update -qq
fi
if ((${#apt_packages[@]})); then
  say "apt-get install ${apt_packages[*]}"
  apt-get install -y -qq "${apt_packages[@]}"
fi
if ((peers)); then
  # Finds the package lists fresh from the update above, so it does not update again.
  loadtest/peers.sh install
fi
if ((${#components[@]})); then
  have rustup || die "no rustup: install the ${components[*]} component(s) of your toolchain yourself"
  say "rustup component add ${components[*]}"
  rustup component add "${components[@]}"
fi
if ((pyenv)); then
  say "python3 -m venv $grpc_venv; pip install tinode-grpc (wheels only)"
  rm -rf "$grpc_venv"
  python3 -m venv "$grpc_venv"
  "$grpc_venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
    -r tests/grpc/requirements.txt
fi
say "done"
