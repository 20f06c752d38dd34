#!/usr/bin/env bash
# Obtain and run a throwaway Redis server on 127.0.0.1 for dsrs tests, benchmarks and CI.
#
#   scripts/redis-server.sh install          install Debian's redis-server if it is missing
#   scripts/redis-server.sh start PORT       install if needed, start one on 127.0.0.1:PORT, wait for PONG
#   scripts/redis-server.sh stop PORT        stop the one on PORT (no-op when none runs)
#   scripts/redis-server.sh status PORT      exit 0 when one answers on PORT
#
# The server keeps nothing on disk (--save '' --appendonly no); its pid and log files live in
# ${DSRS_REDIS_RUN_DIR:-${TMPDIR:-/tmp}/dsrs-redis}. Exit codes: 0 ok, 2 usage, 3 cannot install
# (no apt-get or no root), 4 the server did not come up, 5 apt-get failed.
set -euo pipefail

RUN_DIR="${DSRS_REDIS_RUN_DIR:-${TMPDIR:-/tmp}/dsrs-redis}"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}

# True while process $1 runs (a zombie left by a parent that does not reap counts as gone).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

find_server() {
  command -v redis-server 2>/dev/null || { [ -x /usr/bin/redis-server ] && echo /usr/bin/redis-server; } || true
}

install_server() {
  if [ -n "$(find_server)" ] && command -v redis-cli >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server.sh: redis-server is not installed and apt-get is not available" >&2
    exit 3
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      echo "redis-server.sh: installing redis-server needs root (or passwordless sudo)" >&2
      exit 3
    fi
  fi
  echo "redis-server.sh: installing Debian's redis-server" >&2
  # Package scripts must not start a system-wide server on 6379 as a side effect.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && created_policy=1
  fi
  local rc=0
  {
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null 2>&1 \
      || { $sudo apt-get update -q >/dev/null 2>&1 \
           && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null; }
  } || rc=$?
  if [ "$created_policy" = 1 ]; then $sudo rm -f "$policy"; fi
  if [ "$rc" != 0 ] || [ -z "$(find_server)" ]; then
    echo "redis-server.sh: apt-get could not install redis-server (exit $rc)" >&2
    exit 5
  fi
}

check_port() {
  case "${1:-}" in
    ''|*[!0-9]*) echo "redis-server.sh: PORT must be a number, got '${1:-}'" >&2; exit 2 ;;
  esac
}

pong() {
  [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null || true)" = "PONG" ]
}

start_server() {
  local port=$1
  install_server
  mkdir -p "$RUN_DIR"
  if pong "$port"; then
    echo "redis-server.sh: a server already answers on 127.0.0.1:$port" >&2
    return 0
  fi
  "$(find_server)" --port "$port" --bind 127.0.0.1 --protected-mode yes \
    --save '' --appendonly no --daemonize yes \
    --dir "$RUN_DIR" --pidfile "$RUN_DIR/redis-$port.pid" --logfile "$RUN_DIR/redis-$port.log"
  for _ in $(seq 1 100); do
    if pong "$port"; then
      echo "redis-server.sh: redis-server up on 127.0.0.1:$port" >&2
      return 0
    fi
    sleep 0.05
  done
  echo "redis-server.sh: redis-server did not answer on 127.0.0.1:$port; log: $RUN_DIR/redis-$port.log" >&2
  tail -n 20 "$RUN_DIR/redis-$port.log" >&2 2>/dev/null || true
  exit 4
}

stop_server() {
  local port=$1 pidfile="$RUN_DIR/redis-$1.pid"
  if command -v redis-cli >/dev/null 2>&1 && pong "$port"; then
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  fi
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile" 2>/dev/null || true)
    for _ in $(seq 1 100); do
      if [ -z "$pid" ] || ! alive "$pid"; then break; fi
      sleep 0.05
    done
    if [ -n "$pid" ] && alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
  fi
}

cmd=${1:-}
case "$cmd" in
  install) install_server ;;
  start) check_port "${2:-}"; start_server "$2" ;;
  stop) check_port "${2:-}"; stop_server "$2" ;;
  status) check_port "${2:-}"; command -v redis-cli >/dev/null 2>&1 && pong "$2" ;;
  *) usage ;;
esac
