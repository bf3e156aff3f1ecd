#!/usr/bin/env bash
# The benchmark suite of two revisions side by side, in one run on one PostgreSQL cluster
# (a "no regression" check for a restructure).
#
#   bench/compare.sh BEFORE_REV [AFTER_REV] [--out DIR] [suite options...]     AFTER_REV: HEAD
#
# Checks both revisions out as detached git worktrees in a temporary directory, builds in each what
# the suite runs (bench/CdcSync.Bench and the CLI behind ./cdcsync, Release), starts one throwaway
# cluster (scripts/devdb.sh; with CDCSYNC_DB set, that server is used instead) and runs each
# revision's own `bench/run.sh suite [suite options...]` (e.g. --quick --reps 1) with its own
# --out DIR/before and DIR/after. Each case runs on its own (SKIP = every other case), and which
# revision goes first alternates from case to case, so a machine that slows down over the run
# does not favour one side. Sizes and SKIP come from the environment as for bench/run.sh.
# Prints, and writes to DIR/compare.md, the table of bench/compare.py (both suite.json files).
# Default DIR: bench/results/compare-<UTC time>/. The worktrees and the cluster are removed at
# the end. Each revision gets its own hub database (cdcsync_cmp_before / cdcsync_cmp_after,
# re-created before every case and dropped at the end), so one's migrations never meet the other's
# code; the other databases bench/run.sh re-creates are shared.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

usage() { sed -n '5p' "$0" | sed 's/^# *//' >&2; exit 2; }
[[ $# -ge 1 && "$1" != -* ]] || usage
before_rev="$1"; shift
after_rev=HEAD
if [[ $# -gt 0 && "$1" != -* ]]; then after_rev="$1"; shift; fi
out=""; opts=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift ;;
    *) opts+=("$1") ;;
  esac
  shift
done
declare -A rev
rev[before]="$(git rev-parse --verify --quiet "$before_rev^{commit}")" || { echo "bench/compare.sh: no such revision: $before_rev" >&2; exit 2; }
rev[after]="$(git rev-parse --verify --quiet "$after_rev^{commit}")" || { echo "bench/compare.sh: no such revision: $after_rev" >&2; exit 2; }
out="${out:-bench/results/compare-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
rm -rf "$out/before" "$out/after" "$out/before.log" "$out/after.log"

tmp="$(mktemp -d /tmp/cdcsync-compare.XXXXXX)"
cluster=""
hub_base=""
cleanup() {
  set +e
  if [[ -n "$hub_base" ]]; then
    for side in before after; do
      psql_q "$(psql_url postgres)" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'cdcsync_cmp_$side' AND NOT active" \
        -c "DROP DATABASE IF EXISTS cdcsync_cmp_$side WITH (FORCE)" >/dev/null 2>&1
    done
  fi
  for side in before after; do
    [[ -d "$tmp/$side" ]] && git -C "$repo" worktree remove --force "$tmp/$side"
  done
  git -C "$repo" worktree prune
  [[ -n "$cluster" ]] && scripts/devdb.sh stop "$cluster"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Only for compare.sh's own statements (no NOTICE for DROP DATABASE IF EXISTS); the suite's environment is left as it is.
psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -q "$@"; }
field() { sed -nE "s/.*$1=([^;]*).*/\\1/p" <<<"$hub_base"; }
hub_cs() { sed -E "s/Database=[^;]*/Database=$1/" <<<"$hub_base"; }
psql_url() { echo "postgresql://$(field Username):$(field Password)@$(field Host):$(field Port)/$1"; }

for side in before after; do
  echo "== $side: $(git log -1 --format='%h %s' "${rev[$side]}" | cut -c1-100)"
  git worktree add --detach "$tmp/$side" "${rev[$side]}" >/dev/null 2>"$tmp/git.log" || { cat "$tmp/git.log" >&2; exit 1; }
  [[ -x "$tmp/$side/bench/run.sh" ]] && grep -q 'suite' "$tmp/$side/bench/run.sh" \
    || { echo "bench/compare.sh: $side ($(git rev-parse --short "${rev[$side]}")) has no 'bench/run.sh suite'" >&2; exit 2; }
  echo "   building bench/CdcSync.Bench and the CLI (Release) in $tmp/$side"
  log="$(cd "$tmp/$side" && dotnet build -c Release bench/CdcSync.Bench --nologo -v quiet -clp:ErrorsOnly 2>&1 && ./cdcsync --help 2>&1)" \
    || { echo "$log" >&2; echo "bench/compare.sh: the build of $side failed" >&2; exit 1; }
done

if [[ -z "${CDCSYNC_DB:-}" ]]; then
  cluster="$(mktemp -d /tmp/cdcsync-bench-db.XXXXXX)"
  eval "$(scripts/devdb.sh start "$cluster")"
fi
hub_base="$CDCSYNC_DB"

# The cases each revision's run.sh can run one at a time (`if ! skip NAME`), minus SKIP.
cases() { grep -oE '^if ! skip [a-z0-9_-]+' "$tmp/$1/bench/run.sh" | awk '{print $4}'; }
skipped() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
all_cases=()
for c in $(cases before) $(cases after); do
  skipped "$c" || [[ " ${all_cases[*]} " == *" $c "* ]] || all_cases+=("$c")
done

failed=()
# run SIDE CASE: SIDE's bench/run.sh suite with its own hub database; CASE "" = every case.
run() {
  local side=$1 case=$2 skip="${SKIP:-}" status
  if [[ -n "$case" ]]; then
    if ! cases "$side" | grep -qx "$case"; then echo "-- $case: not in $side's suite"; return; fi
    skip="$(cases "$side" | grep -vx "$case" | tr '\n' ' ')"
  fi
  echo "-- ${case:-suite}: $side ($(git rev-parse --short "${rev[$side]}"))"
  psql_q "$(psql_url postgres)" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'cdcsync_cmp_$side' AND NOT active" \
    -c "DROP DATABASE IF EXISTS cdcsync_cmp_$side WITH (FORCE)" -c "CREATE DATABASE cdcsync_cmp_$side" >/dev/null
  set +e
  (cd "$tmp/$side" && CDCSYNC_DB="$(hub_cs "cdcsync_cmp_$side")" SKIP="$skip" bench/run.sh suite "${opts[@]}" --out "$out/$side") 2>&1 \
    | tee -a "$out/$side.log" | sed -u "s/^/[$side] /"
  status=${PIPESTATUS[0]}
  set -e
  if ((status != 0)); then failed+=("${case:-suite} ($side, exit $status)"); fi
}

if [[ ${#all_cases[@]} -gt 0 ]] && grep -q '^skip()' "$tmp/before/bench/run.sh" && grep -q '^skip()' "$tmp/after/bench/run.sh"; then
  order="each case on its own, which revision goes first alternating from case to case"
  echo "== order: $order (cases: ${all_cases[*]})"
  i=0
  for c in "${all_cases[@]}"; do
    if ((i % 2 == 0)); then run before "$c"; run after "$c"; else run after "$c"; run before "$c"; fi
    i=$((i + 1))
  done
else
  order="the whole suite of before, then the whole suite of after (a bench/run.sh cannot run one case on its own, so the order does not alternate)"
  echo "== order: $order"
  run before ""
  run after ""
fi

sizes=""
for v in TPCB_ROWS TPCB_SCALE INSERT_ROWS LAT_SECONDS STEP_SECONDS STEPS NS_RECORDS SF_RECORDS LATENCY_MS MEM_ROWS SKIP; do
  [[ -z "${!v:-}" ]] || sizes+="$v=${!v@Q} "
done
# Each per-case run re-summarised the directory; once more with every case in it (and after a failure).
for side in before after; do
  (cd "$tmp/$side" && python3 bench/summarize.py "$out/$side" >"$out/$side/summary.md") || failed+=("summary ($side)")
done
{
  echo "# Benchmark suite: before vs after"
  echo
  echo "- before: \`$(git log -1 --format='%h %s' "${rev[before]}" | cut -c1-100)\`"
  echo "- after: \`$(git log -1 --format='%h %s' "${rev[after]}" | cut -c1-100)\`"
  echo "- \`${sizes}bench/run.sh suite ${opts[*]}\`; order: $order; load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  [[ ${#failed[@]} -eq 0 ]] || echo "- FAILED: ${failed[*]} (see before.log / after.log)"
  echo
  python3 bench/compare.py "$out/before" "$out/after"
  echo
  echo "Median (min–max over the repetitions); change = (after − before) / before. \"better\"/\"worse\" is the"
  echo "direction only, not significance: compare it with the spread and with the change of the peers"
  echo "(CREATE SUBSCRIPTION, pg_recvlogical), which do not depend on the revision."
} | tee "$out/compare.md"
echo "written: $out/compare.md (each revision's suite.json and summary.md in $out/before and $out/after, its console in $out/before.log and $out/after.log)"
[[ ${#failed[@]} -eq 0 ]] || exit 1
