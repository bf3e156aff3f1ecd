#!/usr/bin/env bash
# Runs the whole test suite. Uses CDCSYNC_TEST_DB (a superuser connection string to a server with
# wal_level=logical) when set; otherwise starts a throwaway local PostgreSQL and removes it after.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [[ -z "${CDCSYNC_TEST_DB:-}" ]]; then
  export CDCSYNC_DEVDB_DIR="$repo/.devdb-test"
  trap 'scripts/devdb.sh stop "$CDCSYNC_DEVDB_DIR" || true' EXIT
  eval "$(scripts/devdb.sh start "$CDCSYNC_DEVDB_DIR")"
  export CDCSYNC_TEST_DB="$CDCSYNC_DB"
fi
dotnet build CdcSync.sln -c Release --nologo -v quiet -clp:ErrorsOnly
dotnet test CdcSync.sln -c Release --no-build --nologo --logger "console;verbosity=normal" "$@"
