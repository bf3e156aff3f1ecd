-- Retention without a scheduler (0011) let every writer that found a purge due wait for the
-- settings row of the one purging: that writer holds the row until its transaction ends, and an
-- onboarding page of a large system is one transaction of minutes. On a fresh hub (last purge
-- -infinity) both systems' first pages found it due, and the second system's first audited row
-- waited on the first system's page until the command timeout (30 s) broke the onboarding.
-- Now a purge is taken by whoever gets the row at once; the others skip it and go on (the one
-- that holds it purges). The stamp is checked again on the locked row: a purge committed since
-- the statement began needs no second one.
CREATE OR REPLACE FUNCTION cdc.purge_audit_log_if_due() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT value::timestamptz FROM cdc.settings WHERE key = 'audit_last_purge')
       < now() - (SELECT value::interval FROM cdc.settings WHERE key = 'audit_purge_interval') THEN
        PERFORM 1 FROM cdc.settings s
         WHERE s.key = 'audit_last_purge'
           AND s.value::timestamptz < now() - (SELECT value::interval FROM cdc.settings WHERE key = 'audit_purge_interval')
           FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            PERFORM cdc.purge_audit_log();
        END IF;
    END IF;
END
$$;
