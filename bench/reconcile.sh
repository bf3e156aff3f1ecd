#!/usr/bin/env bash
# Reconcile benchmark: N Salesforce Accounts and N NetSuite customers, the same companies, linked
# by `cdcsync onboard` (not timed), D silent edits on each side; then the real `cdcsync reconcile`
# (read both systems in full, compare with the hub). Prints the time, the API calls each system
# served and the verb's peak memory.
#
#   bench/reconcile.sh [N] [--drift D] [--json FILE]        N defaults to 100000, D to 10
#
# With CDCSYNC_DB set, that server is used (database cdcsync_bench_reconcile is dropped and
# re-created); without it, a throwaway cluster is started with scripts/devdb.sh and removed at the end.
# Needs GNU time at /usr/bin/time.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
pairs=100000
if [[ $# -gt 0 && "$1" != --* ]]; then pairs="$1"; shift; fi

if [[ -z "${CDCSYNC_DB:-}" ]]; then
  export CDCSYNC_DEVDB_DIR="${CDCSYNC_DEVDB_DIR:-$(mktemp -d /tmp/cdcsync-bench-db.XXXXXX)}"
  trap 'scripts/devdb.sh stop "$CDCSYNC_DEVDB_DIR" || true' EXIT
  eval "$(scripts/devdb.sh start "$CDCSYNC_DEVDB_DIR")"
fi

dotnet build -c Release src/CdcSync.Cli --nologo -v quiet -clp:ErrorsOnly
dotnet build -c Release bench/CdcSync.Bench --nologo -v quiet -clp:ErrorsOnly
dotnet run -c Release --no-build --project bench/CdcSync.Bench -- reconcile --pairs "$pairs" \
  --cli "$repo/src/CdcSync.Cli/bin/Release/net10.0/cdcsync.dll" "$@"
