#!/usr/bin/env bash
# Commit-to-target latency at a sustained rate: pgbench inserts ROWS_PER_TX rows per transaction
# at TPS transactions per second for SECONDS into a hub table routed to a PostgreSQL target by
# `cdcsync run`; latency = target commit time - hub commit time of each row
# (pg_xact_commit_timestamp on both sides; needs track_commit_timestamp=on, which
# scripts/devdb.sh sets; both databases on one server, so one clock).
#
#   bench/latency.sh [TPS] [ROWS_PER_TX] [SECONDS]     default: 100 100 30  (10,000 rows/s)
#
# With BENCH_JSON=FILE set, one JSON object per run is appended to FILE (bench/run.sh suite uses it).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
tps=${1:-100}; per=${2:-100}; seconds=${3:-30}
source bench/common.sh
admin="$(psql_url "$(with_db postgres)")"
hub_cs="$(with_db cdcsync_lat_hub)"; target_cs="$(with_db cdcsync_lat_target)"
hub="$(psql_url "$hub_cs")"; target="$(psql_url "$target_cs")"
[[ "$(psql -At "$admin" -c 'SHOW track_commit_timestamp')" == on ]] || { echo "track_commit_timestamp must be on (scripts/devdb.sh sets it)" >&2; exit 2; }
psql -q "$admin" -c "DROP DATABASE IF EXISTS cdcsync_lat_hub WITH (FORCE)" -c "DROP DATABASE IF EXISTS cdcsync_lat_target WITH (FORCE)" \
  -c "SELECT pg_drop_replication_slot('lat_slot') FROM pg_replication_slots WHERE slot_name = 'lat_slot'" \
  -c "CREATE DATABASE cdcsync_lat_hub" -c "CREATE DATABASE cdcsync_lat_target" >/dev/null 2>&1
CDCSYNC_DB="$hub_cs" ./cdcsync migrate >/dev/null
for db in "$hub" "$target"; do psql -q "$db" -c "CREATE TABLE events (id bigint PRIMARY KEY, v int, note text)"; done
psql -q "$hub" -c "CREATE SEQUENCE events_seq CACHE 1000"
config="$(mktemp /tmp/cdcsync-lat.XXXXXX.json)"
cat >"$config" <<JSON
{ "Hub": { "ConnectionString": "$hub_cs", "Slot": "lat_slot", "Publication": "lat_pub", "MetricsUrl": "" },
  "Connectors": { "target": { "Type": "postgres", "ConnectionString": "$target_cs" } },
  "Routes": { "public.events": [ "target" ] } }
JSON
script="$(mktemp /tmp/cdcsync-lat.XXXXXX.sql)"
echo "INSERT INTO events SELECT nextval('events_seq'), g, 'event ' || g FROM generate_series(1, $per) g;" >"$script"
dotnet artifacts/cli/cdcsync.dll run --config "$config" >/tmp/cdcsync-lat-worker.log 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; bench_cleanup' EXIT
for _ in $(seq 100); do [[ "$(psql -At "$hub" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'lat_slot' AND active")" == 1 ]] && break; sleep 0.2; done
pgbench -n -c 2 -j 2 -R "$tps" -T "$seconds" -f "$script" "$hub" 2>&1 | grep -E "tps =|latency average" | sed 's/^/pgbench: /' >&2
total=$(psql -At "$hub" -c "SELECT count(*) FROM events")
until [[ "$(psql -At "$target" -c "SELECT count(*) FROM events")" == "$total" ]]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "latency.sh: the worker exited before the rows landed; its log (/tmp/cdcsync-lat-worker.log):" >&2
    tail -5 /tmp/cdcsync-lat-worker.log >&2
    exit 1
  fi
  sleep 0.2
done
psql -At "$hub" -c "\\copy (SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM events) TO '/tmp/cdcsync-lat-hub.csv' CSV"
psql -At "$target" -c "\\copy (SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM events) TO '/tmp/cdcsync-lat-target.csv' CSV"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
python3 - "$total" "$seconds" "$hwm" "$tps" "$per" "${BENCH_JSON:-}" <<'PY'
import csv, json, sys
hub = {r[0]: float(r[1]) for r in csv.reader(open('/tmp/cdcsync-lat-hub.csv'))}
lat = sorted((float(r[1]) - hub[r[0]]) * 1000 for r in csv.reader(open('/tmp/cdcsync-lat-target.csv')))
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
total, seconds, hwm = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"rows {total} in {seconds} s ({total / seconds:,.0f} rows/s); commit-to-target latency ms: p50 {q(0.5):.1f}, p90 {q(0.9):.1f}, p95 {q(0.95):.1f}, p99 {q(0.99):.1f}, max {lat[-1]:.1f}; worker peak RSS {hwm // 1024} MB")
if sys.argv[6]:
    with open(sys.argv[6], "a") as f:
        f.write(json.dumps({"tps": int(sys.argv[4]), "rowsPerTx": int(sys.argv[5]), "targetRate": int(sys.argv[4]) * int(sys.argv[5]),
                            "rows": total, "seconds": seconds, "rowsPerSecond": total / seconds,
                            "p50": q(0.5), "p90": q(0.9), "p95": q(0.95), "p99": q(0.99), "max": lat[-1], "peakRssMb": hwm // 1024}) + "\n")
PY
rm -f "$config" "$script"
