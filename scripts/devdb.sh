#!/usr/bin/env bash
# A throwaway PostgreSQL hub on loopback with wal_level=logical.
#
#   scripts/devdb.sh start [dir]   start (or reuse) a cluster; prints export lines for
#                                  CDCSYNC_DB and CDCSYNC_TARGET_DB on stdout
#   scripts/devdb.sh stop  [dir]   stop it and delete its files
#   scripts/devdb.sh env   [dir]   print the export lines of a running cluster
#
# Use: eval "$(scripts/devdb.sh start)". Works as root (the server runs as the
# postgres user through runuser) and as a normal user. Messages go to stderr.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd="${1:-start}"
dir="${2:-${CDCSYNC_DEVDB_DIR:-$repo/.devdb}}"
user=cdcsync
password=cdcsync

say() { echo "devdb: $*" >&2; }

bindir="$(pg_config --bindir 2>/dev/null || true)"
if [[ -z "$bindir" || ! -x "$bindir/pg_ctl" ]]; then
  for candidate in /usr/lib/postgresql/*/bin; do
    [[ -x "$candidate/pg_ctl" ]] && bindir="$candidate"
  done
fi
if [[ -z "$bindir" || ! -x "$bindir/pg_ctl" ]]; then
  say "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them, e.g. 'apt-get install postgresql-15', or set CDCSYNC_DB to an existing hub."
  exit 2
fi

as_owner() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

print_env() {
  local port
  port="$(cat "$dir/port")"
  echo "export CDCSYNC_DB='Host=127.0.0.1;Port=$port;Database=cdcsync;Username=$user;Password=$password'"
  echo "export CDCSYNC_TARGET_DB='Host=127.0.0.1;Port=$port;Database=cdcsync_target;Username=$user;Password=$password'"
}

running() { [[ -f "$dir/data/postmaster.pid" ]] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

port_free() { ! (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "$cmd" in
  start)
    if running; then
      say "reusing the running cluster in $dir"
      print_env
      exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    port="${CDCSYNC_DEVDB_PORT:-}"
    if [[ -z "$port" ]]; then
      port=55432
      while ! port_free "$port"; do port=$((port + 1)); done
    fi
    echo "$port" >"$dir/port"
    echo "$password" >"$dir/pwfile"
    if [[ "$(id -u)" == 0 ]]; then chown -R postgres: "$dir"; fi
    say "initdb in $dir/data"
    as_owner "$bindir/initdb" -D "$dir/data" -U "$user" --pwfile="$dir/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
# Replication origins count against max_replication_slots too, and every hub database has its own
# (cdcsync:<database>:<connector>): a test run creates a few hundred hub databases.
max_replication_slots = 512
max_wal_senders = 64
max_connections = 200
shared_buffers = 256MB
max_wal_size = 4GB
logical_decoding_work_mem = 64MB
track_commit_timestamp = on
CONF
    cat >>"$dir/data/pg_hba.conf" <<HBA
host replication all 127.0.0.1/32 scram-sha-256
HBA
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bindir/psql" -h "$dir" -p "$port" -U "$user" -d postgres -v ON_ERROR_STOP=1 -q \
      -c "CREATE DATABASE cdcsync" -c "CREATE DATABASE cdcsync_target" >&2
    say "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (wal_level=logical); stop with: scripts/devdb.sh stop"
    print_env
    ;;
  env)
    running || { say "no cluster running in $dir; start one with: scripts/devdb.sh start"; exit 1; }
    print_env
    ;;
  stop)
    if running; then as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true; fi
    rm -rf "$dir"
    say "stopped and removed $dir"
    ;;
  *)
    say "unknown command '$cmd'; use start, env or stop"
    exit 2
    ;;
esac
