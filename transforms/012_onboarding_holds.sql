-- The holds of onboarding and match review, which the mappings (020, 030, 040) ask inside
-- every write: while a connector is onboarding nothing unlinked is created on the other side, a
-- record in an open match review is neither created nor adopted, a pair matched but not merged
-- yet waits for cdc.onboard_settle, and a field kept apart by an open onboarding conflict is left
-- alone. Each is a keyed lookup. Matching itself is transforms/050_matching.sql. Re-run by
-- `cdcsync migrate` whenever this file changes, so everything is CREATE OR REPLACE.

CREATE OR REPLACE FUNCTION cdc.onboarding_active() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM cdc.onboarding WHERE phase <> 'settled')
$$;

-- cdc.onboard_settle (and decisions taken after onboarding) call the mapping functions
-- themselves, field by field; the mapping triggers stand aside meanwhile (each write once).
CREATE OR REPLACE FUNCTION cdc.onboard_settling() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('cdc.onboard_settling', true), '') = 'on'
$$;

-- Creating a counterpart for an unlinked record waits while a connector is onboarding.
CREATE OR REPLACE FUNCTION cdc.onboard_holds_creation() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT cdc.onboard_settling() AND cdc.onboarding_active()
$$;

-- The record is named in an open review (on either side): nothing is created or adopted for it.
CREATE OR REPLACE FUNCTION cdc.match_held(p_object text, p_hub uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM cdc.match_candidates m
                    WHERE m.status = 'review' AND m.object_a = p_object AND m.hub_a = p_hub)
        OR EXISTS (SELECT 1 FROM cdc.match_candidates m
                    WHERE m.status = 'review' AND m.object_b = p_object AND m.hub_b = p_hub)
$$;

-- Linked by matching during onboarding and not merged yet: the mapping waits for the merge
-- (otherwise an inbound edit in between would copy one side over the other's values).
CREATE OR REPLACE FUNCTION cdc.onboard_unsettled(p_object text, p_hub uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT cdc.onboard_holds_creation() THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM cdc.match_candidates m
                    WHERE m.status IN ('linked', 'accepted') AND m.settled_at IS NULL
                      AND m.object_a = p_object AND m.hub_a = p_hub)
        OR EXISTS (SELECT 1 FROM cdc.match_candidates m
                    WHERE m.status IN ('linked', 'accepted') AND m.settled_at IS NULL
                      AND m.object_b = p_object AND m.hub_b = p_hub);
END
$$;

-- Fields of a record (Salesforce side) held by an open onboarding conflict: the two systems keep
-- their values until `cdcsync conflicts resolve`, and the mappings leave the field alone.
CREATE OR REPLACE FUNCTION cdc.onboard_held_fields(p_object text, p_hub uuid, p_contact uuid DEFAULT NULL)
RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(c.field), '{}')
      FROM cdc.conflicts c
     WHERE c.status = 'open' AND c.connector = 'onboarding'
       AND ((c.object = p_object AND c.record_key = p_hub::text)
            OR (c.object = 'sf_contacts' AND c.record_key = p_contact::text))
$$;
