#!/usr/bin/env bash
# Host settings for a coretalk server holding many connections (see tuning/kernel.md).
#
#   host.sh status    show current and recommended values, and the limits this script does not touch
#   host.sh apply     save the current values to the state file, then apply the recommended ones
#   host.sh revert    restore the values saved by `apply`, then remove the state file
#
# Only sysctls are changed, and only at run time (nothing is written under /etc, so a reboot also
# reverts). Every value is saved before it is written; keys that do not exist here are skipped.
# Process limits (open files, memlock) and transparent huge pages are reported, never changed:
# they belong to the service manager, and this script could not restore them reliably.
# `apply` and `revert` need root. The state file is $CORETALK_HOST_STATE, by default
# /var/lib/coretalk/host-sysctl.state.
set -euo pipefail

STATE="${CORETALK_HOST_STATE:-/var/lib/coretalk/host-sysctl.state}"
# Where sysctls live; only tests point this elsewhere.
SYSCTL_ROOT="${CORETALK_SYSCTL_ROOT:-/proc/sys}"

# key | rule | recommended value. Rules:
#   min     raise to the value if lower, never lower
#   widen   port range: lower bound down to the first number, upper bound up to the second
#   triple  component-wise "min" on a three-number value
#   buffer  set min and default to the given two numbers; keep the current maximum
SETTINGS=(
  "net.core.somaxconn|min|65535"
  "net.ipv4.tcp_max_syn_backlog|min|65535"
  "net.core.netdev_max_backlog|min|16384"
  "net.ipv4.ip_local_port_range|widen|10240 65535"
  "net.ipv4.tcp_mem|triple|@tcp_mem"
  "net.ipv4.tcp_rmem|buffer|4096 16384"
  "net.ipv4.tcp_wmem|buffer|4096 16384"
  "fs.nr_open|min|1048576"
  "fs.file-max|min|2097152"
)

die() { echo "host.sh: $*" >&2; exit 1; }

require_root() {
  [[ ${EUID:-$(id -u)} -eq 0 ]] || die "'$1' changes kernel settings and must run as root"
}

path_of() { echo "$SYSCTL_ROOT/${1//.//}"; }

# The current value with its whitespace normalised to single spaces; fails if unreadable or
# not made of numbers (every key this script handles is numeric).
read_value() {
  local p v
  p="$(path_of "$1")"
  [[ -f $p && -r $p ]] || return 1
  v="$(tr -s '[:space:]' ' ' <"$p" | sed 's/^ //; s/ $//')" || return 1
  [[ $v =~ ^[0-9]+( [0-9]+)*$ ]] || return 1
  echo "$v"
}

# tcp_mem recommendation in pages: 1/16, 1/8 and 1/4 of physical memory.
tcp_mem_target() {
  local kib page pages
  kib="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  page="$(getconf PAGESIZE)"
  pages=$((kib * 1024 / page))
  echo "$((pages / 16)) $((pages / 8)) $((pages / 4))"
}

max() { if (($1 > $2)); then echo "$1"; else echo "$2"; fi; }
min() { if (($1 < $2)); then echo "$1"; else echo "$2"; fi; }

# The value to apply for a key, given its rule, recommendation and current value.
target_of() {
  local rule="$1" rec="$2" cur="$3"
  local -a c r
  read -r -a c <<<"$cur"
  [[ $rec == "@tcp_mem" ]] && rec="$(tcp_mem_target)"
  read -r -a r <<<"$rec"
  case "$rule" in
    min) max "${c[0]}" "${r[0]}" ;;
    widen) echo "$(min "${c[0]}" "${r[0]}") $(max "${c[1]}" "${r[1]}")" ;;
    triple) echo "$(max "${c[0]}" "${r[0]}") $(max "${c[1]}" "${r[1]}") $(max "${c[2]}" "${r[2]}")" ;;
    buffer) echo "${r[0]} ${r[1]} ${c[2]}" ;;
    *) die "unknown rule $rule" ;;
  esac
}

write_value() {
  local key="$1" value="$2"
  { printf '%s\n' "$value" >"$(path_of "$key")"; } 2>/dev/null || return 1
  [[ "$(read_value "$key")" == "$value" ]]
}

report_limits() {
  echo
  echo "Not changed by this script (see tuning/kernel.md):"
  echo "  open files (this shell): soft $(ulimit -Sn), hard $(ulimit -Hn); coretalk needs one per connection plus a few dozen"
  echo "  memlock (this shell):    soft $(ulimit -Sl) KiB, hard $(ulimit -Hl) KiB; glommio needs >= 512 KiB per process"
  local thp=/sys/kernel/mm/transparent_hugepage/enabled
  [[ -r $thp ]] && echo "  transparent huge pages:  $(cat "$thp") (madvise recommended)"
  return 0
}

cmd_status() {
  local entry key rule rec cur target
  printf '%-32s %-28s %s\n' "sysctl" "current" "recommended"
  for entry in "${SETTINGS[@]}"; do
    IFS='|' read -r key rule rec <<<"$entry"
    if ! cur="$(read_value "$key")"; then
      printf '%-32s %s\n' "$key" "(not available here)"
      continue
    fi
    target="$(target_of "$rule" "$rec" "$cur")"
    printf '%-32s %-28s %s\n' "$key" "$cur" "$target"
  done
  if [[ -e $STATE ]]; then
    echo
    echo "applied: $STATE exists (run 'host.sh revert' to restore the saved values)"
  fi
  report_limits
}

cmd_apply() {
  require_root apply
  [[ -e $STATE ]] && die "$STATE exists: settings were already applied; run 'host.sh revert' first"
  mkdir -p "$(dirname "$STATE")"
  printf '# coretalk host.sh state, %s: key<TAB>original<TAB>applied\n' "$(date -u +%FT%TZ)" >"$STATE"
  local entry key rule rec cur target failed=0 changed=0
  for entry in "${SETTINGS[@]}"; do
    IFS='|' read -r key rule rec <<<"$entry"
    if ! cur="$(read_value "$key")"; then
      echo "skip   $key: not available here"
      continue
    fi
    target="$(target_of "$rule" "$rec" "$cur")"
    if [[ $cur == "$target" ]]; then
      echo "keep   $key = $cur"
      continue
    fi
    # Saved before it is written, so an interrupted run can still be reverted.
    printf '%s\t%s\t%s\n' "$key" "$cur" "$target" >>"$STATE"
    if write_value "$key" "$target"; then
      echo "set    $key: $cur -> $target"
      changed=$((changed + 1))
    else
      echo "FAILED $key: could not write $target (still $(read_value "$key"))" >&2
      failed=1
    fi
  done
  echo "saved originals in $STATE ($changed changed)"
  report_limits
  return "$failed"
}

cmd_revert() {
  require_root revert
  [[ -e $STATE ]] || { echo "nothing to revert: $STATE does not exist"; return 0; }
  local key orig applied cur failed=0
  local -a lines=()
  while IFS= read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    lines+=("$line")
  done <"$STATE"
  # Restore in reverse order of application.
  local i
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    IFS=$'\t' read -r key orig applied <<<"${lines[i]}"
    if ! cur="$(read_value "$key")"; then
      echo "FAILED $key: cannot read it any more" >&2
      failed=1
      continue
    fi
    if [[ $cur == "$orig" ]]; then
      echo "keep   $key = $orig"
      continue
    fi
    [[ $cur != "$applied" ]] && echo "note   $key was changed after apply (now $cur); restoring the original anyway"
    if write_value "$key" "$orig"; then
      echo "reset  $key: $cur -> $orig"
    else
      echo "FAILED $key: could not write $orig (still $(read_value "$key"))" >&2
      failed=1
    fi
  done
  if ((failed)); then
    echo "kept $STATE because some values could not be restored" >&2
    return 1
  fi
  rm -f "$STATE"
  echo "restored; removed $STATE"
}

case "${1:-}" in
  status) cmd_status ;;
  apply) cmd_apply ;;
  revert) cmd_revert ;;
  *)
    echo "usage: $0 status|apply|revert   (state file: $STATE)" >&2
    exit 2
    ;;
esac
