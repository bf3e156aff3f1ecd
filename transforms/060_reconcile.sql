-- Reconciliation rules: which staging tables pair up, which fields count, the key a value is
-- compared by (so a formatting difference is not drift), what a record removed without a trace
-- looks like to the inbound path, and the comparison itself. `cdcsync reconcile` loads what each
-- system holds into cdc.reconcile_records and calls cdc.reconcile_compare(); C# holds no field.
-- Re-run by `cdcsync migrate` whenever this file changes, so everything here is idempotent.

-- Tables whose records have a counterpart on the other side: a record of either linked to
-- nothing is a finding ('unlinked'). Contacts fold into the customer and have none.
INSERT INTO cdc.reconcile_pairs (object, other_object) VALUES
    ('sf_accounts', 'ns_customers'),
    ('ns_customers', 'sf_accounts')
ON CONFLICT DO NOTHING;

-- Whether a field counts: every field conflict detection tracks (not the hub key, not the
-- source stamp, not the fields a policy marks 'ignore' such as the systems' own stamps).
CREATE OR REPLACE FUNCTION cdc.reconcile_field_counts(p_object text, p_field text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT cdc.sync_field_tracked(p_object, p_field)
$$;

-- The key a field's value is compared by (never written anywhere): the same keys the mapping
-- compares with, so '(415) 555-0100' and '4155550100' are one phone, 'acme.com' and
-- 'https://acme.com/' one website, 'USA' and 'US' one country, '' and NULL one blank.
CREATE OR REPLACE FUNCTION cdc.reconcile_key(p_object text, p_field text, p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
               WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL
               WHEN p_field IN ('phone', 'fax', 'mobilephone', 'homephone', 'altphone') THEN cdc.phone_key(p_value #>> '{}')
               WHEN p_field IN ('website', 'url') THEN cdc.url_key(p_value #>> '{}')
               WHEN p_field IN ('billingcountry', 'shippingcountry', 'mailingcountry')
                   THEN coalesce(cdc.country_code(p_value #>> '{}'), cdc.blank_to_null(p_value #>> '{}'))
               WHEN jsonb_typeof(p_value) = 'string' THEN cdc.blank_to_null(p_value #>> '{}')
               ELSE p_value::text
           END
$$;

-- What the inbound path writes for a record its system removed: NULL = the hub row is deleted
-- (NetSuite reports deletes in deletedrecord and the row goes); otherwise these values are written
-- into the row (Salesforce deletes go to the recycle bin and are read as IsDeleted = true). A
-- hub row holding them is deleted, and its record missing from the system is no drift.
CREATE OR REPLACE FUNCTION cdc.reconcile_tombstone(p_object text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_object LIKE 'sf\_%' THEN '{"isdeleted": true}'::jsonb END
$$;

CREATE OR REPLACE FUNCTION cdc.reconcile_hub_deleted(p_object text, p_row jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_row @> cdc.reconcile_tombstone(p_object), false)
$$;

-- Compares what run p_run read (cdc.reconcile_records) with the hub and writes the findings
-- (cdc.reconcile_findings, kinds in migrations/0033_reconcile.sql). p_table / p_record narrow
-- the findings to one staging table / one record (a hub id or a system id, with everything
-- linked to it). A record with an open conflict is listed once per conflict as 'open_conflict'
-- and its linked records' differences are not drift. Returns the count per kind.
CREATE OR REPLACE FUNCTION cdc.reconcile_compare(p_run bigint, p_table text DEFAULT NULL, p_record text DEFAULT NULL)
RETURNS TABLE (kind text, drift boolean, count bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t cdc.sync_tables;
BEGIN
    DELETE FROM cdc.reconcile_findings f WHERE f.run_id = p_run;
    FOR t IN SELECT s.* FROM cdc.sync_tables s
              WHERE (p_table IS NULL OR s.object = p_table)
                AND EXISTS (SELECT 1 FROM cdc.reconcile_records r WHERE r.run_id = p_run AND r.object = s.object)
              ORDER BY s.object
    LOOP
        DROP TABLE IF EXISTS pg_temp.reconcile_sys, pg_temp.reconcile_hub;
        -- Typed through the staging table's row type, so both sides render alike (timestamps,
        -- numbers); the latest version when a read returned a record twice.
        EXECUTE format(
            $q$CREATE TEMP TABLE reconcile_sys AS
               SELECT DISTINCT ON (x.record_id) x.*
                 FROM (SELECT r."values" ->> %L AS record_id, r.deleted, r."values" AS raw,
                              to_jsonb(jsonb_populate_record(NULL::public.%I, r."values")) AS v
                         FROM cdc.reconcile_records r
                        WHERE r.run_id = %s AND r.object = %L) x
                WHERE x.record_id IS NOT NULL
                ORDER BY x.record_id, x.deleted, (x.v ->> 'cdc_source_modified_at')::timestamptz DESC NULLS LAST$q$,
            t.record_id_column, t.object, p_run, t.object);
        -- Narrowed to one record (and what is linked to it) before anything is compared.
        EXECUTE format(
            $q$CREATE TEMP TABLE reconcile_hub AS
               SELECT h.hub_id, to_jsonb(h) AS v, to_jsonb(h) ->> %L AS record_id FROM public.%I h
                WHERE %L::text IS NULL OR h.hub_id::text = %L OR h.%I = %L
                   OR h.hub_id IN (SELECT o.hub_id FROM cdc.identity_links s
                                     JOIN cdc.identity_links o ON o.link_id = s.link_id AND o.object = %L
                                    WHERE s.hub_id::text = %L OR s.record_id = %L)$q$,
            t.record_id_column, t.object, p_record, p_record, t.record_id_column, p_record, t.object, p_record, p_record);
        IF p_record IS NOT NULL THEN
            DELETE FROM pg_temp.reconcile_sys s
             WHERE s.record_id <> p_record
               AND NOT EXISTS (SELECT 1 FROM pg_temp.reconcile_hub h WHERE h.record_id = s.record_id);
        END IF;
        CREATE INDEX ON pg_temp.reconcile_sys (record_id);
        CREATE INDEX ON pg_temp.reconcile_hub (record_id);
        ANALYZE pg_temp.reconcile_sys;
        ANALYZE pg_temp.reconcile_hub;

        -- A field whose system value the hub does not hold. Not drift: a hub change on its way
        -- to the system (the system still holds the sync base), and a system edit the inbound
        -- path has not read yet (the system's stamp is newer than the hub's version).
        INSERT INTO cdc.reconcile_findings (run_id, kind, object, system, hub_id, record_id, link_id, field,
                                            system_value, hub_value, system_modified_at, hub_modified_at, repair)
        SELECT p_run, 'field_differs', t.object, t.system, h.hub_id, s.record_id, cdc.link_id_of(t.object, h.hub_id), f.key,
               s.v ->> f.key, h.v ->> f.key,
               (s.v ->> 'cdc_source_modified_at')::timestamptz,
               coalesce(st.modified_at, (h.v ->> 'cdc_source_modified_at')::timestamptz),
               'late_edit'
          FROM pg_temp.reconcile_sys s
          JOIN pg_temp.reconcile_hub h ON h.record_id = s.record_id
          CROSS JOIN LATERAL jsonb_object_keys(s.raw) f(key)
          LEFT JOIN cdc.sync_base b ON b.object = t.object AND b.record_key = h.hub_id::text AND b.field = f.key
          LEFT JOIN cdc.hub_field_stamps st ON st.object = t.object AND st.record_key = h.hub_id::text AND st.field = f.key
         WHERE NOT s.deleted
           AND h.v ? f.key
           -- Equal values have equal keys: the functions below only run for the few that differ.
           AND (s.v -> f.key) IS DISTINCT FROM (h.v -> f.key)
           AND cdc.reconcile_field_counts(t.object, f.key)
           AND cdc.reconcile_key(t.object, f.key, s.v -> f.key) IS DISTINCT FROM cdc.reconcile_key(t.object, f.key, h.v -> f.key)
           AND NOT (b.record_key IS NOT NULL
                    AND cdc.reconcile_key(t.object, f.key, s.v -> f.key) IS NOT DISTINCT FROM cdc.reconcile_key(t.object, f.key, b.value))
           AND NOT coalesce((s.v ->> 'cdc_source_modified_at')::timestamptz > (h.v ->> 'cdc_source_modified_at')::timestamptz, false);

        -- The hub holds a live record the system no longer has (or has only as a tombstone the
        -- hub never applied).
        INSERT INTO cdc.reconcile_findings (run_id, kind, object, system, hub_id, record_id, link_id, hub_modified_at, repair)
        SELECT p_run, 'missing_in_system', t.object, t.system, h.hub_id, h.record_id, cdc.link_id_of(t.object, h.hub_id),
               (h.v ->> 'cdc_source_modified_at')::timestamptz, 'apply_delete'
          FROM pg_temp.reconcile_hub h
         WHERE h.record_id IS NOT NULL
           AND NOT cdc.reconcile_hub_deleted(t.object, h.v)
           AND NOT EXISTS (SELECT 1 FROM pg_temp.reconcile_sys s
                            WHERE s.record_id = h.record_id AND NOT s.deleted AND NOT cdc.reconcile_hub_deleted(t.object, s.v));

        -- The system holds a live record the hub has no row for.
        INSERT INTO cdc.reconcile_findings (run_id, kind, object, system, record_id, system_modified_at, repair)
        SELECT p_run, 'missing_in_hub', t.object, t.system, s.record_id, (s.v ->> 'cdc_source_modified_at')::timestamptz, 'late_create'
          FROM pg_temp.reconcile_sys s
         WHERE NOT s.deleted
           AND NOT cdc.reconcile_hub_deleted(t.object, s.v)
           AND NOT EXISTS (SELECT 1 FROM pg_temp.reconcile_hub h WHERE h.record_id = s.record_id);

        -- A live hub record of a paired table linked to nothing on the other side (records held
        -- in an open onboarding review wait there, not here).
        INSERT INTO cdc.reconcile_findings (run_id, kind, object, system, hub_id, record_id, field, repair)
        SELECT p_run, 'unlinked', t.object, t.system, h.hub_id, h.record_id, p.other_object, 'none'
          FROM pg_temp.reconcile_hub h
          JOIN cdc.reconcile_pairs p ON p.object = t.object
         WHERE h.record_id IS NOT NULL
           AND NOT cdc.reconcile_hub_deleted(t.object, h.v)
           AND cdc.linked_hub_id(t.object, h.hub_id, p.other_object) IS NULL
           AND NOT cdc.match_held(t.object, h.hub_id);

        -- A link to a hub row of this table that is gone while a record linked to it lives on.
        INSERT INTO cdc.reconcile_findings (run_id, kind, object, system, hub_id, record_id, link_id, repair)
        SELECT p_run, 'dangling_link', t.object, t.system, l.hub_id, l.record_id, l.link_id, 'none'
          FROM cdc.identity_links l
         WHERE l.object = t.object
           AND CASE WHEN p_record IS NULL
                    THEN NOT EXISTS (SELECT 1 FROM pg_temp.reconcile_hub h WHERE h.hub_id = l.hub_id)
                    ELSE l.link_id IN (SELECT x.link_id FROM cdc.identity_links x WHERE x.hub_id::text = p_record OR x.record_id = p_record)
                         AND NOT cdc.reconcile_row_exists(l.object, l.hub_id)
               END
           AND EXISTS (SELECT 1 FROM cdc.identity_links o
                        WHERE o.link_id = l.link_id AND o.object <> l.object
                          AND cdc.reconcile_row_alive(o.object, o.hub_id));
    END LOOP;
    DROP TABLE IF EXISTS pg_temp.reconcile_sys, pg_temp.reconcile_hub;

    -- Open conflicts: known and waiting for a decision, listed apart.
    INSERT INTO cdc.reconcile_findings (run_id, kind, drift, object, system, hub_id, record_id, link_id, field,
                                        system_value, hub_value, system_modified_at, hub_modified_at, repair)
    SELECT p_run, 'open_conflict', false, c.object, c.incoming_system, c.record_key::uuid, l.record_id, l.link_id, c.field,
           c.incoming_value #>> '{}', c.hub_value #>> '{}', c.incoming_modified_at, c.hub_modified_at, 'none'
      FROM cdc.conflicts c
      LEFT JOIN cdc.identity_links l ON l.object = c.object AND l.hub_id::text = c.record_key
     WHERE c.status = 'open' AND c.record_key ~ '^[0-9a-f-]{36}$'
       AND (p_table IS NULL OR c.object = p_table);
    DELETE FROM cdc.reconcile_findings f
     WHERE f.run_id = p_run AND f.drift
       AND EXISTS (SELECT 1 FROM cdc.reconcile_findings c
                    WHERE c.run_id = p_run AND c.kind = 'open_conflict'
                      AND ((c.object = f.object AND c.hub_id = f.hub_id) OR (c.link_id IS NOT NULL AND c.link_id = f.link_id)));

    IF p_record IS NOT NULL THEN
        DELETE FROM cdc.reconcile_findings f
         WHERE f.run_id = p_run
           AND NOT (f.record_id = p_record OR f.hub_id::text = p_record
                    OR f.link_id IN (SELECT l.link_id FROM cdc.identity_links l
                                      WHERE l.hub_id::text = p_record OR l.record_id = p_record));
    END IF;

    RETURN QUERY SELECT f.kind, f.drift, count(*) FROM cdc.reconcile_findings f
                  WHERE f.run_id = p_run GROUP BY f.kind, f.drift ORDER BY f.kind;
END
$$;

-- Whether the hub row (p_object, p_hub) exists.
CREATE OR REPLACE FUNCTION cdc.reconcile_row_exists(p_object text, p_hub uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM public.%I x WHERE x.hub_id = $1)', p_object) INTO found USING p_hub;
    RETURN found;
END
$$;

-- Whether the hub row (p_object, p_hub) exists and is not deleted.
CREATE OR REPLACE FUNCTION cdc.reconcile_row_alive(p_object text, p_hub uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    EXECUTE format('SELECT to_jsonb(x) FROM public.%I x WHERE x.hub_id = $1', p_object) INTO r USING p_hub;
    RETURN r IS NOT NULL AND NOT cdc.reconcile_hub_deleted(p_object, r);
END
$$;

-- The row the inbound path writes for a record its system removed (p_object, p_hub): the hub's
-- last known values with the tombstone on top (an upsert must carry every required column), or
-- NULL when the row is to be deleted.
CREATE OR REPLACE FUNCTION cdc.reconcile_tombstone_row(p_object text, p_hub uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    IF cdc.reconcile_tombstone(p_object) IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT to_jsonb(x) FROM public.%I x WHERE x.hub_id = $1', p_object) INTO r USING p_hub;
    RETURN (r - 'hub_id') || cdc.reconcile_tombstone(p_object);
END
$$;

-- Re-creates in its system a record the system removed without a trace (Reconcile:RecreateMissing):
-- the hub forgets the system's id, as of a record the system never saw, so the outbound writer
-- sends the whole row again (an upsert by external id: a create) and the new id comes back as
-- any write-back does. A hub write: it is routed to the record's own system.
CREATE OR REPLACE FUNCTION cdc.reconcile_recreate(p_object text, p_hub uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t cdc.sync_tables := (SELECT t FROM cdc.sync_tables t WHERE t.object = p_object);
BEGIN
    IF t.object IS NULL THEN
        RAISE EXCEPTION 'cdc.reconcile_recreate: % is not a staging table under sync', p_object;
    END IF;
    EXECUTE format('UPDATE public.%I SET %I = NULL WHERE hub_id = $1', t.object, t.record_id_column) USING p_hub;
    -- The old id is no value the system holds any more: the new one coming back (write-back,
    -- then the next read) is no edit to weigh against the hub's NULL.
    DELETE FROM cdc.sync_base b WHERE b.object = p_object AND b.record_key = p_hub::text AND b.field = t.record_id_column;
    DELETE FROM cdc.hub_field_stamps s WHERE s.object = p_object AND s.record_key = p_hub::text AND s.field = t.record_id_column;
END
$$;
