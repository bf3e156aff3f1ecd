#!/usr/bin/env bash
# The hub's share of Salesforce collections of 200 created records, as the connector leaves it (Ids
# written back under the connector, then cdc.record_outbound_batch), without HTTP: the backend's CPU
# time (from /proc, so the server must run on this host) and wall time per collection. REPO's
# migrations and transforms go into a fresh database DBNAME (dropped first); EXTRA: SQL run after them.
#   eval "$(scripts/devdb.sh start /tmp/devdb)"; bench/hub-share.sh . hub_share 2000
set -euo pipefail
repo=$1; db=$2; n=${3:-2000}
: "${CDCSYNC_DB:?set CDCSYNC_DB, e.g. eval \"$(scripts/devdb.sh env /tmp/devdb)\"}"
field() { sed -nE "s/.*(^|;)$1=([^;]*).*/\2/p" <<<"$CDCSYNC_DB"; }
export PGHOST=$(field Host) PGPORT=$(field Port) PGUSER=$(field Username) PGPASSWORD=$(field Password)
psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
for f in $(ls $repo/migrations/*.sql | sort) $(ls $repo/transforms/*.sql | sort); do
  psql -q -X -v ON_ERROR_STOP=1 -d $db -1 -f $f >/dev/null 2>${TMPDIR:-/tmp}/hub-share-mig.err || { echo "FAILED $f"; cat ${TMPDIR:-/tmp}/hub-share-mig.err; exit 1; }
done
[[ -n "${EXTRA:-}" ]] && psql -q -X -v ON_ERROR_STOP=1 -d $db -f "$EXTRA" >/dev/null
psql -q -X -d $db -c "INSERT INTO sf_accounts (name, phone) SELECT 'Bench ' || g, '4155550' || g FROM generate_series(1, $n) g" >/dev/null
cat > ${TMPDIR:-/tmp}/hub-share-run2.$db.sql <<SQL
SET cdc.connector = 'salesforce';
SELECT pg_backend_pid() AS pid \gset
\setenv BPID :pid
\! awk '{print \$14+\$15}' /proc/\$BPID/stat > ${TMPDIR:-/tmp}/hub-share-cpu0.$db
DO \$\$
DECLARE c int := 0; t0 timestamptz; tu interval := '0'; ta interval := '0'; ks uuid[]; w jsonb;
BEGIN
  LOOP
    SELECT array_agg(hub_id ORDER BY name) INTO ks FROM (SELECT hub_id, name FROM sf_accounts WHERE id IS NULL ORDER BY name LIMIT 200) x;
    EXIT WHEN ks IS NULL;
    t0 := clock_timestamp();
    FOR i IN 1 .. array_length(ks, 1) LOOP
      UPDATE sf_accounts SET id = CAST('001' || lpad((c * 200 + i)::text, 15, '0') AS text)
       WHERE hub_id = ks[i] AND id IS DISTINCT FROM CAST('001' || lpad((c * 200 + i)::text, 15, '0') AS text);
    END LOOP;
    tu := tu + (clock_timestamp() - t0);
    t0 := clock_timestamp();
    SELECT jsonb_agg(jsonb_build_object('object', 'sf_accounts', 'record_key', a.hub_id::text, 'record_id', a.id, 'operation', 'upsert',
             'changes', jsonb_build_object('name', jsonb_build_object('before', NULL, 'after', a.name), 'phone', jsonb_build_object('before', NULL, 'after', a.phone),
                                           'cdcsync_id__c', jsonb_build_object('before', NULL, 'after', a.cdcsync_id__c)),
             'commit_lsn', '0/1', 'stamp', NULL))
      INTO w FROM sf_accounts a WHERE a.hub_id = ANY (ks);
    PERFORM cdc.record_outbound_batch('salesforce', w);
    ta := ta + (clock_timestamp() - t0);
    c := c + 1;
  END LOOP;
  RAISE NOTICE 'collections %: write-back % ms, acknowledgements % ms per collection (wall)', c,
    round(extract(epoch FROM tu) * 1000 / c), round(extract(epoch FROM ta) * 1000 / c);
END \$\$;
\! awk '{print \$14+\$15}' /proc/\$BPID/stat > ${TMPDIR:-/tmp}/hub-share-cpu1.$db
SQL
psql -X -q -d $db -f ${TMPDIR:-/tmp}/hub-share-run2.$db.sql 2>&1 | sed 's/^.*NOTICE:  //'
echo "$db: backend CPU $(( ($(cat ${TMPDIR:-/tmp}/hub-share-cpu1.$db) - $(cat ${TMPDIR:-/tmp}/hub-share-cpu0.$db)) * 10 / ($n / 200) )) ms per collection of 200"
