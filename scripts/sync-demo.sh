#!/usr/bin/env bash
# Two-way sync against the local API sandboxes: starts a hub (unless CDCSYNC_DB is set), both
# sandboxes and the worker; creates an Account in the Salesforce sandbox and shows it arrive in
# NetSuite and the NetSuite internal id come back to Salesforce. Ctrl-C stops everything.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
./cdcsync --help >/dev/null   # build once, before starting anything in the background
if [[ -z "${CDCSYNC_DB:-}" ]]; then eval "$(scripts/devdb.sh start)"; fi
free_port() { local p=$1; while (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
sf_port=$(free_port 18081); ns_port=$(free_port $((sf_port + 1)))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
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
