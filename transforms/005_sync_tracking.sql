-- Conflict detection, sync base upkeep and the inbound audit trail, as triggers on every staging
-- table registered in cdc.sync_tables (transforms/015_sync_rules.sql registers the shipped ones).
-- Re-run by `cdcsync migrate` whenever this file changes, so everything is CREATE OR REPLACE.
--
-- Who wrote a row is told apart by two things:
--   * a connector's own inbound write: the session carries a replication origin
--     (cdc.inbound_connector() is not NULL) and the write is the statement itself
--     (pg_trigger_depth() = 1);
--   * everything else is the hub's own write: transforms mapping another system's edit (nested,
--     depth > 1, same transaction and origin as that edit), operators, `conflicts resolve`.
-- Only the first kind is compared against the sync base; the second kind is what the base
-- compares *with* (the hub's pending value) and gets a per-field stamp for last-write-wins.

-- The policy of one field: the field's row, else the table's '*' row, else last_write_wins.
CREATE OR REPLACE FUNCTION cdc.conflict_policy_of(p_object text, p_field text)
RETURNS cdc.conflict_policies
LANGUAGE sql STABLE AS $$
    SELECT p FROM (
        SELECT p, 0 AS rank FROM cdc.conflict_policies p WHERE p.object = p_object AND p.field = p_field
        UNION ALL
        SELECT p, 1 FROM cdc.conflict_policies p WHERE p.object = p_object AND p.field = '*'
        UNION ALL
        SELECT ROW(p_object, '*', 'last_write_wins', NULL, NULL)::cdc.conflict_policies, 2
    ) x ORDER BY rank LIMIT 1
$$;

-- Columns never compared nor audited: the hub key, the source stamp (it is the timestamp of the
-- comparison, not data), and fields a policy marks 'ignore'. One array per table, so that the
-- triggers test every field of a row in one statement (one lookup per row, not one per field).
CREATE OR REPLACE FUNCTION cdc.sync_untracked_fields(p_object text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT ARRAY['hub_id', 'cdc_source_modified_at']
           || coalesce((SELECT array_agg(p.field) FROM cdc.conflict_policies p
                         WHERE p.object = p_object AND p.policy = 'ignore'), '{}')
$$;

CREATE OR REPLACE FUNCTION cdc.sync_field_tracked(p_object text, p_field text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT p_field <> ALL (cdc.sync_untracked_fields(p_object))
$$;

CREATE OR REPLACE FUNCTION cdc.set_sync_base(p_object text, p_key text, p_field text, p_value jsonb,
                                             p_modified_at timestamptz) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO cdc.sync_base AS b (object, record_key, field, value, source_modified_at, updated_at)
    VALUES (p_object, p_key, p_field, p_value, p_modified_at, now())
    ON CONFLICT (object, record_key, field) DO UPDATE
       SET value = EXCLUDED.value, source_modified_at = EXCLUDED.source_modified_at, updated_at = now(),
           prior_value = NULL, prior_modified_at = NULL
     WHERE b.value IS DISTINCT FROM EXCLUDED.value
        OR b.source_modified_at IS DISTINCT FROM EXCLUDED.source_modified_at
$$;

-- BEFORE INSERT OR UPDATE: for a connector's own write, decide field by field what the hub keeps
-- (this rewrites NEW); for every top-level write, publish the stamp and system of the change so
-- that the writes transforms make from it (nested, AFTER triggers) can stamp their fields.
CREATE OR REPLACE FUNCTION cdc.sync_before_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    -- TG_TABLE_NAME is a name (collation "C"): compared with a text column it keeps the
    -- (object, record_key, field) keys out, and every write scanned the whole sync base.
    obj        text := TG_TABLE_NAME;
    connector  text := cdc.inbound_connector();
    tbl        cdc.sync_tables;
    o          jsonb;
    n          jsonb;
    r          jsonb;
    k          text;
    rkey        text;
    inc        jsonb;
    hub        jsonb;
    base       cdc.sync_base;
    pol        cdc.conflict_policies;
    hub_stamp  timestamptz;
    hub_sys    text;
    inc_stamp  timestamptz;
    decided    jsonb;
    outcome    text;
    open_id    bigint;
    kept       text[] := '{}';
    -- Set by the inbound writer for a change event naming our own client as its origin.
    own_write  boolean := coalesce(current_setting('cdc.inbound_own_write', true), '') = 'on';
    prior      text;
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    SELECT * INTO tbl FROM cdc.sync_tables WHERE object = obj;
    n := to_jsonb(NEW);

    IF connector IS NULL THEN
        -- An operator's (or a test's) direct write: the hub's own edit, dated now.
        PERFORM set_config('cdc.change_system', 'hub', true);
        PERFORM set_config('cdc.change_modified_at', now()::text, true);
        RETURN NEW;
    END IF;

    inc_stamp := coalesce((n ->> 'cdc_source_modified_at')::timestamptz, now());
    PERFORM set_config('cdc.change_system', tbl.system, true);
    PERFORM set_config('cdc.change_modified_at', inc_stamp::text, true);
    IF TG_OP = 'INSERT' THEN
        RETURN NEW;        -- a new record cannot conflict; its base is set AFTER (the insert may yet become an update)
    END IF;

    o := to_jsonb(OLD);
    r := n;
    rkey := OLD.hub_id::text;
    -- Only the fields the write changes: where the system and the hub agree there is nothing to
    -- decide (the AFTER trigger records the base). Most writes change few fields (an Id written
    -- back changes one), so this keeps the per-field work off the rest.
    FOR k, inc, hub IN SELECT e.key, e.value, o -> e.key FROM jsonb_each(n) e
                        WHERE (o -> e.key) IS DISTINCT FROM e.value LOOP
        CONTINUE WHEN NOT cdc.sync_field_tracked(obj, k);
        SELECT * INTO base FROM cdc.sync_base b
         WHERE b.object = obj AND b.record_key = rkey AND b.field = k;
        IF NOT FOUND THEN
            -- Never read from nor acknowledged as written to the system: its value applies, unless
            -- this is a version read from it (a new stamp, not a write-back of ids) older than the
            -- hub's change of the field (another system's edit, stamped by the change that made
            -- it) by a whole second at least, so that a system stamping to the second (NetSuite)
            -- is not taken for older within the same second. That is the read-back of a record we
            -- just created, applied before the create's acknowledgement set the base, while a newer
            -- edit is on its way out: the system holds what we created it with, which is no edit.
            -- The hub keeps its value.
            hub_stamp := NULL;
            IF (n ->> 'cdc_source_modified_at') IS DISTINCT FROM (o ->> 'cdc_source_modified_at') THEN
                SELECT s.modified_at INTO hub_stamp FROM cdc.hub_field_stamps s
                 WHERE s.object = obj AND s.record_key = rkey AND s.field = k AND s.source_system <> tbl.system;
            END IF;
            IF hub_stamp IS NOT NULL AND date_trunc('second', hub_stamp) > inc_stamp THEN
                r := jsonb_set(r, ARRAY[k], coalesce(hub, 'null'::jsonb));
                kept := kept || k;
                PERFORM cdc.set_sync_base(obj, rkey, k, inc, inc_stamp);
            END IF;
            CONTINUE;
        END IF;
        IF inc_stamp < base.source_modified_at THEN
            -- The system held the base at a later stamp (one of our writes, its stamp read back,
            -- or a later read): this row was read before that, its value of the field is older
            -- than what the system holds. Not an edit; the next read brings the current version.
            r := jsonb_set(r, ARRAY[k], coalesce(hub, 'null'::jsonb));
            kept := kept || k;
            CONTINUE;
        END IF;
        IF inc IS NOT DISTINCT FROM base.value THEN
            -- The system did not change the field; the hub's value is newer (pending outbound)
            -- and a stale re-read must not revert it.
            r := jsonb_set(r, ARRAY[k], coalesce(hub, 'null'::jsonb));
            kept := kept || k;
            CONTINUE;
        END IF;
        IF base.prior_value IS NOT NULL AND inc_stamp = base.source_modified_at
           AND inc IS NOT DISTINCT FROM base.prior_value THEN
            -- The base is our write, stamped in the same second as this version (a system that
            -- stamps to the second, NetSuite), and this version holds what the field held before
            -- that write (cdc.record_outbound_batch keeps it): read before the write landed, e.g.
            -- the first read-back of a record we created, applied after our next write of it.
            -- Not an edit, as an older stamp would say. (A user's edit back to exactly that value
            -- in the same second as our write cannot be told apart from it.)
            r := jsonb_set(r, ARRAY[k], coalesce(hub, 'null'::jsonb));
            kept := kept || k;
            CONTINUE;
        END IF;

        SELECT c.id INTO open_id FROM cdc.conflicts c
         WHERE c.object = obj AND c.record_key = rkey AND c.field = k AND c.status = 'open';
        IF open_id IS NOT NULL THEN
            -- Held for manual review: a later edit in the system updates the open conflict.
            UPDATE cdc.conflicts
               SET incoming_value = inc, incoming_modified_at = inc_stamp,
                   incoming_values = jsonb_build_object(k, inc)
             WHERE id = open_id;
            r := jsonb_set(r, ARRAY[k], coalesce(hub, 'null'::jsonb));
            kept := kept || k;
            PERFORM cdc.set_sync_base(obj, rkey, k, inc, inc_stamp);
            CONTINUE;
        END IF;

        IF hub IS NOT DISTINCT FROM base.value THEN
            CONTINUE;                                   -- only the system changed it: a plain inbound edit
        END IF;

        IF own_write THEN
            -- The system's record of our own write: what it made of the value we sent (a normalized
            -- phone), which may reach the hub before the write's acknowledgement set the base. Not a
            -- user's edit, so never a conflict: the hub keeps a value it changed after that write
            -- (still on its way out), else takes the system's; the base is the system's value.
            SELECT s.modified_at INTO hub_stamp FROM cdc.hub_field_stamps s
             WHERE s.object = obj AND s.record_key = rkey AND s.field = k;
            IF hub_stamp IS NOT NULL AND hub_stamp > inc_stamp THEN
                r := jsonb_set(r, ARRAY[k], coalesce(hub, 'null'::jsonb));
                kept := kept || k;
            END IF;
            PERFORM cdc.set_sync_base(obj, rkey, k, inc, inc_stamp);
            CONTINUE;
        END IF;

        -- Changed in the system and in the hub since they last agreed, to different values.
        SELECT s.modified_at, s.source_system INTO hub_stamp, hub_sys
          FROM cdc.hub_field_stamps s
         WHERE s.object = obj AND s.record_key = rkey AND s.field = k;
        hub_stamp := coalesce(hub_stamp, (o ->> 'cdc_source_modified_at')::timestamptz);
        hub_sys := coalesce(hub_sys, 'hub');
        pol := cdc.conflict_policy_of(obj, k);
        CASE pol.policy
            WHEN 'source_priority' THEN
                IF pol.priority_system = tbl.system THEN
                    decided := inc; outcome := 'took ' || tbl.system;
                ELSE
                    decided := hub; outcome := 'kept ' || hub_sys;
                END IF;
            WHEN 'manual' THEN
                decided := hub; outcome := 'held for review';
            WHEN 'custom' THEN
                EXECUTE format('SELECT %s($1, $2, $3, $4, $5)', pol.custom_function)
                   INTO decided USING base.value, hub, inc, hub_stamp, inc_stamp;
                outcome := CASE WHEN decided IS NOT DISTINCT FROM inc THEN 'took ' || tbl.system
                                WHEN decided IS NOT DISTINCT FROM hub THEN 'kept ' || hub_sys
                                ELSE 'custom value' END;
            ELSE
                -- last_write_wins by the systems' own stamps; an unknown hub stamp loses, and the
                -- incoming edit wins a tie (it was read later).
                IF hub_stamp IS NULL OR inc_stamp >= hub_stamp THEN
                    decided := inc; outcome := 'took ' || tbl.system;
                ELSE
                    decided := hub; outcome := 'kept ' || hub_sys;
                END IF;
        END CASE;

        INSERT INTO cdc.conflicts (connector, object, record_key, field, policy, base_value, hub_value,
                                   incoming_value, decided_value, hub_system, incoming_system,
                                   hub_modified_at, incoming_modified_at, hub_values, incoming_values,
                                   decision, status, resolved_at, resolved_by)
        VALUES (connector, obj, rkey, k, pol.policy, base.value, hub, inc,
                CASE WHEN pol.policy = 'manual' THEN NULL ELSE decided END, hub_sys, tbl.system,
                hub_stamp, inc_stamp, jsonb_build_object(k, hub), jsonb_build_object(k, inc),
                outcome,
                CASE WHEN pol.policy = 'manual' THEN 'open' ELSE 'resolved' END,
                CASE WHEN pol.policy = 'manual' THEN NULL ELSE now() END,
                CASE WHEN pol.policy = 'manual' THEN NULL ELSE 'policy:' || pol.policy END);

        r := jsonb_set(r, ARRAY[k], coalesce(decided, 'null'::jsonb));
        -- The system holds its own edit, whatever the hub keeps.
        PERFORM cdc.set_sync_base(obj, rkey, k, inc, inc_stamp);
        IF decided IS DISTINCT FROM inc THEN
            kept := kept || k;
        END IF;
    END LOOP;

    -- Tell the AFTER trigger which fields hold something other than what the system sent, so
    -- it does not take them for values the system and the hub agree on. Only rows with such
    -- fields are listed (a row not listed kept none): the setting is parsed by every tracked
    -- write of the transaction, and one entry per row made a batch of writes quadratic.
    prior := nullif(current_setting('cdc.kept_fields', true), '');
    IF kept <> '{}' THEN
        PERFORM set_config('cdc.kept_fields',
            (coalesce(prior::jsonb, '{}') || jsonb_build_object(rkey, to_jsonb(kept)))::text, true);
    ELSIF prior IS NOT NULL AND prior::jsonb ? rkey THEN
        PERFORM set_config('cdc.kept_fields', (prior::jsonb - rkey)::text, true);
    END IF;

    IF r IS DISTINCT FROM n THEN
        NEW := jsonb_populate_record(NEW, r);
    END IF;
    RETURN NEW;
END
$$;

-- AFTER INSERT OR UPDATE OR DELETE: base and audit for a connector's own write; per-field stamps
-- for the hub's writes.
CREATE OR REPLACE FUNCTION cdc.sync_after_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    -- TG_TABLE_NAME is a name (collation "C"): compared with a text column it keeps the
    -- (object, record_key, field) keys out, and every write scanned the whole sync base.
    obj        text := TG_TABLE_NAME;
    connector text := cdc.inbound_connector();
    tbl       cdc.sync_tables;
    o         jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) ELSE '{}'::jsonb END;
    n         jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) ELSE '{}'::jsonb END;
    rkey       text := coalesce(n ->> 'hub_id', o ->> 'hub_id');
    changes   jsonb := '{}';
    stamp     timestamptz;
    inbound   boolean;
    kept      jsonb;
    untracked text[];
BEGIN
    SELECT * INTO tbl FROM cdc.sync_tables WHERE object = obj;
    inbound := connector IS NOT NULL AND pg_trigger_depth() = 1;
    untracked := cdc.sync_untracked_fields(obj);

    IF TG_OP = 'DELETE' THEN
        IF inbound THEN
            SELECT coalesce(jsonb_object_agg(e.key, jsonb_build_object('before', e.value, 'after', NULL)), '{}')
              INTO changes
              FROM jsonb_each(o) e
             WHERE e.key <> ALL (untracked) AND e.value <> 'null'::jsonb;
            INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, source_system,
                                       target_system, record_id, changes)
            VALUES (connector, 'inbound', obj, rkey, 'delete', tbl.system, 'hub',
                    o ->> tbl.record_id_column, cdc.mask_changes(obj, changes));
        END IF;
        DELETE FROM cdc.sync_base WHERE object = obj AND record_key = rkey;
        DELETE FROM cdc.hub_field_stamps WHERE object = obj AND record_key = rkey;
        RETURN NULL;
    END IF;

    IF inbound THEN
        stamp := (n ->> 'cdc_source_modified_at')::timestamptz;
        kept := coalesce(nullif(current_setting('cdc.kept_fields', true), '')::jsonb -> rkey, '[]');
        -- All fields of the row in one statement (a record's first write sets some twenty):
        --   unchanged: the page may not have carried the field at all, so an existing base stays
        --     (an echo of our own write is recorded by cdc.record_outbound instead);
        --   changed and not kept: the hub took the system's value; it is the base, and the hub's
        --     value is the system's own (no hub stamp). Fields the decision kept got their base
        --     BEFORE. The upsert is cdc.set_sync_base's, for a set of fields.
        WITH f AS (
            SELECT e.key, e.value, o -> e.key AS before, (o -> e.key) IS DISTINCT FROM e.value AS changed
              FROM jsonb_each(n) e
             WHERE e.key <> ALL (untracked)
        ), unchanged AS (
            INSERT INTO cdc.sync_base (object, record_key, field, value, source_modified_at)
            SELECT obj, rkey, f.key, f.value, stamp FROM f WHERE NOT f.changed
            ON CONFLICT (object, record_key, field) DO NOTHING
        ), took AS (
            INSERT INTO cdc.sync_base AS b (object, record_key, field, value, source_modified_at, updated_at)
            SELECT obj, rkey, f.key, f.value, stamp, now() FROM f WHERE f.changed AND NOT kept ? f.key
            ON CONFLICT (object, record_key, field) DO UPDATE
               SET value = EXCLUDED.value, source_modified_at = EXCLUDED.source_modified_at, updated_at = now(),
                   prior_value = NULL, prior_modified_at = NULL
             WHERE b.value IS DISTINCT FROM EXCLUDED.value
                OR b.source_modified_at IS DISTINCT FROM EXCLUDED.source_modified_at
        ), unstamped AS (
            DELETE FROM cdc.hub_field_stamps s
             USING f
             WHERE s.object = obj AND s.record_key = rkey AND s.field = f.key
               AND f.changed AND NOT kept ? f.key
        )
        SELECT coalesce(jsonb_object_agg(f.key, jsonb_build_object('before', f.before, 'after', f.value)), '{}')
          INTO changes
          FROM f
         WHERE f.changed AND NOT (TG_OP = 'INSERT' AND f.value = 'null'::jsonb);
        IF changes <> '{}'::jsonb THEN
            INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, source_system,
                                       target_system, record_id, changes)
            VALUES (connector, 'inbound', obj, rkey, lower(TG_OP), tbl.system, 'hub',
                    n ->> tbl.record_id_column, cdc.mask_changes(obj, changes));
            PERFORM cdc.purge_audit_log_if_due();
        END IF;
        RETURN NULL;
    END IF;

    -- The hub's own write (transform or operator): date each changed field with the change that
    -- caused it, for last-write-wins against the table's system.
    INSERT INTO cdc.hub_field_stamps AS s (object, record_key, field, modified_at, source_system)
    SELECT obj, rkey, f.key,
           coalesce(nullif(current_setting('cdc.change_modified_at', true), '')::timestamptz, now()),
           coalesce(nullif(current_setting('cdc.change_system', true), ''), 'hub')
      FROM jsonb_each(n) f
     WHERE (o -> f.key) IS DISTINCT FROM f.value
       AND f.key <> ALL (untracked)
    ON CONFLICT (object, record_key, field) DO UPDATE
       SET modified_at = EXCLUDED.modified_at, source_system = EXCLUDED.source_system;
    RETURN NULL;
END
$$;

-- Registers a staging table (in public) for conflict detection and audit and attaches the
-- triggers. Idempotent.
CREATE OR REPLACE FUNCTION cdc.track_sync_table(p_object text, p_system text, p_record_id_column text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass(format('public.%I', p_object)) IS NULL THEN
        RAISE EXCEPTION 'cdc.track_sync_table: no staging table public.% (create it in a migration first)', p_object;
    END IF;
    INSERT INTO cdc.sync_tables (object, system, record_id_column)
    VALUES (p_object, p_system, p_record_id_column)
    ON CONFLICT (object) DO UPDATE SET system = EXCLUDED.system, record_id_column = EXCLUDED.record_id_column;
    -- "cdc_sync_*" sort after "cdc_default_cdcsync_id" and the transforms' BEFORE triggers, so
    -- the decision sees the row as the other BEFORE triggers left it.
    EXECUTE format('CREATE OR REPLACE TRIGGER cdc_sync_before BEFORE INSERT OR UPDATE ON public.%I
                    FOR EACH ROW EXECUTE FUNCTION cdc.sync_before_write()', p_object);
    EXECUTE format('CREATE OR REPLACE TRIGGER cdc_sync_after AFTER INSERT OR UPDATE OR DELETE ON public.%I
                    FOR EACH ROW EXECUTE FUNCTION cdc.sync_after_write()', p_object);
END
$$;

-- ---------------------------------------------------------------------------------------
-- Manual decisions
-- ---------------------------------------------------------------------------------------

-- Makes the hub carry p_value in p_field of one row so that the outbound flow sends it to the
-- table's system even when the hub already holds it: the field is set to what the system holds
-- and back, at trigger depth 2 so that the transforms do not map the intermediate value.
CREATE OR REPLACE FUNCTION cdc.on_field_push() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE public.%I SET %I = (jsonb_populate_record(NULL::public.%I, $1)).%I WHERE hub_id = $2',
                   NEW.object, NEW.field, NEW.object, NEW.field)
      USING jsonb_build_object(NEW.field, NEW.via_value), NEW.record_key::uuid;
    EXECUTE format('UPDATE public.%I SET %I = (jsonb_populate_record(NULL::public.%I, $1)).%I WHERE hub_id = $2',
                   NEW.object, NEW.field, NEW.object, NEW.field)
      USING jsonb_build_object(NEW.field, NEW.value), NEW.record_key::uuid;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER cdc_field_push AFTER INSERT ON cdc.field_pushes
    FOR EACH ROW EXECUTE FUNCTION cdc.on_field_push();

-- Decides an open conflict: p_value becomes the field's value in the hub, written as the hub's
-- own change (no origin), so the transforms and the outbound flow carry it to both systems.
-- Returns the conflict as decided.
CREATE OR REPLACE FUNCTION cdc.resolve_conflict(p_id bigint, p_value jsonb, p_by text)
RETURNS cdc.conflicts
LANGUAGE plpgsql AS $$
DECLARE
    c       cdc.conflicts;
    current jsonb;
    base    jsonb;
BEGIN
    SELECT * INTO c FROM cdc.conflicts WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no conflict with id % (see cdcsync conflicts list)', p_id USING ERRCODE = 'P0002';
    END IF;
    IF c.status <> 'open' THEN
        RAISE EXCEPTION 'conflict % is already % (decided: %)', p_id, c.status, c.decision USING ERRCODE = 'P0003';
    END IF;

    -- Close it first: the write below is the hub's own and must not be held again.
    UPDATE cdc.conflicts
       SET status = 'resolved', decided_value = p_value, resolved_at = now(), resolved_by = p_by,
           decision = CASE WHEN p_value IS NOT DISTINCT FROM incoming_value THEN 'took ' || incoming_system
                           WHEN p_value IS NOT DISTINCT FROM hub_value THEN 'took ' || hub_system
                           ELSE 'set by operator' END
     WHERE id = p_id
    RETURNING * INTO c;

    EXECUTE format('SELECT to_jsonb(t) -> %L FROM public.%I t WHERE hub_id = $1', c.field, c.object)
       INTO current USING c.record_key::uuid;
    SELECT b.value INTO base FROM cdc.sync_base b
     WHERE b.object = c.object AND b.record_key = c.record_key AND b.field = c.field;

    IF current IS DISTINCT FROM p_value THEN
        EXECUTE format('UPDATE public.%I SET %I = (jsonb_populate_record(NULL::public.%I, $1)).%I WHERE hub_id = $2',
                       c.object, c.field, c.object, c.field)
          USING jsonb_build_object(c.field, p_value), c.record_key::uuid;
    ELSIF base IS DISTINCT FROM p_value THEN
        -- The hub already holds the decision but the system does not (it holds its own edit).
        INSERT INTO cdc.field_pushes (object, record_key, field, conflict_id, via_value, value)
        VALUES (c.object, c.record_key, c.field, c.id, base, p_value);
    END IF;
    IF c.connector = 'onboarding' THEN
        -- A field of a matched pair kept apart since onboarding: the other system gets the
        -- decision too (transforms/050_matching.sql).
        PERFORM cdc.onboard_conflict_resolved(c);
    END IF;
    RETURN c;
END
$$;

-- Called by cdc.record_outbound after a system acknowledged a write. A write of the hub's older
-- value can already be queued for a system when a conflict on that field is detected, and it
-- lands afterwards. When the conflict was decided for the system's own edit ("took
-- salesforce"), the write overwrote that edit while the hub keeps the decision: the decision is
-- pushed to the system again. (A field held for manual review keeps the hub's value; the queued
-- write of it is what the system holds until `conflicts resolve`.)
-- One push per conflict and value, so a push's own acknowledgement never pushes again. Fields
-- without a conflict are left alone: a hub value newer than the write is already in the WAL.
CREATE OR REPLACE FUNCTION cdc.reconcile_outbound(p_object text, p_record_key text, p_changes jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c        record;
    hub_now  jsonb;
    target   jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cdc.sync_tables t WHERE t.object = p_object)
       OR p_record_key !~ '^[0-9a-fA-F-]{36}$' THEN
        RETURN;
    END IF;
    FOR c IN SELECT f.key AS field, f.value -> 'after' AS written, d.id AS conflict_id, d.status,
                    d.decided_value, d.incoming_value
               FROM jsonb_each(coalesce(p_changes, '{}')) f
               JOIN LATERAL (SELECT x.id, x.status, x.decided_value, x.incoming_value FROM cdc.conflicts x
                              WHERE x.object = p_object AND x.record_key = p_record_key AND x.field = f.key
                              ORDER BY x.id DESC LIMIT 1) d ON true
    LOOP
        EXECUTE format('SELECT to_jsonb(t) -> %L FROM public.%I t WHERE hub_id = $1', c.field, p_object)
           INTO hub_now USING p_record_key::uuid;
        IF c.status = 'open' THEN
            CONTINUE;
        ELSIF hub_now IS NOT DISTINCT FROM c.decided_value THEN
            target := c.decided_value;
        ELSE
            CONTINUE;                     -- the hub moved on since the decision
        END IF;
        IF c.written IS DISTINCT FROM target
           AND NOT EXISTS (SELECT 1 FROM cdc.field_pushes p
                            WHERE p.conflict_id = c.conflict_id AND p.value IS NOT DISTINCT FROM target) THEN
            INSERT INTO cdc.field_pushes (object, record_key, field, conflict_id, via_value, value)
            -- Through what the system now holds, so the WAL carries a change of the field.
            VALUES (p_object, p_record_key, c.field, c.conflict_id, c.written, target);
        END IF;
    END LOOP;
END
$$;

-- Outbound precondition. Before a connector updates fields of a record it already knows, it reads
-- what the system holds now and asks which fields it must NOT write: those whose current value
-- differs from the base (edited in the system since it was last read from or written to it) and
-- also from the hub's value (writing it would change nothing). A field with no base is written.
-- p_current: {"<hub id>": {"<column>": <value as the system returned it>}}; values are cast through
-- the staging table's row type, so they compare in the to_jsonb form the triggers store.
CREATE OR REPLACE FUNCTION cdc.outbound_held_fields(p_object text, p_current jsonb)
RETURNS TABLE (record_key text, field text, current_value jsonb, base_value jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT e.key, e.value FROM jsonb_each(p_current) e LOOP
      BEGIN
        RETURN QUERY EXECUTE format(
            'SELECT $1, k.f, to_jsonb(c) -> k.f, b.value
               FROM jsonb_object_keys($2) AS k(f)
               CROSS JOIN jsonb_populate_record(NULL::public.%I, $2) AS c
               JOIN cdc.sync_base b ON b.object = $3 AND b.record_key = $1 AND b.field = k.f
               LEFT JOIN public.%I h ON h.hub_id::text = $1
              WHERE (to_jsonb(c) -> k.f) IS DISTINCT FROM b.value
                AND (to_jsonb(c) -> k.f) IS DISTINCT FROM (to_jsonb(h) -> k.f)', p_object, p_object)
        USING r.key, r.value, p_object;
      EXCEPTION WHEN data_exception THEN
        -- A value the column type cannot take (the system answered in a form the mapping does not
        -- expect) must not stop the pipeline: that record is written as before, without a precondition.
        RAISE WARNING 'cdc.outbound_held_fields: % row % not compared (%); written without a precondition', p_object, r.key, SQLERRM;
      END;
    END LOOP;
END $$;

-- The outbound check, one query per collection or record: which of the fields about to be written
-- must not be written, and why.
--   superseded  the hub no longer holds the value being written (it moved on since the change was
--               committed: a later change, or the system's own newer edit already read in, which
--               the system holds). Writing it would put an older value over a newer one; whatever
--               the hub holds now reaches the system with its own change, or is there already.
--   edited      the system changed the field since it was last read from or written to (its current
--               value differs from the base and from the hub's): decided now (cdc.decide_held_fields).
-- p_written: {"<hub id>": {"<column>": <value being written>}}; p_current: {"<hub id>": {"<column>":
-- <value the system holds now, as it returned it>}} (may leave out records or columns it did not
-- read). Both are cast through the staging table's row type, so they compare as the triggers store.
CREATE OR REPLACE FUNCTION cdc.outbound_skipped_fields(p_object text, p_written jsonb, p_current jsonb)
RETURNS TABLE (record_key text, field text, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT e.key, e.value AS written, coalesce(p_current -> e.key, '{}') AS current
               FROM jsonb_each(coalesce(p_written, '{}')) e LOOP
      BEGIN
        RETURN QUERY EXECUTE format(
            'SELECT $1, k.f,
                    CASE WHEN (to_jsonb(w) -> k.f) IS DISTINCT FROM (to_jsonb(h) -> k.f) THEN ''superseded'' ELSE ''edited'' END
               FROM jsonb_object_keys($2) AS k(f)
               CROSS JOIN jsonb_populate_record(NULL::public.%I, $2) AS w
               CROSS JOIN jsonb_populate_record(NULL::public.%I, $3) AS c
               JOIN public.%I h ON h.hub_id::text = $1
               LEFT JOIN cdc.sync_base b ON b.object = $4 AND b.record_key = $1 AND b.field = k.f
              WHERE (to_jsonb(w) -> k.f) IS DISTINCT FROM (to_jsonb(h) -> k.f)
                 OR ($3 ? k.f AND b.record_key IS NOT NULL
                     AND (to_jsonb(c) -> k.f) IS DISTINCT FROM b.value
                     AND (to_jsonb(c) -> k.f) IS DISTINCT FROM (to_jsonb(h) -> k.f))', p_object, p_object, p_object)
        USING r.key, r.written, r.current, p_object;
      EXCEPTION WHEN data_exception THEN
        -- A value the column type cannot take (the system answered in a form the mapping does not
        -- expect) must not stop the pipeline: that record is written as before, without a check.
        RAISE WARNING 'cdc.outbound_skipped_fields: % row % not compared (%); written without a check', p_object, r.key, SQLERRM;
      END;
    END LOOP;
END $$;

-- Decides held fields at once. Called by the outbound connector, in its connector's origin session
-- (so the staging triggers take it for that system's own inbound write), with what the system holds
-- now for the fields it held back plus the system's modified stamp:
-- p_current {"<hub id>": {"<column>": <value>, .., "<stamp column>": <stamp>}}. The triggers detect
-- the conflict and the policy decides, as if the inbound poll had read the edit. Returns the fields
-- where the hub kept a value the system does not hold (the decision went against the system's edit):
-- the connector writes those now, against the base the decision just set. Fields held for manual
-- review are not returned: the system keeps its edit until an operator decides.
CREATE OR REPLACE FUNCTION cdc.decide_held_fields(p_object text, p_current jsonb)
RETURNS TABLE (record_key text, field text)
LANGUAGE plpgsql AS $$
DECLARE
    r    record;
    cols text;
    vals text;
BEGIN
    FOR r IN SELECT e.key, e.value FROM jsonb_each(p_current) e LOOP
        SELECT string_agg(format('%I', k), ', '), string_agg(format('c.%I', k), ', ')
          INTO cols, vals
          FROM jsonb_object_keys(r.value) k;
        CONTINUE WHEN cols IS NULL;
        EXECUTE format('UPDATE public.%I SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::public.%I, $1) c) WHERE hub_id::text = $2',
                       p_object, cols, vals, p_object)
          USING r.value, r.key;
        RETURN QUERY EXECUTE format(
            'SELECT $1, k.f
               FROM jsonb_object_keys($2) AS k(f)
               CROSS JOIN jsonb_populate_record(NULL::public.%I, $2) AS c
               JOIN public.%I h ON h.hub_id::text = $1
              WHERE cdc.sync_field_tracked($3, k.f)
                AND (to_jsonb(h) -> k.f) IS DISTINCT FROM (to_jsonb(c) -> k.f)
                AND NOT EXISTS (SELECT 1 FROM cdc.conflicts x WHERE x.object = $3 AND x.record_key = $1
                                                                AND x.field = k.f AND x.status = ''open'')',
            p_object, p_object)
          USING r.key, r.value, p_object;
    END LOOP;
END $$;
