#!/usr/bin/env bash
# Onboarding benchmark: N Salesforce Accounts and N NetSuite customers, 60% of them the same
# companies (same names, phones formatted differently, none carrying the other's id), seeded into
# the sandboxes; then the real `cdcsync onboard` (load both systems into the hub, match, settle).
# Prints the time, the API calls each system served and the verb's peak memory.
#
#   bench/onboard.sh [N] [--json FILE]        N defaults to 100000
#
# ONBOARD_OVERLAP (default 0.6) sets the shared share. ONBOARD_EXTRA_SQL: a SQL file applied to the
# hub when it lacks cdc.onboard_match (the engine's stand-in, before the onboarding SQL is merged).
# With CDCSYNC_DB set, that server is used (database cdcsync_bench_onboard is dropped and re-created);
# without it, a throwaway cluster is started with scripts/devdb.sh and removed at the end.
# Needs GNU time at /usr/bin/time.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
records=100000
if [[ $# -gt 0 && "$1" != --* ]]; then records="$1"; shift; fi
extra=()
if [[ -n "${ONBOARD_EXTRA_SQL:-}" ]]; then extra=(--extra-sql "$ONBOARD_EXTRA_SQL"); fi

if [[ -z "${CDCSYNC_DB:-}" ]]; then
  export CDCSYNC_DEVDB_DIR="${CDCSYNC_DEVDB_DIR:-$(mktemp -d /tmp/cdcsync-bench-db.XXXXXX)}"
  trap 'scripts/devdb.sh stop "$CDCSYNC_DEVDB_DIR" || true' EXIT
  eval "$(scripts/devdb.sh start "$CDCSYNC_DEVDB_DIR")"
fi

dotnet build -c Release src/CdcSync.Cli --nologo -v quiet -clp:ErrorsOnly
dotnet build -c Release bench/CdcSync.Bench --nologo -v quiet -clp:ErrorsOnly
dotnet run -c Release --no-build --project bench/CdcSync.Bench -- onboard --records "$records" \
  --overlap "${ONBOARD_OVERLAP:-0.6}" --cli "$repo/src/CdcSync.Cli/bin/Release/net10.0/cdcsync.dll" "${extra[@]}" "$@"
