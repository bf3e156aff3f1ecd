#!/usr/bin/env bash
# Runs the CdcSync benchmarks.
#
#   bench/run.sh suite [--quick] [--reps R] [--out DIR]
#       the whole suite, each case with a warm-up and R (default 3) measured repetitions; prints
#       medians and spread and writes DIR/suite.json (default bench/results/<UTC time>/):
#         1. PostgreSQL connector vs CREATE SUBSCRIPTION, pgbench tpcb backlog (1.6M changes, scale 10)
#         2. the same on an insert-heavy backlog (100-row INSERTs, 1.6M changes)
#         3. latency: 40,000 changes/s in 100-row transactions, 5,000 one-row transactions/s,
#            CdcSync and native logical replication (CREATE SUBSCRIPTION) in each repetition
#         4. stepped load: 1k, 5k, 10k, 20k, 40k, 80k changes/s (100-row transactions), both systems,
#            STEP_REPS times (default: R)
#       Cases 3 and 4 run bench/latency.sh, one system after the other with its own load; which one
#       goes first alternates from repetition to repetition (and from step to step).
#         5. HTTP connectors vs their theoretical limit, 150 ms injected per request
#         6. peak RSS for a 5M-row transaction and a 5M-row backlog (bench/memory.sh)
#       Sizes come from the environment (defaults in brackets; --quick shrinks them all):
#         TPCB_ROWS [1600000] TPCB_SCALE [10] INSERT_ROWS [1600000] LAT_SECONDS [30]
#         STEP_SECONDS [20] STEPS ["1000 5000 10000 20000 40000 80000"] NS_RECORDS [500]
#         SF_RECORDS [20000] LATENCY_MS [150] MEM_ROWS [5000000] STEP_REPS [R] SKIP ["" or e.g. "memory http"]
#
#   bench/run.sh [reader|connector|http|all] [--rows N] [--reps R] [--warmup W] [--scale S] [--clients C]
#                [--workload tpcb|insert] [--ns-records N] [--sf-records N] [--latency-ms L] [--json FILE]
#       one harness case (bench/CdcSync.Bench).
#
# With CDCSYNC_DB set, that server is used (superuser, wal_level=logical; its pgbench tables are
# re-created and databases cdcsync_bench_* / cdcsync_lat_* / cdcsync_mem_* are dropped and re-created;
# bench/latency.sh needs the pg_walinspect extension, part of PostgreSQL's contrib).
# Without it, a throwaway cluster is started with scripts/devdb.sh and removed at the end.
# Needs pgbench, pg_recvlogical, psql and python3 on PATH.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
mode="${1:-all}"
[[ $# -gt 0 ]] && shift

if [[ -z "${CDCSYNC_DB:-}" ]]; then
  export CDCSYNC_DEVDB_DIR="${CDCSYNC_DEVDB_DIR:-$(mktemp -d /tmp/cdcsync-bench-db.XXXXXX)}"
  trap 'scripts/devdb.sh stop "$CDCSYNC_DEVDB_DIR" || true' EXIT
  eval "$(scripts/devdb.sh start "$CDCSYNC_DEVDB_DIR")"
fi

dotnet build -c Release bench/CdcSync.Bench --nologo -v quiet -clp:ErrorsOnly
harness() { dotnet run -c Release --no-build --project bench/CdcSync.Bench -- "$@"; }

if [[ "$mode" != suite ]]; then
  harness "$mode" "$@"
  exit
fi

reps=3; out=""; quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --reps) reps="$2"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "bench/run.sh suite: unknown option $1 (use --quick, --reps R, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
if ((quick)); then
  : "${TPCB_ROWS:=160000}" "${TPCB_SCALE:=1}" "${INSERT_ROWS:=200000}" "${LAT_SECONDS:=10}" "${STEP_SECONDS:=8}"
  : "${NS_RECORDS:=100}" "${SF_RECORDS:=2000}" "${MEM_ROWS:=500000}"
fi
: "${TPCB_ROWS:=1600000}" "${TPCB_SCALE:=10}" "${INSERT_ROWS:=1600000}" "${LAT_SECONDS:=30}" "${STEP_SECONDS:=20}"
: "${STEPS:=1000 5000 10000 20000 40000 80000}" "${NS_RECORDS:=500}" "${SF_RECORDS:=20000}" "${LATENCY_MS:=150}"
: "${MEM_ROWS:=5000000}" "${STEP_REPS:=$reps}" "${SKIP:=}"
out="${out:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
skip() { [[ " $SKIP " == *" $1 "* ]]; }
echo "suite: reps $reps, output $out; load before start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/suite.log"

if ! skip tpcb; then
  harness all --workload tpcb --rows "$TPCB_ROWS" --scale "$TPCB_SCALE" --reps "$reps" --warmup 1 --json "$out/connector-tpcb.json" | tee -a "$out/suite.log"
fi
if ! skip insert; then
  harness all --workload insert --rows "$INSERT_ROWS" --scale 1 --reps "$reps" --warmup 1 --json "$out/connector-insert.json" | tee -a "$out/suite.log"
fi
# Which system bench/latency.sh runs first: CdcSync on even N, native on odd N.
lat_order() { if (($1 % 2 == 0)); then echo "cdcsync native"; else echo "native cdcsync"; fi; }
if ! skip latency; then
  bench/latency.sh 100 100 5 >/dev/null 2>&1 # warm-up, not recorded
  for ((r = 1; r <= reps; r++)); do
    echo "latency: repetition $r, $(lat_order $((r - 1)) | sed 's/ / then /')" | tee -a "$out/suite.log"
    LAT_ORDER="$(lat_order $((r - 1)))" BENCH_JSON="$out/latency-40k.jsonl" bench/latency.sh 400 100 "$LAT_SECONDS" | tee -a "$out/suite.log"
    LAT_ORDER="$(lat_order $((r - 1)))" BENCH_JSON="$out/latency-5k-one-row.jsonl" bench/latency.sh 5000 1 "$LAT_SECONDS" | tee -a "$out/suite.log"
  done
fi
if ! skip steps; then
  for ((r = 1; r <= STEP_REPS; r++)); do
    i=0
    for rate in $STEPS; do
      echo "step: $rate changes/s, repetition $r, $(lat_order $((r - 1 + i)) | sed 's/ / then /')" | tee -a "$out/suite.log"
      LAT_ORDER="$(lat_order $((r - 1 + i)))" BENCH_JSON="$out/steps.jsonl" bench/latency.sh $((rate / 100)) 100 "$STEP_SECONDS" | tee -a "$out/suite.log"
      i=$((i + 1))
    done
  done
fi
if ! skip http; then
  harness http --ns-records "$NS_RECORDS" --sf-records "$SF_RECORDS" --latency-ms "$LATENCY_MS" --reps "$reps" --warmup 1 --json "$out/http.json" | tee -a "$out/suite.log"
fi
if ! skip memory; then
  BENCH_JSON="$out/memory.jsonl" bench/memory.sh "$MEM_ROWS" | tee -a "$out/suite.log"
fi

echo "suite done; load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/suite.log"
python3 bench/summarize.py "$out" | tee "$out/summary.md"
