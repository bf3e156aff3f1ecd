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
# The console log is long; the failures are printed again at the end so the tail of a CI log names them.
log="$(mktemp)"
status=0
dotnet test CdcSync.sln -c Release --no-build --nologo --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log" || status=$?
if [[ $status -ne 0 ]]; then
  echo
  echo "=== failed tests (repeated from above) ==="
  awk '/^  Failed /{show=1} /^  (Passed|Skipped) /{show=0} show' "$log" | head -n 400
fi
rm -f "$log"
exit $status
