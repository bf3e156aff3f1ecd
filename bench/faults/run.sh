#!/usr/bin/env bash
# The fault suite's long runner: a hub and a target cluster of its own, `cdcsync run` as a child
# process, a steady pgbench load, and one fault after another. After each fault the target must
# equal the hub: counts, sums and md5 of every table, and per row a version counter equal to the
# number of updates the hub logged for it.
#
#   bench/faults/run.sh [scenario ...]     default: all, in this order:
#     hub-immediate hub-fast target proxy idle-restart kills big-txn-kill subxact-abort toast-key-change
#
# Knobs: FAULT_OUTAGE_SECONDS (60), FAULT_KILLS (50), FAULT_BIG_ROWS (1000000), FAULT_RATE (pgbench
# transactions/s, 300). Figures go to stdout and $work/results.txt; bench/results/HISTORY.md ("Fault
# suite") records a run. Needs PostgreSQL server binaries, pgbench, psql, python3, dotnet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo="$PWD"
outage="${FAULT_OUTAGE_SECONDS:-60}"
kills="${FAULT_KILLS:-50}"
big_rows="${FAULT_BIG_ROWS:-1000000}"
rate="${FAULT_RATE:-300}"
scenarios=("$@")
[[ ${#scenarios[@]} -eq 0 ]] && scenarios=(hub-immediate hub-fast target proxy idle-restart kills big-txn-kill subxact-abort toast-key-change)

work="$(mktemp -d /tmp/cdcsync-faults.XXXXXX)"
chmod 755 "$work"
results="$work/results.txt"
bindir="$(pg_config --bindir 2>/dev/null || true)"
[[ -x "$bindir/pg_ctl" ]] || bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_owner() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgctl() { as_owner "$bindir/pg_ctl" -D "$work/$1/data" -l "$work/$1/server.log" "${@:2}" >/dev/null; }
say() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$results"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

worker_pid=""; load_pid=""; proxy_pid=""
cleanup() {
  set +e
  [[ -n "$load_pid" ]] && { touch "$work/stop-load"; kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null; }
  [[ -n "$worker_pid" ]] && { kill -9 "$worker_pid" 2>/dev/null; wait "$worker_pid" 2>/dev/null; }
  [[ -n "$proxy_pid" ]] && kill "$proxy_pid" 2>/dev/null
  scripts/devdb.sh stop "$work/hub" >/dev/null 2>&1
  scripts/devdb.sh stop "$work/target" >/dev/null 2>&1
  echo "results kept in $results (worker log: $work/worker.log)"
  cp "$results" "/tmp/cdcsync-faults-results.txt" 2>/dev/null
}
trap cleanup EXIT

# One build for the whole run, outside the checkout: the worker is restarted many times and must
# not pick up (or rebuild for) source edits made meanwhile.
dotnet build src/CdcSync.Cli/CdcSync.Cli.csproj -c Release -o "$work/cli" --nologo -v quiet -clp:ErrorsOnly >/dev/null
cdcsync() { dotnet "$work/cli/cdcsync.dll" "$@"; }
# Ports away from devdb's default range: while a server is stopped, another cluster started on
# the machine must not take its port.
free_port() { local p; while :; do p=$((40000 + RANDOM % 20000)); (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }
eval "$(CDCSYNC_DEVDB_PORT="$(free_port)" scripts/devdb.sh start "$work/hub" 2>/dev/null)"
hub="$CDCSYNC_DB"
hub_port="$(cat "$work/hub/port")"
eval "$(CDCSYNC_DEVDB_PORT="$(free_port)" scripts/devdb.sh start "$work/target" 2>/dev/null)"
target="$CDCSYNC_TARGET_DB"
field() { sed -nE "s/.*$1=([^;]*).*/\\1/p" <<<"$2"; }
url() { echo "postgresql://$(field Username "$1"):$(field Password "$1")@$(field Host "$1"):$(field Port "$1")/$(field Database "$1")"; }
hubsql() { psql "$(url "$hub")" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
targetsql() { psql "$(url "$target")" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

schema="
CREATE TABLE public.fault_items (id int PRIMARY KEY, version int NOT NULL DEFAULT 0, balance bigint NOT NULL DEFAULT 0, payload text);
CREATE TABLE public.fault_history (seq bigint PRIMARY KEY, id int NOT NULL, delta int NOT NULL);
CREATE TABLE public.fault_big (id int PRIMARY KEY, v text);
CREATE TABLE public.fault_docs (id int PRIMARY KEY, version int NOT NULL, body text NOT NULL);
CREATE TABLE public.fault_markers (seq int PRIMARY KEY, at timestamptz NOT NULL);"
cdcsync migrate --db "$hub" >/dev/null
hubsql "$schema CREATE SEQUENCE public.fault_history_seq; ALTER TABLE public.fault_history ALTER seq SET DEFAULT nextval('public.fault_history_seq');"
targetsql "$schema"
# Streams large transactions early, so the big-transaction cases exercise the spool.
hubsql "ALTER SYSTEM SET logical_decoding_work_mem = '1MB'"; hubsql "SELECT pg_reload_conf()" >/dev/null

write_config() {
  local hub_cs="$1"
  cat >"$work/config.json" <<JSON
{
  "Hub": { "ConnectionString": "$hub_cs", "Slot": "faults", "Publication": "faults", "HeartbeatInterval": "00:00:05", "MaxRestartDelay": "00:00:05" },
  "Connectors": { "target": { "Type": "postgres", "ConnectionString": "$target" } },
  "Routes": {
    "public.fault_items": ["target"], "public.fault_history": ["target"], "public.fault_big": ["target"],
    "public.fault_docs": ["target"], "public.fault_markers": ["target"]
  }
}
JSON
}

worker_start() { dotnet "$work/cli/cdcsync.dll" run --config "$work/config.json" >>"$work/worker.log" 2>&1 & worker_pid=$!; }
worker_kill() { kill -9 "$worker_pid" 2>/dev/null || true; wait "$worker_pid" 2>/dev/null || true; worker_pid=""; }
worker_alive() { [[ -n "$worker_pid" ]] && kill -0 "$worker_pid" 2>/dev/null; }
interruptions() { grep -c "Pipeline interrupted" "$work/worker.log" || true; }

cat >"$work/load.sql" <<'SQL'
\set id random(1, 10000)
\set delta random(-100, 100)
BEGIN;
UPDATE public.fault_items SET version = version + 1, balance = balance + :delta WHERE id = :id;
INSERT INTO public.fault_history (id, delta) VALUES (:id, :delta);
END;
SQL
load_start() {
  rm -f "$work/stop-load"
  ( while [[ ! -f "$work/stop-load" ]]; do
      pgbench -n -f "$work/load.sql" -c 2 -j 1 -T 5 -R "$rate" "$(url "$hub")" >>"$work/pgbench.log" 2>&1 || sleep 0.5
    done ) &
  load_pid=$!
}
load_stop() { touch "$work/stop-load"; wait "$load_pid" 2>/dev/null || true; load_pid=""; }

# Seconds from now until a marker committed on the hub now is at the target.
time_to_target() {
  local start marker=""; start="$(now)"
  until marker="$(hubsql "INSERT INTO public.fault_markers SELECT coalesce(max(seq), 0) + 1, now() FROM public.fault_markers RETURNING seq" 2>/dev/null)" && [[ -n "$marker" ]]; do sleep 0.2; done
  until [[ "$(targetsql "SELECT count(*) FROM public.fault_markers WHERE seq = $marker" 2>/dev/null)" == 1 ]]; do
    sleep 0.2
    if (( $(awk -v s="$(since "$start")" 'BEGIN { print (s > 600) }') )); then echo "never"; return; fi
  done
  since "$start"
}

snapshot() {
  local sql="
    SELECT (SELECT count(*) || '/' || coalesce(sum(version), 0) || '/' || coalesce(sum(balance), 0) || '/' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM public.fault_items t)
      || ' ' || (SELECT count(*) || '/' || coalesce(sum(delta), 0) || '/' || coalesce(md5(string_agg(t::text, ',' ORDER BY seq)), '') FROM public.fault_history t)
      || ' ' || (SELECT count(*) || '/' || coalesce(sum(id), 0) || '/' || coalesce(md5(string_agg(md5(t::text), ',' ORDER BY id)), '') FROM public.fault_big t)
      || ' ' || (SELECT count(*) || '/' || coalesce(sum(version), 0) || '/' || coalesce(md5(string_agg(id || ':' || version || ':' || md5(body), ',' ORDER BY id)), '') FROM public.fault_docs t)"
  "$1" "$sql"
}

# Waits until target equals hub; then checks each row's version against the updates the hub logged.
verify() {
  local name="$1" start; start="$(now)"
  local expected actual=""
  expected="$(snapshot hubsql)"
  until [[ "$actual" == "$expected" ]]; do
    sleep 1
    actual="$(snapshot targetsql 2>/dev/null || true)"
    if (( $(awk -v s="$(since "$start")" 'BEGIN { print (s > 900) }') )); then
      say "FAIL $name: target never equalled the hub"; say "  hub:    $expected"; say "  target: $actual"; exit 1
    fi
  done
  local logged versions
  logged="$(hubsql "SELECT md5(coalesce(string_agg(id || ':' || n, ',' ORDER BY id), '')) FROM (SELECT id, count(*) n FROM public.fault_history GROUP BY id) h")"
  versions="$(targetsql "SELECT md5(coalesce(string_agg(id || ':' || version, ',' ORDER BY id), '')) FROM public.fault_items WHERE version > 0")"
  if [[ "$logged" != "$versions" ]]; then say "FAIL $name: a row's version differs from the number of updates logged for it"; exit 1; fi
  worker_alive || { say "FAIL $name: the worker is not running"; exit 1; }
  say "ok   $name: target equals hub ($(targetsql "SELECT count(*) FROM public.fault_history") updates, $(targetsql "SELECT count(*) FROM public.fault_big") big rows; converged $(since "$start") s after the check started)"
}

write_config "$hub"
worker_start
# The slot captures changes from its creation on: wait for it before writing.
until [[ "$(hubsql "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'faults'")" == 1 ]]; do sleep 0.2; done
hubsql "INSERT INTO public.fault_items (id, payload) SELECT g, md5(g::text) FROM generate_series(1, 10000) g"
say "setup: hub :$hub_port, target :$(field Port "$target"), worker pid $worker_pid, first row at target after $(time_to_target) s"

for scenario in "${scenarios[@]}"; do
  case "$scenario" in
    hub-immediate | hub-fast)
      mode="${scenario#hub-}"
      load_start; sleep 10
      before="$(interruptions)"
      pgctl hub stop -m "$mode" -w -t 120
      sleep "$outage"
      pgctl hub start -w -t 120
      resume="$(time_to_target)"
      sleep 10; load_stop
      say "hub stopped ${outage} s (-m $mode) under load: marker at target ${resume} s after the hub was up; pipeline interruptions logged: $(( $(interruptions) - before ))"
      verify "$scenario"
      ;;
    target)
      load_start; sleep 10
      before="$(interruptions)"
      pgctl target stop -m immediate -w -t 120
      sleep "$outage"
      pgctl target start -w -t 120
      resume="$(time_to_target)"
      sleep 10; load_stop
      say "target stopped ${outage} s (-m immediate) under load: marker at target ${resume} s after the target was up; pipeline interruptions logged: $(( $(interruptions) - before ))"
      verify "$scenario"
      ;;
    proxy)
      worker_kill
      proxy_port=$((hub_port + 1000))
      python3 bench/faults/proxy.py "$proxy_port" "$hub_port" 2 10 >"$work/proxy.log" 2>&1 & proxy_pid=$!
      write_config "$(sed -E "s/Port=[0-9]+/Port=$proxy_port/" <<<"$hub")"
      before="$(interruptions)"
      worker_start; load_start; sleep "$outage"; load_stop
      say "proxy dropping the worker's hub connections every 2-10 s for ${outage} s: $(grep -c dropped "$work/proxy.log" || true) drops, pipeline interruptions logged: $(( $(interruptions) - before ))"
      verify "$scenario"
      worker_kill; kill "$proxy_pid"; proxy_pid=""
      write_config "$hub"; worker_start
      ;;
    idle-restart)
      sleep 20
      times=()
      for i in 1 2 3 4 5 6; do
        start="$(now)"
        pgctl hub restart -m fast -w -t 120
        times+=("$(since "$start")")
        sleep 5
      done
      say "idle hub, pg_ctl restart -m fast with the worker connected (6 tries): ${times[*]} s"
      hubsql "UPDATE public.fault_items SET version = version + 1 WHERE id = 1; INSERT INTO public.fault_history (id, delta) VALUES (1, 0)"
      verify "$scenario"
      ;;
    kills)
      load_start
      start="$(now)"
      for i in $(seq 1 "$kills"); do
        sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 1 + (r % 400) / 100 }')"
        worker_kill
        worker_start
      done
      load_stop
      say "$kills SIGKILLs of the worker under load over $(since "$start") s"
      verify "$scenario"
      ;;
    big-txn-kill)
      start="$(now)"
      hubsql "BEGIN; INSERT INTO public.fault_big SELECT g, md5(g::text) FROM generate_series(1, $big_rows) g; SELECT pg_sleep(5); COMMIT;" >/dev/null &
      big=$!
      sleep 8; worker_kill; worker_start   # mid-stream: the transaction is not committed yet
      wait "$big"
      sleep 3; worker_kill; worker_start   # while the spooled transaction is applied
      say "kill -9 in the middle of a streamed ${big_rows}-row transaction and again while it was applied"
      verify "$scenario"
      ;;
    subxact-abort)
      hubsql "BEGIN;
        INSERT INTO public.fault_big SELECT g, 'kept' FROM generate_series(2000001, 2100000) g;
        SAVEPOINT a; INSERT INTO public.fault_big SELECT g, 'aborted' FROM generate_series(2100001, 2200000) g; UPDATE public.fault_big SET v = 'aborted' WHERE id <= 2050000; ROLLBACK TO SAVEPOINT a;
        SAVEPOINT b; UPDATE public.fault_big SET v = 'released' WHERE id % 3 = 0 AND id > 2000000; RELEASE SAVEPOINT b;
        COMMIT;"
      say "subtransaction aborted (ROLLBACK TO SAVEPOINT) inside a streamed 200k-row transaction"
      verify "$scenario"
      ;;
    toast-key-change)
      hubsql "INSERT INTO public.fault_docs SELECT g, 1, (SELECT string_agg(md5(g || ':' || i), '') FROM generate_series(1, 256) i) FROM generate_series(1, 200) g"
      hubsql "UPDATE public.fault_docs SET id = id + 100000, version = version + 1 WHERE id <= 100"
      hubsql "UPDATE public.fault_docs SET version = version + 1 WHERE id > 100000"
      say "key changed on 100 rows with an unchanged 8 kB TOASTed value, then updated again under the new key"
      verify "$scenario"
      ;;
    *) say "unknown scenario $scenario"; exit 2 ;;
  esac
done
say "all scenarios passed"
