#!/usr/bin/env bash
# Runs the CdcSync benchmarks (reader vs pg_recvlogical, PostgreSQL connector vs CREATE SUBSCRIPTION).
#
#   bench/run.sh [reader|connector|all] [--rows N] [--reps R] [--scale S] [--clients C] [--json FILE]
#
# With CDCSYNC_DB set, that server is used (superuser, wal_level=logical; its pgbench tables are
# re-created and databases cdcsync_bench_native / cdcsync_bench_cdcsync are dropped and re-created).
# Without it, a throwaway cluster is started with scripts/devdb.sh and removed at the end.
# Needs pgbench and pg_recvlogical on PATH (postgresql-client).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
mode="${1:-all}"
[[ $# -gt 0 ]] && shift

if [[ -z "${CDCSYNC_DB:-}" ]]; then
  export CDCSYNC_DEVDB_DIR="${CDCSYNC_DEVDB_DIR:-$(mktemp -d /tmp/cdcsync-bench-db.XXXXXX)}"
  trap 'scripts/devdb.sh stop "$CDCSYNC_DEVDB_DIR" || true' EXIT
  eval "$(scripts/devdb.sh start "$CDCSYNC_DEVDB_DIR")"
fi

dotnet build -c Release bench/CdcSync.Bench --nologo -v quiet -clp:ErrorsOnly
dotnet run -c Release --no-build --project bench/CdcSync.Bench -- "$mode" "$@"
