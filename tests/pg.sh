#!/usr/bin/env bash
# A throw-away PostgreSQL 15 for the test suite: `tests/pg.sh start DIR` initialises a cluster in
# DIR (as the `postgres` OS user when run as root: initdb refuses root), starts it on a free
# loopback port and prints `CORETALK_TEST_PG=postgres://postgres@127.0.0.1:PORT` for the caller
# to export; `tests/pg.sh restart DIR [SECONDS]` stops it (fast: connections are cut), waits,
# and starts it again on the same port; `tests/pg.sh stop DIR` stops it (immediate) and removes DIR. Tests create one
# database per server or per store under that URL, so nothing is shared between them.
#
# fsync is off unless PG_FSYNC=on: the instance is thrown away, and durability across a PostgreSQL
# crash is not what the tests check (coretalk's own acknowledgements still wait for COMMIT);
# loadtest/pg-bench.sh sets PG_FSYNC=on so that a commit costs a real WAL flush.
set -euo pipefail
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
cmd="${1:?usage: tests/pg.sh start|restart|stop DIR}"
dir="${2:?usage: tests/pg.sh start|restart|stop DIR}"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    [ -x "$PGBIN/initdb" ] || { echo "tests/pg.sh: no PostgreSQL 15 at $PGBIN" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # A free port: bind port 0, read it back, release it (PostgreSQL binds it next).
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    echo "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c max_connections=400" >"$dir/opts"
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "$(cat "$dir/opts")" start >/dev/null \
      || { cat "$dir/log" >&2; exit 1; }
    echo "CORETALK_TEST_PG=postgres://postgres@127.0.0.1:$port"
    ;;
  restart)
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    sleep "${3:-0}"
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "$(cat "$dir/opts")" start >/dev/null \
      || { cat "$dir/log" >&2; exit 1; }
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: tests/pg.sh start|restart|stop DIR" >&2; exit 2 ;;
esac
