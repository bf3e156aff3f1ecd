# Shared by bench/memory.sh and bench/latency.sh (sourced, from the repository root).
# Uses CDCSYNC_DB or starts a throwaway cluster (removed on exit); builds the CLI; defines
# with_db (a connection string for another database on the same server) and psql_url.
bench_cluster=""
bench_cleanup() { if [[ -n "$bench_cluster" ]]; then scripts/devdb.sh stop "$bench_cluster" >/dev/null 2>&1 || true; fi; }
if [[ -z "${CDCSYNC_DB:-}" ]]; then
  bench_cluster="$(mktemp -d /tmp/cdcsync-bench-db.XXXXXX)"
  trap bench_cleanup EXIT
  eval "$(scripts/devdb.sh start "$bench_cluster" 2>/dev/null)"
fi
./cdcsync --help >/dev/null
bench_base="$CDCSYNC_DB"
with_db() { sed -E "s/Database=[^;]*/Database=$1/" <<<"$bench_base"; }
field() { sed -nE "s/.*$1=([^;]*).*/\\1/p" <<<"$2"; }
psql_url() { echo "postgresql://$(field Username "$1"):$(field Password "$1")@$(field Host "$1"):$(field Port "$1")/$(field Database "$1")"; }
