#!/usr/bin/env bash
# Memory flatness: peak RSS (VmHWM) of `cdcsync run` while it streams one transaction of N rows,
# and a backlog of N rows in 1,000-row transactions, to a PostgreSQL target. Flat means the peak
# does not grow with N.
#
#   bench/memory.sh [N...]        default: 100000 1000000
#
# Uses CDCSYNC_DB (superuser, wal_level=logical) or starts a throwaway cluster with scripts/devdb.sh.
# Destructive on that server: databases cdcsync_mem_hub / cdcsync_mem_target are re-created.
# With BENCH_JSON=FILE set, one JSON object per measurement is appended to FILE.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
sizes=("$@"); [[ ${#sizes[@]} -eq 0 ]] && sizes=(100000 1000000)
source bench/common.sh
admin="$(psql_url "$(with_db postgres)")"
hub_cs="$(with_db cdcsync_mem_hub)"; target_cs="$(with_db cdcsync_mem_target)"
hub="$(psql_url "$hub_cs")"; target="$(psql_url "$target_cs")"
config="$(mktemp /tmp/cdcsync-mem.XXXXXX.json)"
cat >"$config" <<JSON
{ "Hub": { "ConnectionString": "$hub_cs", "Slot": "mem_slot", "Publication": "mem_pub", "MetricsUrl": "" }, "Console": { "Url": "" },
  "Connectors": { "target": { "Type": "postgres", "ConnectionString": "$target_cs" } },
  "Routes": { "public.big": [ "target" ] } }
JSON

measure() { # shape n
  local shape=$1 n=$2
  psql -q "$admin" -c "DROP DATABASE IF EXISTS cdcsync_mem_hub WITH (FORCE)" -c "DROP DATABASE IF EXISTS cdcsync_mem_target WITH (FORCE)" \
    -c "SELECT pg_drop_replication_slot('mem_slot') FROM pg_replication_slots WHERE slot_name = 'mem_slot'" \
    -c "CREATE DATABASE cdcsync_mem_hub" -c "CREATE DATABASE cdcsync_mem_target" >/dev/null
  CDCSYNC_DB="$hub_cs" ./cdcsync migrate >/dev/null
  for db in "$hub" "$target"; do psql -q "$db" -c "CREATE TABLE big (id int PRIMARY KEY, v int, note text)"; done
  dotnet artifacts/cli/cdcsync.dll run --config "$config" >/tmp/cdcsync-mem-worker.log 2>&1 &
  local pid=$!
  for _ in $(seq 100); do [[ "$(psql -At "$hub" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'mem_slot' AND active")" == 1 ]] && break; sleep 0.2; done
  local start=$(date +%s.%N)
  if [[ $shape == one ]]; then
    psql -q "$hub" -c "INSERT INTO big SELECT g, g % 1000, repeat('x', 100) || g FROM generate_series(1, $n) g"
  else
    for ((i = 0; i < n; i += 1000)); do echo "INSERT INTO big SELECT g, g % 1000, repeat('x', 100) || g FROM generate_series($((i + 1)), $((i + 1000))) g;"; done | psql -q "$hub"
  fi
  until [[ "$(psql -At "$target" -c "SELECT count(*) FROM big")" == "$n" ]]; do sleep 0.2; done
  local end=$(date +%s.%N)
  local hwm; hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  if [[ -n "${BENCH_JSON:-}" ]]; then
    printf '{"shape": "%s", "rows": %d, "seconds": %.2f, "peakRssMb": %d}\n' "$shape" "$n" "$(echo "$end - $start" | bc)" $((hwm / 1024)) >>"$BENCH_JSON"
  fi
  printf '| %s | %s | %.1f | %d MB |\n' "$( [[ $shape == one ]] && echo "one transaction" || echo "1,000-row transactions")" "$n" "$(echo "$end - $start" | bc)" $((hwm / 1024))
}

echo "| shape | rows | seconds to land | worker peak RSS (VmHWM) |"
echo "|---|---|---|---|"
for n in "${sizes[@]}"; do measure one "$n"; done
for n in "${sizes[@]}"; do measure many "$n"; done
rm -f "$config"
