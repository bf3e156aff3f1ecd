#!/usr/bin/env bash
# Two-way soak: 500 Accounts + 500 customers, 2 minutes of random edits (phone, name, website,
# billing city) on both sides, then quiet, then every linked pair checked: each edited field at its
# last edit or at a recorded conflict's decision. For every field that ends wrong it prints that
# record's edits in order and what the hub recorded. Starts a throwaway PostgreSQL unless CDCSYNC_DB
# is set (then a fresh database on that server is used and dropped). Options go to the runner, e.g.
#   bench/soak/soak.sh --records 500 --edit-seconds 120 --edits-per-second 5 --seed 7
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
dotnet build bench/soak/CdcSync.Soak.csproj -c Release --nologo -v quiet -clp:ErrorsOnly >/dev/null
devdb_dir=""
trap '[[ -n "$devdb_dir" ]] && scripts/devdb.sh stop "$devdb_dir" || true' EXIT
if [[ -z "${CDCSYNC_DB:-}" ]]; then
  devdb_dir="${TMPDIR:-/tmp}/cdcsync-soak-$$-$RANDOM"
  eval "$(scripts/devdb.sh start "$devdb_dir")"
fi
dotnet bench/soak/bin/Release/net10.0/CdcSync.Soak.dll --repo "$repo" "$@"
