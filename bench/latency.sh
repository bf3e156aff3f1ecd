#!/usr/bin/env bash
# Commit-to-target latency at a sustained rate, CdcSync beside native logical replication:
# pgbench inserts ROWS_PER_TX rows per transaction at TPS transactions per second for SECONDS
# into a hub table, once for each system, one after the other (each its own pgbench load, so they
# never compete):
#   cdcsync  hub table `events` routed to a PostgreSQL target (database cdcsync_lat_target) by the
#            real `cdcsync run` process (slot lat_slot, publication lat_pub);
#   native   hub table `events_native` published (lat_native_pub) to CREATE SUBSCRIPTION lat_native
#            in database cdcsync_lat_native (slot lat_native, made beforehand with
#            pg_create_logical_replication_slot: create_slot = true would hang, the publisher is
#            the same cluster; copy_data = false).
# Latency of each row = target commit time - hub commit time (one server, so one clock; needs
# track_commit_timestamp=on, which scripts/devdb.sh sets). Hub and CdcSync target:
# pg_xact_commit_timestamp. Native target: the local commit time in the apply worker's WAL commit
# record, read with pg_walinspect (its pg_xact_commit_timestamp is the hub's commit time, which
# the apply worker carries over with its replication origin, so it would read 0 ms).
#
#   bench/latency.sh [TPS] [ROWS_PER_TX] [SECONDS]     default: 100 100 30  (10,000 rows/s)
#
# LAT_ORDER: the systems and their order, default "cdcsync native" ("native cdcsync" runs native
# first, "cdcsync" or "native" only that one; bench/run.sh suite alternates the order).
# LAT_WARMUP: seconds of the same load before the measured one, for each system (default 15; its
# rows are not counted): the measured load meets a worker that is started, compiled and connected,
# as a long-running deployment is, and the apply worker likewise.
# LAT_DRAIN_TIMEOUT: seconds to wait for the rows after the load ends (default 600).
# With BENCH_JSON=FILE set, one JSON object per system and run is appended to FILE, with
# "system": "cdcsync" or "native" and the same "runId" for both (bench/run.sh suite uses it).
# The subscription and the slots are dropped at the end, also on failure.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
tps=${1:-100}; per=${2:-100}; seconds=${3:-30}; warmup=${LAT_WARMUP:-15}
[[ "$warmup" =~ ^[0-9]+$ ]] || { echo "latency.sh: LAT_WARMUP must be a whole number of seconds, not '$warmup'" >&2; exit 2; }
read -r -a order <<<"${LAT_ORDER:-cdcsync native}"
[[ ${#order[@]} -ge 1 && ${#order[@]} -le 2 && "${order[0]}" != "${order[1]:-}" ]] || { echo "latency.sh: LAT_ORDER must name cdcsync and/or native once each" >&2; exit 2; }
for s in "${order[@]}"; do [[ "$s" == cdcsync || "$s" == native ]] || { echo "latency.sh: unknown system in LAT_ORDER: $s (cdcsync, native)" >&2; exit 2; }; done
source bench/common.sh
admin="$(psql_url "$(with_db postgres)")"
hub_cs="$(with_db cdcsync_lat_hub)"; target_cs="$(with_db cdcsync_lat_target)"; native_cs="$(with_db cdcsync_lat_native)"
hub="$(psql_url "$hub_cs")"; target="$(psql_url "$target_cs")"; native="$(psql_url "$native_cs")"
[[ "$(psql -At "$admin" -c 'SHOW track_commit_timestamp')" == on ]] || { echo "track_commit_timestamp must be on (scripts/devdb.sh sets it)" >&2; exit 2; }

tmp="$(mktemp -d /tmp/cdcsync-lat.XXXXXX)"
pid=""
drop_slot() { # A slot whose walsender is still exiting is "active" for a moment.
  for _ in $(seq 100); do
    psql -q "$admin" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$1'" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "latency.sh: could not drop slot $1" >&2
  return 1
}
drop_subscription() {
  if [[ "$(psql -At "$admin" -c "SELECT count(*) FROM pg_subscription WHERE subname = 'lat_native'")" != 0 ]]; then
    psql -q "$native" -c "ALTER SUBSCRIPTION lat_native DISABLE" -c "ALTER SUBSCRIPTION lat_native SET (slot_name = NONE)" -c "DROP SUBSCRIPTION lat_native" >/dev/null
  fi
}
stop_worker() {
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}
drop_replication() { # everything that could hold WAL: the worker, the subscription, the slots
  stop_worker
  psql -At "$admin" -c "SELECT 1" >/dev/null 2>&1 || return 0 # the server is gone (or was never there)
  drop_subscription
  local s rc=0
  for s in lat_slot lat_native lat_wal; do drop_slot "$s" || rc=1; done
  return $rc
}
cleanup() {
  set +e
  drop_replication
  rm -rf "$tmp"
  bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_replication
psql -q "$admin" -c "DROP DATABASE IF EXISTS cdcsync_lat_hub WITH (FORCE)" -c "DROP DATABASE IF EXISTS cdcsync_lat_target WITH (FORCE)" \
  -c "DROP DATABASE IF EXISTS cdcsync_lat_native WITH (FORCE)" \
  -c "CREATE DATABASE cdcsync_lat_hub" -c "CREATE DATABASE cdcsync_lat_target" -c "CREATE DATABASE cdcsync_lat_native" >/dev/null 2>&1
CDCSYNC_DB="$hub_cs" ./cdcsync migrate >/dev/null
for table in events events_native; do
  psql -q "$hub" -c "CREATE TABLE $table (id bigint PRIMARY KEY, v int, note text)" -c "CREATE SEQUENCE ${table}_seq CACHE 1000"
  echo "INSERT INTO $table SELECT nextval('${table}_seq'), g, 'event ' || g FROM generate_series(1, $per) g;" >"$tmp/$table.sql"
done
psql -q "$target" -c "CREATE TABLE events (id bigint PRIMARY KEY, v int, note text)"
psql -q "$native" -c "CREATE TABLE events_native (id bigint PRIMARY KEY, v int, note text)"
if [[ " ${order[*]} " == *" native "* ]]; then
  psql -q "$native" -c "CREATE EXTENSION pg_walinspect" || { echo "latency.sh: native needs the pg_walinspect extension (PostgreSQL contrib); LAT_ORDER=cdcsync measures CdcSync alone" >&2; exit 2; }
fi
psql -q "$hub" -c "CREATE PUBLICATION lat_native_pub FOR TABLE events_native"
cat >"$tmp/config.json" <<JSON
{ "Hub": { "ConnectionString": "$hub_cs", "Slot": "lat_slot", "Publication": "lat_pub", "MetricsUrl": "" }, "Console": { "Url": "" },
  "Connectors": { "target": { "Type": "postgres", "ConnectionString": "$target_cs" } },
  "Routes": { "public.events": [ "target" ] } }
JSON

load() { # TABLE SYSTEM [SECONDS]: the pgbench load of one system
  pgbench -n -c 2 -j 2 -R "$tps" -T "${3:-$seconds}" -f "$tmp/$1.sql" "$hub" 2>&1 | grep -E "tps =|latency average" | sed "s/^/pgbench ($2${3:+, warm-up}): /" >&2
}
warm_up() { # TABLE TARGET_URL SYSTEM: the warm-up load, landed; prints the last id it inserted
  if ((warmup > 0)); then
    load "$1" "$3" "$warmup"
    drain "$1" "$2" "$3"
  fi
  psql -At "$hub" -c "SELECT coalesce(max(id), 0) FROM $1"
}
drain() { # TABLE TARGET_URL SYSTEM: wait until the target holds every row of the hub table
  local total deadline=$((SECONDS + ${LAT_DRAIN_TIMEOUT:-600}))
  total=$(psql -At "$hub" -c "SELECT count(*) FROM $1")
  until [[ "$(psql -At "$2" -c "SELECT count(*) FROM $1")" == "$total" ]]; do
    if [[ "$3" == cdcsync ]] && ! kill -0 "$pid" 2>/dev/null; then
      echo "latency.sh: the worker exited before the rows landed; its log (/tmp/cdcsync-lat-worker.log):" >&2
      tail -5 /tmp/cdcsync-lat-worker.log >&2
      exit 1
    fi
    if ((SECONDS > deadline)); then
      echo "latency.sh: $3: not every one of $total rows at the target ${LAT_DRAIN_TIMEOUT:-600} s after the load" >&2
      [[ "$3" == native ]] && psql "$native" -c "SELECT * FROM pg_stat_subscription" >&2
      exit 1
    fi
    sleep 0.2
  done
}

run_cdcsync() {
  dotnet artifacts/cli/cdcsync.dll run --config "$tmp/config.json" >/tmp/cdcsync-lat-worker.log 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    [[ "$(psql -At "$hub" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'lat_slot' AND active")" == 1 ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  local floor
  floor=$(warm_up events "$target" cdcsync)
  load events cdcsync
  drain events "$target" cdcsync
  psql -qAt "$hub" -c "\\copy (SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM events WHERE id > $floor) TO '$tmp/cdcsync-hub.csv' CSV"
  psql -qAt "$target" -c "\\copy (SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM events WHERE id > $floor) TO '$tmp/cdcsync-target.csv' CSV"
  awk '/VmHWM/ {print $2}' "/proc/$pid/status" >"$tmp/cdcsync-hwm"
  stop_worker
  drop_slot lat_slot
}

run_native() {
  # A physical slot keeps the WAL that is read back below (the apply worker's commit records).
  psql -q "$hub" -c "SELECT pg_create_physical_replication_slot('lat_wal', true)" \
    -c "SELECT pg_create_logical_replication_slot('lat_native', 'pgoutput')" >/dev/null
  local conninfo="host=$(field Host "$hub_cs") port=$(field Port "$hub_cs") dbname=cdcsync_lat_hub user=$(field Username "$hub_cs") password=$(field Password "$hub_cs")"
  psql -q "$native" -c "CREATE SUBSCRIPTION lat_native CONNECTION '${conninfo//\'/\'\'}' PUBLICATION lat_native_pub WITH (create_slot = false, slot_name = 'lat_native', copy_data = false)"
  # The launcher starts no apply worker within wal_retrieve_retry_interval (5 s by default) of
  # its previous start: wait for the worker to stream before the load starts.
  local ready=0
  for _ in $(seq 300); do
    if [[ "$(psql -At "$hub" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'lat_native' AND active")" == 1 ]]; then ready=1; break; fi
    sleep 0.1
  done
  ((ready)) || { echo "latency.sh: the subscription's apply worker did not start within 30 s" >&2; exit 1; }
  local start end floor
  floor=$(warm_up events_native "$native" native)
  start=$(psql -At "$hub" -c "SELECT pg_current_wal_lsn()")
  load events_native native
  drain events_native "$native" native
  end=$(psql -At "$hub" -c "SELECT pg_current_wal_insert_lsn()") # async commits: written later
  until [[ "$(psql -At "$hub" -c "SELECT pg_current_wal_flush_lsn() >= '$end'")" == t ]]; do sleep 0.1; done
  psql -qAt "$hub" -c "\\copy (SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM events_native WHERE id > $floor) TO '$tmp/native-hub.csv' CSV"
  psql -qAt "$native" -c "\\copy (SELECT id, xmin::text FROM events_native WHERE id > $floor) TO '$tmp/native-rows.csv' CSV"
  # A commit record's description: "<local commit time>[; subxacts: X Y][; origin: node N, lsn L, at <hub commit time>]...".
  psql -qAt "$native" -c "\\copy (SELECT xid, extract(epoch FROM substring(description FROM '^([^;]+)')::timestamptz), substring(description FROM 'subxacts: ([0-9 ]+)') FROM pg_get_wal_records_info('$start', '$end') WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT') TO '$tmp/native-commits.csv' CSV"
  drop_subscription
  drop_slot lat_native
  drop_slot lat_wal
}

run_id="$(date -u +%Y%m%dT%H%M%S.%NZ)"
for s in "${order[@]}"; do "run_$s"; done

python3 - "$tmp" "$seconds" "$tps" "$per" "${BENCH_JSON:-}" "$run_id" "${order[@]}" <<'PY'
import csv, json, os, sys
tmp, seconds, tps, per, bench_json, run_id, order = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7:]
rows = lambda name: list(csv.reader(open(os.path.join(tmp, name))))
results = {}
for position, system in enumerate(order, 1):
    hub = {r[0]: float(r[1]) for r in rows(f"{system}-hub.csv")}
    if system == "cdcsync":
        landed = {r[0]: float(r[1]) for r in rows("cdcsync-target.csv")}
        hwm = int(open(os.path.join(tmp, "cdcsync-hwm")).read().strip() or 0) // 1024
    else:
        commits = {}
        for xid, at, subxacts in rows("native-commits.csv"):
            for x in [xid] + subxacts.split():
                commits[x] = float(at)
        by_xid = rows("native-rows.csv")
        missing = sum(1 for _, xid in by_xid if xid not in commits)
        if missing:
            sys.exit(f"latency.sh: native: no WAL commit record for {missing} of {len(by_xid)} rows")
        landed = {i: commits[xid] for i, xid in by_xid}
        hwm = None
    if set(landed) != set(hub):
        sys.exit(f"latency.sh: {system}: the target's rows differ from the hub's ({len(landed)} vs {len(hub)})")
    lat = sorted((landed[i] - hub[i]) * 1000 for i in hub)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    total = len(lat)
    r = {"system": system, "runId": run_id, "position": position, "order": " ".join(order),
         "tps": tps, "rowsPerTx": per, "targetRate": tps * per, "rows": total, "seconds": seconds, "rowsPerSecond": total / seconds,
         "p50": q(0.5), "p90": q(0.9), "p95": q(0.95), "p99": q(0.99), "max": lat[-1], "min": lat[0], "peakRssMb": hwm}
    results[system] = r
    rss = f"; worker peak RSS {hwm} MB" if hwm is not None else "; apply worker inside the server"
    print(f"{system + ':':9}rows {total} in {seconds} s ({total / seconds:,.0f} rows/s); commit-to-target latency ms: p50 {r['p50']:.1f}, p90 {r['p90']:.1f}, "
          f"p95 {r['p95']:.1f}, p99 {r['p99']:.1f}, max {r['max']:.1f}{rss}")
    if bench_json:
        with open(bench_json, "a") as f:
            f.write(json.dumps(r) + "\n")
if len(results) == 2:
    c, n = results["cdcsync"], results["native"]
    print(f"p99 cdcsync {c['p99']:.1f} ms vs native {n['p99']:.1f} ms: {'at or below' if c['p99'] <= n['p99'] else 'above'} native's (order: {' then '.join(order)})")
PY
