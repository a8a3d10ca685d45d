#!/usr/bin/env bash
# Peers for the load harness: nats-server and mosquitto from Debian, each with a WebSocket
# listener on loopback, started in the foreground and pinned with taskset.
#
#   peers.sh install                               apt-get install nats-server mosquitto (idempotent;
#                                                  their system services are stopped and disabled)
#   peers.sh config DIR NATS_WS_PORT MQTT_WS_PORT  write DIR/nats.conf and DIR/mosquitto.conf
#   peers.sh versions                              one line per peer: name, upstream and Debian version
#   peers.sh start nats|mosquitto DIR CORES        exec the peer on DIR's config, pinned to CORES
#                                                  (a taskset -c list such as "0" or "2-3")
#
# The configs are for benchmarks on one machine: loopback only, no TLS, no authentication, no
# persistence, logs on stderr, limits set so that W1-W4 are not cut short by the peer's own caps
# (connections, payload size, per-client queues). Record `peers.sh versions` and both config
# files with every result.
set -euo pipefail

PACKAGES=(nats-server mosquitto)

die() { echo "peers.sh: $*" >&2; exit 1; }

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

have_all() {
  command -v nats-server >/dev/null 2>&1 && command -v mosquitto >/dev/null 2>&1
}

# Stop and disable the packages' own services: the harness starts the peers itself, on its own
# ports and cores, and a system mosquitto on 1883 would only get in the way.
quiet_services() {
  local unit
  for unit in mosquitto nats-server; do
    if command -v systemctl >/dev/null 2>&1; then
      if [[ -d /run/systemd/system ]]; then
        systemctl disable --now "$unit" >/dev/null 2>&1 || true
      else
        # No running systemd (a container): still remove the enable links for the next boot.
        systemctl disable "$unit" >/dev/null 2>&1 || true
      fi
    fi
    if [[ -x /etc/init.d/$unit ]]; then
      /etc/init.d/"$unit" stop >/dev/null 2>&1 || true
    fi
  done
}

cmd_install() {
  if have_all; then
    echo "peers.sh: nats-server and mosquitto already installed"
    quiet_services
    return 0
  fi
  [[ ${EUID:-$(id -u)} -eq 0 ]] || die "install needs root (apt-get)"
  # Keep maintainer scripts from starting the services (Debian's policy-rc.d hook), unless the
  # host already has its own policy.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
  fi
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}"; then
    apt-get update && apt-get install -y --no-install-recommends "${PACKAGES[@]}" || rc=$?
  fi
  ((added_policy)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get install failed ($rc)"
  quiet_services
  have_all || die "installed, but nats-server or mosquitto is not on PATH"
  cmd_versions
}

cmd_config() {
  (($# == 3)) || usage
  local dir="$1" nats_ws="$2" mqtt_ws="$3" p
  for p in "$nats_ws" "$mqtt_ws"; do
    [[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || die "bad port '$p'"
  done
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  # mosquitto started as root drops to the "mosquitto" user before it binds its unix socket, so
  # the socket's directory must belong to that user.
  local run="$dir/mosquitto-run"
  mkdir -p "$run"
  if [[ ${EUID:-$(id -u)} -eq 0 ]] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto "$run"
  fi
  rm -f "$run/mosquitto.sock"
  cat >"$dir/nats.conf" <<EOF
# nats-server for coretalk-load: WebSocket on 127.0.0.1:$nats_ws, no TLS, no auth.
# The plain client port is random (-1): nothing uses it, and a fixed one could collide.
host: 127.0.0.1
port: -1
# 1 KB payloads (W0, W4) with plenty of room; the default is 1 MB already.
max_payload: 1MB
# W1 holds up to ~19k connections per process (the file limit); no cap of its own below that.
max_connections: 1000000
# How long a write to a slow client may block before nats calls it a slow consumer (default 10s).
write_deadline: "10s"
# Bytes queued per client before it is a slow consumer (default 64MB; W4 at 10k subscribers).
max_pending: 64MB
websocket {
  host: 127.0.0.1
  port: $nats_ws
  no_tls: true
  compression: false
}
EOF
  cat >"$dir/mosquitto.conf" <<EOF
# mosquitto for coretalk-load: MQTT over WebSocket on 127.0.0.1:$mqtt_ws, anonymous, in memory.
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages false
set_tcp_nodelay true
# Per-client queue of outgoing messages: W4 bursts to 10k subscribers must not be dropped here
# (the default 1000 drops); 0 bytes = no byte limit.
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 0
memory_limit 0
# The address is a request: the WebSocket listener of 2.0.11 (libwebsockets) binds every address.
listener $mqtt_ws 127.0.0.1
protocol websockets
max_connections -1
# mosquitto 2.0.11 refuses to start when all its listeners are WebSocket ones ("Unable to start
# any listening sockets"), so a plain MQTT listener on a unix socket keeps it company: it takes
# no TCP port and nothing connects to it.
listener 0 $run/mosquitto.sock
protocol mqtt
EOF
  echo "wrote $dir/nats.conf and $dir/mosquitto.conf"
}

version_of() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not from dpkg"
}

cmd_versions() {
  local nv mv
  command -v nats-server >/dev/null 2>&1 || die "nats-server is not installed (peers.sh install)"
  command -v mosquitto >/dev/null 2>&1 || die "mosquitto is not installed (peers.sh install)"
  nv="$(nats-server --version 2>&1 | head -n1 | sed -E 's/.*v([0-9][0-9.]*).*/\1/')"
  # mosquitto has no --version; -h prints "mosquitto version X.Y.Z" first and exits non-zero.
  mv="$( (mosquitto -h 2>&1 || true) | head -n1 | sed -E 's/.*version ([0-9][0-9.]*).*/\1/')"
  echo "nats-server $nv (debian $(version_of nats-server))"
  echo "mosquitto $mv (debian $(version_of mosquitto))"
}

cmd_start() {
  (($# == 3)) || usage
  local peer="$1" dir="$2" cores="$3"
  command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) is missing"
  case "$peer" in
    nats)
      [[ -f $dir/nats.conf ]] || die "$dir/nats.conf missing (peers.sh config first)"
      exec taskset -c "$cores" nats-server -c "$dir/nats.conf"
      ;;
    mosquitto)
      [[ -f $dir/mosquitto.conf ]] || die "$dir/mosquitto.conf missing (peers.sh config first)"
      exec taskset -c "$cores" mosquitto -c "$dir/mosquitto.conf"
      ;;
    *) die "unknown peer '$peer' (nats or mosquitto)" ;;
  esac
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  config) shift; cmd_config "$@" ;;
  versions) shift; cmd_versions ;;
  start) shift; cmd_start "$@" ;;
  *) usage ;;
esac
