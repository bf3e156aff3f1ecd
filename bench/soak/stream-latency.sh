#!/usr/bin/env bash
# Salesforce -> NetSuite latency of single edits (the first one after an idle minute included), the
# Salesforce REST calls of that idle minute, and a burst's edits/s, with the worker on
# examples/salesforce-netsuite.json over the sandboxes: streaming (Change Data Capture over the
# Pub/Sub API) by default, polling with --poll. Starts a throwaway PostgreSQL unless CDCSYNC_DB is set.
#   bench/soak/stream-latency.sh [--poll] [--accounts 20] [--edits 30] [--burst 2000] [--idle-seconds 60]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
dotnet build bench/soak/CdcSync.Soak.csproj -c Release --nologo -v quiet -clp:ErrorsOnly >/dev/null
devdb_dir=""
trap '[[ -n "$devdb_dir" ]] && scripts/devdb.sh stop "$devdb_dir" || true' EXIT
if [[ -z "${CDCSYNC_DB:-}" ]]; then
  devdb_dir="${TMPDIR:-/tmp}/cdcsync-stream-$$-$RANDOM"
  eval "$(scripts/devdb.sh start "$devdb_dir")"
fi
dotnet bench/soak/bin/Release/net10.0/CdcSync.Soak.dll stream-latency --repo "$repo" "$@"
