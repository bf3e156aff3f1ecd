-- Assertion helpers for transform tests. The harness runs every transforms/tests/_*.sql file
-- inside each test's transaction (after migrations and transforms), so they exist only for the
-- test and vanish with its rollback. A failing assertion raises; its message is the test's
-- failure message, so each says what was checked, what was expected and what was found.

CREATE SCHEMA IF NOT EXISTS cdc_test;

CREATE OR REPLACE FUNCTION cdc_test.assert_equals(actual anyelement, expected anyelement, what text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF actual IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'assertion failed: %: expected %, got %',
            what, coalesce(quote_literal(expected), 'NULL'), coalesce(quote_literal(actual), 'NULL');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION cdc_test.assert_true(condition boolean, what text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF condition IS NOT TRUE THEN
        RAISE EXCEPTION 'assertion failed: %: expected true, got %', what, coalesce(condition::text, 'NULL');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION cdc_test.assert_false(condition boolean, what text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF condition IS NOT FALSE THEN
        RAISE EXCEPTION 'assertion failed: %: expected false, got %', what, coalesce(condition::text, 'NULL');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION cdc_test.assert_null(actual anyelement, what text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF actual IS NOT NULL THEN
        RAISE EXCEPTION 'assertion failed: %: expected NULL, got %', what, quote_literal(actual);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION cdc_test.assert_not_null(actual anyelement, what text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF actual IS NULL THEN
        RAISE EXCEPTION 'assertion failed: %: expected a value, got NULL', what;
    END IF;
END
$$;

-- Counts the rows of a query, e.g.
--   SELECT cdc_test.assert_count('SELECT 1 FROM ns_customers WHERE isinactive', 1, 'inactive customers');
CREATE OR REPLACE FUNCTION cdc_test.assert_count(query text, expected bigint, what text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    actual bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM (%s) q', query) INTO actual;
    IF actual IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'assertion failed: %: expected % rows, got %', what, expected, actual;
    END IF;
END
$$;

-- Runs a statement that must fail with an error whose message contains expected_message.
-- A subtransaction undoes the statement's effects either way.
CREATE OR REPLACE FUNCTION cdc_test.assert_raises(statement text, expected_message text, what text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    message text;
BEGIN
    BEGIN
        EXECUTE statement;
    EXCEPTION WHEN OTHERS THEN
        message := SQLERRM;
    END;
    IF message IS NULL THEN
        RAISE EXCEPTION 'assertion failed: %: expected an error containing %, but the statement succeeded',
            what, quote_literal(expected_message);
    ELSIF strpos(message, expected_message) = 0 THEN
        RAISE EXCEPTION 'assertion failed: %: expected an error containing %, got %',
            what, quote_literal(expected_message), quote_literal(message);
    END IF;
END
$$;

-- "Unchanged input writes nothing": everything runs in one transaction, so xmin cannot tell a
-- rewrite from the original. Every UPDATE, even of identical values, gives the row a new ctid,
-- so a snapshot of (hub_id, ctid) taken before and compared after detects any write.
--
--   SELECT cdc_test.snapshot('ns_customers');
--   UPDATE sf_accounts SET name = name;          -- the write under test
--   SELECT cdc_test.assert_unchanged('ns_customers', 'identical update');
CREATE OR REPLACE FUNCTION cdc_test.row_versions(tbl regclass)
RETURNS TABLE (hub_id uuid, version text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT t.hub_id, t.ctid::text FROM %s t', tbl);
END
$$;

-- The snapshot lives in a temp table dropped with the test's transaction. A marker row (NULL
-- hub_id) records that a snapshot was taken even of an empty table.
CREATE OR REPLACE FUNCTION cdc_test.snapshot(tbl regclass)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.cdc_test_snapshots') IS NULL THEN
        CREATE TEMP TABLE cdc_test_snapshots (tbl regclass, hub_id uuid, version text) ON COMMIT DROP;
    END IF;
    DELETE FROM pg_temp.cdc_test_snapshots s WHERE s.tbl = snapshot.tbl;
    INSERT INTO pg_temp.cdc_test_snapshots VALUES (snapshot.tbl, NULL, NULL);
    INSERT INTO pg_temp.cdc_test_snapshots
    SELECT snapshot.tbl, v.hub_id, v.version FROM cdc_test.row_versions(tbl) v;
END
$$;

CREATE OR REPLACE FUNCTION cdc_test.assert_unchanged(tbl regclass, what text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    changed bigint;
    sample  text;
BEGIN
    IF to_regclass('pg_temp.cdc_test_snapshots') IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_temp.cdc_test_snapshots s WHERE s.tbl = assert_unchanged.tbl) THEN
        RAISE EXCEPTION 'cdc_test.assert_unchanged: call cdc_test.snapshot(%) first', quote_literal(tbl::text);
    END IF;
    WITH before AS (SELECT s.hub_id, s.version FROM pg_temp.cdc_test_snapshots s
                     WHERE s.tbl = assert_unchanged.tbl AND s.hub_id IS NOT NULL),
         after AS (SELECT v.hub_id, v.version FROM cdc_test.row_versions(tbl) v),
         diff AS (
             SELECT coalesce(b.hub_id, a.hub_id) AS hub_id,
                    CASE WHEN b.hub_id IS NULL THEN 'inserted'
                         WHEN a.hub_id IS NULL THEN 'deleted'
                         ELSE 'updated' END AS change
               FROM before b FULL JOIN after a ON a.hub_id = b.hub_id
              WHERE b.version IS DISTINCT FROM a.version)
    SELECT count(*), string_agg(d.change || ' ' || d.hub_id, ', ' ORDER BY d.hub_id) INTO changed, sample
      FROM diff d;
    IF changed > 0 THEN
        RAISE EXCEPTION 'assertion failed: %: expected no write to %, got % row(s) written: %',
            what, tbl, changed, sample;
    END IF;
END
$$;

-- Rows inserted, updated and deleted in tbl so far in this transaction.
CREATE OR REPLACE FUNCTION cdc_test.writes(tbl regclass)
RETURNS bigint
LANGUAGE sql AS $$
    SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
      FROM pg_stat_xact_user_tables WHERE relid = tbl
$$;
