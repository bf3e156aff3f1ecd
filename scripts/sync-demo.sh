#!/usr/bin/env bash
# Two-way sync against the local API sandboxes: starts a hub (unless CDCSYNC_DB is set), both
# sandboxes and the worker; creates an Account in the Salesforce sandbox and shows it arrive in
# NetSuite and the NetSuite internal id come back to Salesforce. Ctrl-C stops everything.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
./cdcsync --help >/dev/null   # build once, before starting anything in the background
# Every run gets a hub of its own: the sandboxes hand out the same Ids each time, so a hub left
# over from an earlier run would already hold them. Without CDCSYNC_DB a throwaway cluster in a
# temp folder, else a fresh database on that server; both are removed on exit.
pids=()
devdb_dir="" demo_db="" admin_url=""
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
  if [[ -n "$devdb_dir" ]]; then scripts/devdb.sh stop "$devdb_dir" || true; fi
  if [[ -n "$demo_db" ]]; then
    psql "$admin_url" -qAtc "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$demo_db' AND NOT active" >/dev/null || true
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$demo_db\" WITH (FORCE)" || true
  fi
}
trap cleanup EXIT
to_url() { # Npgsql connection string -> libpq URL
  local k; declare -A v
  IFS=';' read -ra parts <<<"$1"; for kv in "${parts[@]}"; do k="${kv%%=*}"; v["${k,,}"]="${kv#*=}"; done
  echo "postgresql://${v[username]}:${v[password]}@${v[host]:-127.0.0.1}:${v[port]:-5432}/${2:-${v[database]}}"
}
if [[ -z "${CDCSYNC_DB:-}" ]]; then
  devdb_dir="${TMPDIR:-/tmp}/cdcsync-sync-demo-$$-$RANDOM"   # devdb.sh creates it (owned by the server user when root)
  eval "$(scripts/devdb.sh start "$devdb_dir")"
else
  admin_url="$(to_url "$CDCSYNC_DB")"
  demo_db="cdcsync_sync_demo_$(date +%s)_$$"
  psql "$admin_url" -qc "CREATE DATABASE \"$demo_db\""
  CDCSYNC_DB="$(sed -E "s/Database=[^;]*/Database=$demo_db/" <<<"$CDCSYNC_DB")"
  export CDCSYNC_DB
fi
free_port() { local p=$1; while (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
sf_port=$(free_port 18081); ns_port=$(free_port $((sf_port + 1)))
./cdcsync sandbox salesforce --port "$sf_port" >/tmp/cdcsync-sf-sandbox.log 2>&1 & pids+=($!)
./cdcsync sandbox netsuite --port "$ns_port" >/tmp/cdcsync-ns-sandbox.log 2>&1 & pids+=($!)
export SALESFORCE_LOGIN_URL="http://127.0.0.1:$sf_port/" SALESFORCE_CLIENT_ID=cdcsync-sandbox-client SALESFORCE_CLIENT_SECRET=cdcsync-sandbox-secret
export NETSUITE_ACCOUNT_ID=TSTDRV1234567 NETSUITE_BASE_URL="http://127.0.0.1:$ns_port/" NETSUITE_CONSUMER_KEY=sandbox-consumer-key \
  NETSUITE_CONSUMER_SECRET=sandbox-consumer-secret NETSUITE_TOKEN_ID=sandbox-token-id NETSUITE_TOKEN_SECRET=sandbox-token-secret
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$sf_port") 2>/dev/null && (echo >"/dev/tcp/127.0.0.1/$ns_port") 2>/dev/null && break; sleep 0.2; done
./cdcsync migrate
./cdcsync run --config examples/salesforce-netsuite.json >/tmp/cdcsync-worker.log 2>&1 & pids+=($!)
echo "worker log: /tmp/cdcsync-worker.log"
token=$(curl -s -d grant_type=client_credentials -d client_id=$SALESFORCE_CLIENT_ID -d client_secret=$SALESFORCE_CLIENT_SECRET \
  "http://127.0.0.1:$sf_port/services/oauth2/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
api="http://127.0.0.1:$sf_port/services/data/v61.0"
id=$(curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"Name":"Initech","Phone":"(512) 555-0133","Website":"initech.example","BillingCity":"Austin","BillingCountry":"United States"}' \
  "$api/sobjects/Account" | sed -E 's/.*"id":"([^"]+)".*/\1/')
echo "created Account $id in the Salesforce sandbox; waiting for NetSuite's internal id to come back..."
for _ in $(seq 60); do
  ns_id=$(curl -s -H "Authorization: Bearer $token" "$api/sobjects/Account/$id" | sed -nE 's/.*"NetSuite_Id__c":"([^"]+)".*/\1/p')
  if [[ -n "$ns_id" ]]; then
    echo "Salesforce Account $id now carries NetSuite_Id__c = $ns_id"
    hub_url="$(sed -nE 's/.*Port=([0-9]+);.*/\1/p' <<<"$CDCSYNC_DB")"
    echo "the hub (ns_customers):"
    PGPASSWORD="$(sed -nE 's/.*Password=([^;]*).*/\1/p' <<<"$CDCSYNC_DB")" psql -h 127.0.0.1 -p "$hub_url" \
      -U "$(sed -nE 's/.*Username=([^;]*).*/\1/p' <<<"$CDCSYNC_DB")" -d "$(sed -nE 's/.*Database=([^;]*).*/\1/p' <<<"$CDCSYNC_DB")" \
      -c "SELECT internalid, externalid, companyname, phone, url FROM ns_customers ORDER BY datecreated DESC NULLS LAST LIMIT 3"
    exit 0
  fi
  sleep 1
done
echo "the NetSuite id did not come back within 60 s; see /tmp/cdcsync-worker.log" >&2
exit 1
