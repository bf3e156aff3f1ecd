#!/usr/bin/env bash
# The console's cost to the pipeline: `cdcsync run` drains a backlog of N rows (1,000-row
# transactions) into a PostgreSQL target with the console off (Console:Url empty), served but not
# visited (idle), and on with a signed-in client loading the overview every 0.5 s; R rounds. Prints
# the time from the first insert until the target holds every row, the worker's CPU seconds (user +
# system, from /proc) and its peak RSS per run.
#
#   bench/console.sh [N] [R]      default: 100000 3
#
# Uses CDCSYNC_DB (superuser, wal_level=logical) or starts a throwaway cluster with scripts/devdb.sh.
# Destructive on that server: databases cdcsync_console_hub / cdcsync_console_target are re-created.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
n=${1:-100000}; reps=${2:-3}
source bench/common.sh
admin="$(psql_url "$(with_db postgres)")"
hub_cs="$(with_db cdcsync_console_hub)"; target_cs="$(with_db cdcsync_console_target)"
hub="$(psql_url "$hub_cs")"; target="$(psql_url "$target_cs")"
port=$((20000 + RANDOM % 20000))
password="bench-console-password"

measure() { # off|idle|on
  local mode=$1 url="" config jar
  [[ $mode != off ]] && url="http://127.0.0.1:$port"
  config="$(mktemp /tmp/cdcsync-console.XXXXXX.json)"; jar="$(mktemp /tmp/cdcsync-console-jar.XXXXXX)"
  cat >"$config" <<JSON
{ "Hub": { "ConnectionString": "$hub_cs", "Slot": "console_slot", "Publication": "console_pub", "MetricsUrl": "" },
  "Console": { "Url": "$url" },
  "Connectors": { "target": { "Type": "postgres", "ConnectionString": "$target_cs" } },
  "Routes": { "public.big": [ "target" ] } }
JSON
  psql -q "$admin" -c "DROP DATABASE IF EXISTS cdcsync_console_hub WITH (FORCE)" -c "DROP DATABASE IF EXISTS cdcsync_console_target WITH (FORCE)" \
    -c "SELECT pg_drop_replication_slot('console_slot') FROM pg_replication_slots WHERE slot_name = 'console_slot'" \
    -c "CREATE DATABASE cdcsync_console_hub" -c "CREATE DATABASE cdcsync_console_target" >/dev/null
  CDCSYNC_DB="$hub_cs" ./cdcsync migrate >/dev/null
  printf '%s\n' "$password" | CDCSYNC_DB="$hub_cs" ./cdcsync console add-user bench --role viewer --password-stdin >/dev/null
  for db in "$hub" "$target"; do psql -q "$db" -c "CREATE TABLE big (id int PRIMARY KEY, v int, note text)"; done
  dotnet artifacts/cli/cdcsync.dll run --config "$config" >/tmp/cdcsync-console-worker.log 2>&1 &
  local pid=$! client=""
  for _ in $(seq 150); do [[ "$(psql -At "$hub" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'console_slot' AND active")" == 1 ]] && break; sleep 0.2; done
  if [[ $mode == on ]]; then
    local token
    token="$(curl -s -c "$jar" "$url/login" | sed -nE 's/.*name="__RequestVerificationToken" type="hidden" value="([^"]+)".*/\1/p')"
    curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "name=bench" --data-urlencode "password=$password" --data-urlencode "__RequestVerificationToken=$token" "$url/login"
    (while true; do curl -s -o /dev/null -b "$jar" "$url/"; sleep 0.5; done) &
    client=$!
  fi
  local cpu0; cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local start; start=$(date +%s.%N)
  for ((i = 0; i < n; i += 1000)); do echo "INSERT INTO big SELECT g, g % 1000, repeat('x', 100) || g FROM generate_series($((i + 1)), $((i + 1000))) g;"; done | psql -q "$hub"
  until [[ "$(psql -At "$target" -c "SELECT count(*) FROM big")" == "$n" ]]; do sleep 0.2; done
  local end; end=$(date +%s.%N)
  local cpu1; cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local hwm; hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  [[ -n $client ]] && kill "$client" 2>/dev/null && wait "$client" 2>/dev/null || true
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$config" "$jar"
  printf '| %-4s | %s | %.1f | %.1f | %d MB |\n' "$mode" "$n" "$(echo "$end - $start" | bc)" "$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l)" $((hwm / 1024))
}

echo "| console | rows | drain s | worker CPU s | peak RSS |"
echo "|---|---|---|---|---|"
for ((r = 0; r < reps; r++)); do measure off; measure idle; measure on; done
