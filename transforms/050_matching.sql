-- Matching and onboarding: connecting a Salesforce org and a NetSuite account that already
-- describe many of the same customers, without duplicating them (docs/TRANSFORMS.md, "Matching
-- and onboarding"). Re-run by `cdcsync migrate` whenever this file changes: CREATE OR REPLACE,
-- and the rules below are upserted (this file is where they are edited).
--
--   cdc.onboard_begin / cdc.onboard_loaded     phases per inbound connector (cdc.onboarding)
--   cdc.onboarding_active()                    while true, nothing unlinked is created on the other side
--   cdc.onboard_match()                        match rules -> links ('linked') and reviews ('review')
--   cdc.onboard_report()                       what settling will do
--   cdc.onboard_settle()                       merge matched pairs, create the rest, phase 'settled'
--   cdc.match_accept / match_reject / match_unlink, view cdc.match_review
--
-- A record in an open review is held, onboarding or not: the mappings (020, 030, 040) create
-- nothing for it and adopt nothing for it until a decision.

-- =======================================================================================
-- THE MATCH RULES. Edit here, then `cdcsync transforms test` and `cdcsync migrate`.
-- =======================================================================================

-- A pair's score is the sum of the weights of the keys whose values agree (each key once).
INSERT INTO cdc.match_keys (key, weight, description) VALUES
    ('name',           0.6, 'company name without case, spacing, punctuation and legal suffixes (cdc.match_company_key)'),
    ('website_domain', 0.5, 'website host without scheme, www. and port (cdc.match_website_domain)'),
    ('phone',          0.4, 'the number a phone denotes (cdc.match_phone_key): the account''s and its contacts'' phones, the customer''s'),
    ('email_domain',   0.3, 'domain of the contacts'' / the customer''s email, free-mail domains ignored (cdc.match_email_domain)')
ON CONFLICT (key) DO UPDATE SET weight = EXCLUDED.weight, description = EXCLUDED.description;

-- match_threshold     a pair scoring at least this links, when it is unique (below: review)
-- match_floor         pairs scoring less are no candidates at all
-- match_margin        a second candidate within this of the best makes a tie (review), on either side
-- match_max_per_value a key value shared by more records of one side than this identifies nothing
--                     (a switchboard number, a parent company's domain) and is not used
INSERT INTO cdc.settings (key, value) VALUES
    ('match_threshold',     '0.8'),
    ('match_floor',         '0.4'),
    ('match_margin',        '0.15'),
    ('match_max_per_value', '20')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;

-- Trailing words that do not tell companies apart ('Acme Inc.' = 'ACME, Inc' = 'Acme').
CREATE OR REPLACE FUNCTION cdc.match_legal_suffixes() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['inc', 'incorporated', 'llc', 'llp', 'lp', 'ltd', 'limited', 'gmbh', 'mbh', 'corp',
                 'corporation', 'co', 'company', 'plc', 'ag', 'kg', 'kgaa', 'sa', 'sas', 'sarl', 'srl',
                 'spa', 'bv', 'nv', 'pty', 'pte', 'oy', 'ab', 'aps']
$$;

-- Email domains many unrelated people share: no evidence of a company.
CREATE OR REPLACE FUNCTION cdc.match_free_mail_domains() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['gmail.com', 'googlemail.com', 'yahoo.com', 'yahoo.co.uk', 'ymail.com', 'hotmail.com',
                 'hotmail.co.uk', 'outlook.com', 'live.com', 'msn.com', 'aol.com', 'icloud.com', 'me.com',
                 'mac.com', 'proton.me', 'protonmail.com', 'gmx.com', 'gmx.net', 'gmx.de', 'web.de',
                 'mail.com', 'yandex.com', 'yandex.ru', 'zoho.com', 'qq.com', '163.com', 'orange.fr',
                 'free.fr', 't-online.de', 'comcast.net', 'verizon.net']
$$;

-- 'Acme, Inc.' / 'ACME  Inc' / 'A.C.M.E. Co., Ltd.' -> 'acme'. Dots are dropped first (so
-- 'L.L.C.' is 'llc'), every other run of non-alphanumerics splits words, trailing legal suffixes
-- go (at least one word stays), and the words are joined without spaces ('Blue Sky' = 'BlueSky').
CREATE OR REPLACE FUNCTION cdc.match_company_key(name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    words text[] := regexp_split_to_array(
        btrim(regexp_replace(replace(lower(coalesce(name, '')), '.', ''), '[^[:alnum:]]+', ' ', 'g')), ' ');
BEGIN
    WHILE cardinality(words) > 1 AND words[cardinality(words)] = ANY (cdc.match_legal_suffixes()) LOOP
        words := words[1:cardinality(words) - 1];
    END LOOP;
    RETURN nullif(array_to_string(words, ''), '');
END
$$;

-- 'https://www.Acme.com:443/about' / 'acme.com' / 'WWW.ACME.COM/' -> 'acme.com'.
CREATE OR REPLACE FUNCTION cdc.match_website_domain(url text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(regexp_replace(lower(m[1]), '^www[0-9]*\.|:[0-9]*$|\.$', '', 'g'), '')
      FROM (SELECT regexp_match(cdc.normalize_url(url), '^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/?#]*@)?([^/?#]*)') AS m) x
$$;

-- 'Ada@Acme.COM' -> 'acme.com'; free-mail domains -> NULL.
CREATE OR REPLACE FUNCTION cdc.match_email_domain(email text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN d IS NULL OR d = ANY (cdc.match_free_mail_domains()) THEN NULL ELSE d END
      FROM (SELECT nullif(btrim(substring(lower(btrim(email)) FROM '@([^@[:space:]]+)$'), '.'), '') AS d) x
$$;

-- cdc.phone_key, from 7 digits on (shorter values are extensions or junk). The same steps as
-- cdc.phone_key written out in PL/pgSQL: it runs once per record and phone when matching, and a
-- nested SQL function call costs ten times more.
CREATE OR REPLACE FUNCTION cdc.match_phone_key(phone text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    digits text := regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g');
    p      text;
BEGIN
    IF length(digits) < 7 THEN
        RETURN NULL;
    END IF;
    p := CASE WHEN btrim(phone) LIKE '+%' THEN '+' || digits ELSE digits END;
    RETURN CASE WHEN p ~ '^\+?1[2-9][0-9]{9}$' THEN right(p, 10) ELSE p END;
END
$$;

-- The key values of every record that can be matched: a Salesforce Account with its contacts
-- folded in (as the mapping folds them into the customer), a NetSuite customer (a person's name
-- is first + last name, as the mapping names the account). Deleted accounts are not candidates;
-- inactive customers are (matching one is better than creating its duplicate).
CREATE OR REPLACE VIEW cdc.match_values AS
SELECT 'sf_accounts'::text AS object, a.hub_id, k.key, k.value
  FROM public.sf_accounts a
 CROSS JOIN LATERAL (VALUES ('name', cdc.match_company_key(a.name)),
                            ('website_domain', cdc.match_website_domain(a.website)),
                            ('phone', cdc.match_phone_key(a.phone))) k(key, value)
 WHERE NOT a.isdeleted AND k.value IS NOT NULL
UNION ALL
SELECT 'sf_accounts', c.account_hub_id, k.key, k.value
  FROM public.sf_contacts c
  JOIN public.sf_accounts a ON a.hub_id = c.account_hub_id AND NOT a.isdeleted
 CROSS JOIN LATERAL (VALUES ('phone', cdc.match_phone_key(c.phone)),
                            ('email_domain', cdc.match_email_domain(c.email))) k(key, value)
 WHERE NOT c.isdeleted AND k.value IS NOT NULL
UNION ALL
SELECT 'ns_customers', n.hub_id, k.key, k.value
  FROM public.ns_customers n
 CROSS JOIN LATERAL (VALUES ('name', cdc.match_company_key(CASE WHEN n.isperson
                                         THEN concat_ws(' ', n.firstname, n.lastname) ELSE n.companyname END)),
                            ('website_domain', cdc.match_website_domain(n.url)),
                            ('phone', cdc.match_phone_key(n.phone)),
                            ('email_domain', cdc.match_email_domain(n.email))) k(key, value)
 WHERE k.value IS NOT NULL;

-- Opportunities of a matched pair are the same deal when their names agree this way.
CREATE OR REPLACE FUNCTION cdc.match_opportunity_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(regexp_replace(lower(left(name, 100)), '[^[:alnum:]]+', '', 'g'), '')
$$;

-- =======================================================================================
-- Phases
-- =======================================================================================

-- Which records matching, the report and the settle look at: a LIKE pattern on hub_id, all of
-- them ('%') unless the session sets cdc.onboard_scope (SET LOCAL cdc.onboard_scope =
-- '00000000-0000-0000-0000-%'): the transform tests do, to run on a hub holding other records.
CREATE OR REPLACE FUNCTION cdc.onboard_scope() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('cdc.onboard_scope', true), ''), '%')
$$;

CREATE OR REPLACE FUNCTION cdc.match_setting(p_key text) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT value::numeric FROM cdc.settings WHERE key = p_key
$$;

-- A connector starts (or restarts, after a kill or with no cursor) loading its system. A row
-- that is loading or loaded keeps its start; a settled one starts over.
CREATE OR REPLACE FUNCTION cdc.onboard_begin(p_connector text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO cdc.onboarding AS o (connector, phase, started_at)
    VALUES (p_connector, 'loading', now())
    ON CONFLICT (connector) DO UPDATE
       SET phase = 'loading',
           started_at = CASE WHEN o.phase = 'settled' THEN now() ELSE o.started_at END,
           records_loaded = CASE WHEN o.phase = 'settled' THEN 0 ELSE o.records_loaded END,
           loaded_at = NULL, settled_at = NULL
     WHERE o.phase <> 'loading'
$$;

CREATE OR REPLACE FUNCTION cdc.onboard_loaded(p_connector text, p_records bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cdc.onboarding
       SET phase = 'loaded', loaded_at = coalesce(loaded_at, now()), records_loaded = p_records
     WHERE connector = p_connector AND phase IN ('loading', 'loaded');
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM cdc.onboarding WHERE connector = p_connector) THEN
        RAISE EXCEPTION 'cdc.onboard_loaded: connector % has not begun onboarding; call cdc.onboard_begin(%) first',
            p_connector, quote_literal(p_connector);
    END IF;
END
$$;

-- =======================================================================================
-- Labels, for reviews and the report
-- =======================================================================================

CREATE OR REPLACE FUNCTION cdc.match_label(p_object text, p_hub uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE p_object
               WHEN 'sf_accounts' THEN (SELECT a.name FROM public.sf_accounts a WHERE a.hub_id = p_hub)
               WHEN 'ns_customers' THEN (SELECT cdc.sf_account_name(n) FROM public.ns_customers n WHERE n.hub_id = p_hub)
               WHEN 'sf_opportunities' THEN (SELECT o.name FROM public.sf_opportunities o WHERE o.hub_id = p_hub)
               WHEN 'ns_opportunities' THEN (SELECT o.title FROM public.ns_opportunities o WHERE o.hub_id = p_hub)
           END
$$;

-- What an operator needs to tell two records apart.
CREATE OR REPLACE FUNCTION cdc.match_summary(p_object text, p_hub uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE p_object
               WHEN 'sf_accounts' THEN (
                   SELECT jsonb_strip_nulls(jsonb_build_object('id', a.id, 'name', a.name, 'phone', a.phone,
                              'website', a.website, 'city', a.billingcity, 'country', a.billingcountry,
                              'email', (SELECT c.email FROM public.sf_contacts c
                                         WHERE c.hub_id = cdc.primary_contact_hub_id(a.hub_id))))
                     FROM public.sf_accounts a WHERE a.hub_id = p_hub)
               WHEN 'ns_customers' THEN (
                   SELECT jsonb_strip_nulls(jsonb_build_object('internalid', n.internalid, 'name', cdc.sf_account_name(n),
                              'phone', n.phone, 'url', n.url, 'email', n.email,
                              'city', (cdc.ns_billing_address(n.addressbook)).city,
                              'country', (cdc.ns_billing_address(n.addressbook)).country,
                              'isperson', n.isperson, 'isinactive', n.isinactive))
                     FROM public.ns_customers n WHERE n.hub_id = p_hub)
           END
$$;

-- =======================================================================================
-- Matching
-- =======================================================================================

-- Opportunities of linked account/customer pairs (of one account, or all): the same deal on both
-- sides is linked instead of being created twice. NetSuite's id on the Salesforce opportunity
-- links first; then the same name (cdc.match_opportunity_key), the closest close date and amount,
-- each opportunity taking its best partner only if it is the partner's best too.
CREATE OR REPLACE FUNCTION cdc.onboard_match_opportunities(p_account uuid DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n bigint := 0;
BEGIN
    FOR r IN
        WITH pairs AS (
            SELECT o.hub_id AS sf, p.hub_id AS ns, o.account_hub_id,
                   (o.netsuite_id__c IS NOT NULL AND o.netsuite_id__c = p.internalid) AS by_id,
                   abs(o.closedate - coalesce(p.expectedclosedate, o.closedate)) AS days,
                   abs(coalesce(o.amount, 0) - coalesce(p.projectedtotal, 0)) AS amount_gap
              FROM public.sf_opportunities o
              JOIN cdc.identity_links la ON la.object = 'sf_accounts' AND la.hub_id = o.account_hub_id
              JOIN cdc.identity_links lc ON lc.link_id = la.link_id AND lc.object = 'ns_customers'
              JOIN public.ns_opportunities p ON p.entity_hub_id = lc.hub_id
             WHERE (p_account IS NULL AND o.hub_id::text LIKE cdc.onboard_scope() OR o.account_hub_id = p_account)
               AND NOT o.isdeleted
               AND cdc.linked_hub_id('sf_opportunities', o.hub_id, 'ns_opportunities') IS NULL
               AND cdc.linked_hub_id('ns_opportunities', p.hub_id, 'sf_opportunities') IS NULL
               AND ((o.netsuite_id__c IS NOT NULL AND o.netsuite_id__c = p.internalid)
                    OR cdc.match_opportunity_key(o.name) = cdc.match_opportunity_key(p.title))),
        ranked AS (
            SELECT pairs.*,
                   row_number() OVER (PARTITION BY sf ORDER BY by_id DESC, days, amount_gap, ns) AS rank_sf,
                   row_number() OVER (PARTITION BY ns ORDER BY by_id DESC, days, amount_gap, sf) AS rank_ns
              FROM pairs)
        SELECT * FROM ranked WHERE rank_sf = 1 AND rank_ns = 1
    LOOP
        INSERT INTO cdc.match_candidates (object_a, hub_a, object_b, hub_b, score, keys, status, link_id,
                                          decided_by, decided_at)
        VALUES ('sf_opportunities', r.sf, 'ns_opportunities', r.ns, 1,
                CASE WHEN r.by_id THEN '{"netsuite_id": 1}' ELSE '{"name": 1}' END::jsonb, 'linked',
                cdc.link('sf_opportunities', r.sf, 'ns_opportunities', r.ns), 'onboard_match', now());
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION cdc.onboard_audit(p_object text, p_hub uuid, p_operation_detail jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, source_system,
                               target_system, record_id, changes)
    SELECT 'onboarding', 'inbound', p_object, p_hub::text, 'onboarding', 'onboarding', 'hub',
           (SELECT l.record_id FROM cdc.identity_links l WHERE l.object = p_object AND l.hub_id = p_hub),
           cdc.mask_changes(p_object, p_operation_detail)
$$;

-- Onboarding writes tens of thousands of links and rows in one transaction, on tables that may
-- have been analyzed empty: fresh statistics keep the keyed lookups of the mappings keyed (a plan
-- made for an empty cdc.identity_links scans it, 2 ms a lookup at 24,000 links). ANALYZE counts
-- the transaction's own rows; a login that does not own the tables gets a warning, not an error.
CREATE OR REPLACE FUNCTION cdc.onboard_analyze() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    ANALYZE cdc.identity_links, cdc.match_candidates, public.sf_accounts, public.sf_contacts,
            public.ns_customers, public.sf_opportunities, public.ns_opportunities;
END
$$;

-- Runs the match rules over the records of both sides that are not linked, not held in an open
-- review and not rejected ("create as new"): a pair whose score reaches match_threshold and that
-- is, on both sides, the only candidate within match_margin of the best is linked ('linked');
-- every other pair scoring at least match_floor goes to review. Pairs decided before (rejected,
-- unlinked) are not proposed again. Then the opportunities of linked pairs are matched. Returns
-- what this call did; a second call finds nothing new.
CREATE OR REPLACE FUNCTION cdc.onboard_match()
RETURNS TABLE (outcome text, object text, count bigint)
LANGUAGE plpgsql AS $$
DECLARE
    threshold numeric := coalesce(cdc.match_setting('match_threshold'), 0.8);
    floor_    numeric := coalesce(cdc.match_setting('match_floor'), 0.4);
    margin    numeric := coalesce(cdc.match_setting('match_margin'), 0.15);
    max_per   numeric := coalesce(cdc.match_setting('match_max_per_value'), 20);
    r         record;
    n_adopted bigint := 0;
    n_linked  bigint := 0;
    n_review  bigint := 0;
    n_opps    bigint;
BEGIN
    -- Records paired before CdcSync (netsuite_id__c = internalid), as the mappings adopt them.
    FOR r IN SELECT a.hub_id AS sf, n.hub_id AS ns
               FROM public.sf_accounts a
               JOIN public.ns_customers n ON n.internalid = a.netsuite_id__c
              WHERE a.hub_id::text LIKE cdc.onboard_scope() AND NOT a.isdeleted
                AND cdc.linked_hub_id('sf_accounts', a.hub_id, 'ns_customers') IS NULL
                AND cdc.linked_hub_id('ns_customers', n.hub_id, 'sf_accounts') IS NULL
                AND NOT cdc.match_held('sf_accounts', a.hub_id) AND NOT cdc.match_held('ns_customers', n.hub_id)
                AND NOT EXISTS (SELECT 1 FROM cdc.match_candidates m
                                 WHERE m.status IN ('rejected', 'unlinked') AND m.hub_a = a.hub_id AND m.hub_b = n.hub_id)
    LOOP
        CONTINUE WHEN cdc.linked_hub_id('sf_accounts', r.sf, 'ns_customers') IS NOT NULL
                   OR cdc.linked_hub_id('ns_customers', r.ns, 'sf_accounts') IS NOT NULL;
        INSERT INTO cdc.match_candidates (object_a, hub_a, object_b, hub_b, score, keys, status, link_id,
                                          decided_by, decided_at)
        VALUES ('sf_accounts', r.sf, 'ns_customers', r.ns, 1, '{"netsuite_id": 1}', 'linked',
                cdc.link('sf_accounts', r.sf, 'ns_customers', r.ns), 'onboard_match', now());
        n_adopted := n_adopted + 1;
    END LOOP;

    PERFORM cdc.onboard_analyze();
    DROP TABLE IF EXISTS pg_temp.cdc_match_values, pg_temp.cdc_match_pairs;
    CREATE TEMP TABLE cdc_match_values ON COMMIT DROP AS
    SELECT DISTINCT v.object, v.hub_id, v.key, v.value
      FROM cdc.match_values v
     WHERE v.hub_id::text LIKE cdc.onboard_scope()
       AND NOT EXISTS (SELECT 1 FROM cdc.identity_links s
                         JOIN cdc.identity_links o ON o.link_id = s.link_id
                                                  AND o.object = CASE v.object WHEN 'sf_accounts' THEN 'ns_customers' ELSE 'sf_accounts' END
                        WHERE s.object = v.object AND s.hub_id = v.hub_id)
       AND NOT cdc.match_held(v.object, v.hub_id)
       AND NOT EXISTS (SELECT 1 FROM cdc.match_candidates m
                        WHERE m.object_a = v.object AND m.hub_a = v.hub_id AND m.status = 'rejected'
                          AND m.decided_by IS DISTINCT FROM 'accepted elsewhere');
    DELETE FROM cdc_match_values v
     USING (SELECT x.object, x.key, x.value FROM cdc_match_values x
             GROUP BY 1, 2, 3 HAVING count(*) > max_per) common
     WHERE v.object = common.object AND v.key = common.key AND v.value = common.value;

    CREATE TEMP TABLE cdc_match_pairs ON COMMIT DROP AS
    WITH agreeing AS (
        SELECT DISTINCT s.hub_id AS sf, n.hub_id AS ns, s.key
          FROM cdc_match_values s
          JOIN cdc_match_values n ON n.key = s.key AND n.value = s.value AND n.object = 'ns_customers'
         WHERE s.object = 'sf_accounts'),
    scored AS (
        SELECT g.sf, g.ns, sum(k.weight) AS score, jsonb_object_agg(g.key, k.weight) AS keys
          FROM agreeing g JOIN cdc.match_keys k ON k.key = g.key
         GROUP BY g.sf, g.ns)
    SELECT s.* FROM scored s
     WHERE s.score >= floor_ AND s.score > 0
       AND NOT EXISTS (SELECT 1 FROM cdc.match_candidates m
                        WHERE m.status IN ('rejected', 'unlinked')
                          AND ((m.hub_a = s.sf AND m.hub_b = s.ns) OR (m.hub_a = s.ns AND m.hub_b = s.sf)));

    -- Confident and unique on both sides: linked in one statement (cdc.link's checks hold: neither
    -- record is linked to the other table; a link either already has to a third table is kept).
    DROP TABLE IF EXISTS pg_temp.cdc_match_linked;
    CREATE TEMP TABLE cdc_match_linked ON COMMIT DROP AS
    WITH stats AS (
        SELECT p.*,
               max(p.score) OVER (PARTITION BY p.sf) AS best_sf,
               max(p.score) OVER (PARTITION BY p.ns) AS best_ns
          FROM cdc_match_pairs p),
    close AS (
        SELECT s.*,
               count(*) FILTER (WHERE s.score >= s.best_sf - margin) OVER (PARTITION BY s.sf) AS close_sf,
               count(*) FILTER (WHERE s.score >= s.best_ns - margin) OVER (PARTITION BY s.ns) AS close_ns
          FROM stats s),
    confident AS (
        SELECT c.sf, c.ns, c.score, c.keys,
               (SELECT l.link_id FROM cdc.identity_links l WHERE l.object = 'sf_accounts' AND l.hub_id = c.sf) AS link_sf,
               (SELECT l.link_id FROM cdc.identity_links l WHERE l.object = 'ns_customers' AND l.hub_id = c.ns) AS link_ns
          FROM close c
         WHERE c.score >= threshold AND c.score = c.best_sf AND c.score = c.best_ns AND c.close_sf = 1 AND c.close_ns = 1)
    SELECT c.sf, c.ns, c.score, c.keys, coalesce(c.link_sf, c.link_ns, gen_random_uuid()) AS link_id
      FROM confident c
     WHERE c.link_sf IS NULL OR c.link_ns IS NULL OR c.link_sf = c.link_ns;
    INSERT INTO cdc.identity_links (link_id, object, hub_id, system, record_id)
    SELECT k.link_id, 'sf_accounts', k.sf, 'salesforce', (SELECT a.id FROM public.sf_accounts a WHERE a.hub_id = k.sf)
      FROM cdc_match_linked k
    UNION ALL
    SELECT k.link_id, 'ns_customers', k.ns, 'netsuite', (SELECT n.internalid FROM public.ns_customers n WHERE n.hub_id = k.ns)
      FROM cdc_match_linked k
    ON CONFLICT ON CONSTRAINT identity_links_pkey DO NOTHING;
    INSERT INTO cdc.match_candidates (object_a, hub_a, object_b, hub_b, score, keys, status, link_id,
                                      decided_by, decided_at)
    SELECT 'sf_accounts', k.sf, 'ns_customers', k.ns, k.score, k.keys, 'linked', k.link_id, 'onboard_match', now()
      FROM cdc_match_linked k ORDER BY k.sf;
    INSERT INTO cdc.audit_log (connector, direction, object, record_key, operation, source_system,
                               target_system, record_id, changes)
    SELECT 'onboarding', 'inbound', 'sf_accounts', k.sf::text, 'onboarding', 'onboarding', 'hub',
           (SELECT a.id FROM public.sf_accounts a WHERE a.hub_id = k.sf),
           jsonb_build_object('matched_with', jsonb_build_object('before', NULL, 'after', k.ns),
                              'score', jsonb_build_object('before', NULL, 'after', k.score))
      FROM cdc_match_linked k;
    SELECT count(*) INTO n_linked FROM cdc_match_linked;
    PERFORM cdc.onboard_analyze();

    -- The rest goes to review. A customer that several accounts contest, each having no other
    -- candidate, is one review of the customer; otherwise one review per account with all its
    -- candidates.
    DELETE FROM cdc_match_pairs p
     WHERE cdc.linked_hub_id('sf_accounts', p.sf, 'ns_customers') IS NOT NULL
        OR cdc.linked_hub_id('ns_customers', p.ns, 'sf_accounts') IS NOT NULL;
    WITH counted AS (
        SELECT p.*, count(*) OVER (PARTITION BY p.sf) AS n_sf, count(*) OVER (PARTITION BY p.ns) AS n_ns
          FROM cdc_match_pairs p),
    contested AS (
        SELECT c.ns FROM counted c GROUP BY c.ns HAVING count(*) > 1 AND max(c.n_sf) = 1),
    ins AS (
        INSERT INTO cdc.match_candidates (object_a, hub_a, object_b, hub_b, score, keys, status)
        SELECT 'ns_customers', c.ns, 'sf_accounts', c.sf, c.score, c.keys, 'review'
          FROM counted c WHERE c.ns IN (SELECT ns FROM contested)
        UNION ALL
        SELECT 'sf_accounts', c.sf, 'ns_customers', c.ns, c.score, c.keys, 'review'
          FROM counted c WHERE c.ns NOT IN (SELECT ns FROM contested)
        ORDER BY 1, 2, 5 DESC
        RETURNING object_a, hub_a)
    SELECT count(DISTINCT (ins.object_a, ins.hub_a)) INTO n_review FROM ins;

    n_opps := cdc.onboard_match_opportunities(NULL);

    RETURN QUERY
    SELECT x.outcome, x.object, x.count FROM (VALUES
        ('adopted', 'sf_accounts', n_adopted),
        ('linked', 'sf_accounts', n_linked),
        ('review', 'sf_accounts', n_review),
        ('linked', 'sf_opportunities', n_opps)) x(outcome, object, count)
     WHERE x.count > 0;
END
$$;

-- =======================================================================================
-- Reviews
-- =======================================================================================

-- Open reviews, one row per held record: id (pass it to cdc.match_accept / cdc.match_reject;
-- any id of the review's rows works too), the record, its candidates (id, hub_id, label, score,
-- keys, record) best first, and why it waits: 'tie' (two or more candidates), 'weak' (one
-- candidate below match_threshold), 'unlinked' (a link undone by cdc.match_unlink).
CREATE OR REPLACE VIEW cdc.match_review AS
SELECT min(m.id) AS id,
       m.object_a AS object,
       m.hub_a AS hub_id,
       cdc.match_label(m.object_a, m.hub_a) AS label,
       cdc.match_summary(m.object_a, m.hub_a) AS record,
       max(m.object_b) AS other_object,
       count(m.hub_b) AS candidate_count,
       max(m.score) AS best_score,
       CASE WHEN count(m.hub_b) > 1 THEN 'tie'
            WHEN bool_or(EXISTS (SELECT 1 FROM cdc.match_candidates u
                                  WHERE u.status = 'unlinked' AND u.hub_a IN (m.hub_a, m.hub_b)
                                    AND u.hub_b IN (m.hub_a, m.hub_b))) THEN 'unlinked'
            ELSE 'weak' END AS reason,
       jsonb_agg(jsonb_build_object('id', m.id, 'object', m.object_b, 'hub_id', m.hub_b,
                                    'label', cdc.match_label(m.object_b, m.hub_b), 'score', m.score,
                                    'keys', m.keys, 'record', cdc.match_summary(m.object_b, m.hub_b))
                 ORDER BY m.score DESC NULLS LAST, m.id) AS candidates,
       min(m.created_at) AS created_at
  FROM cdc.match_candidates m
 WHERE m.status = 'review'
 GROUP BY m.object_a, m.hub_a;

-- The mapping functions create counterparts only when called from a trigger or with the
-- triggers standing aside (a direct call at depth 0 would have its own insert mapped back).
CREATE OR REPLACE FUNCTION cdc.onboard_create_counterpart(p_object text, p_hub uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    made uuid;
    r    record;
BEGIN
    IF p_object NOT IN ('sf_accounts', 'ns_customers') OR cdc.match_held(p_object, p_hub)
       OR cdc.linked_hub_id(p_object, p_hub, CASE p_object WHEN 'sf_accounts' THEN 'ns_customers' ELSE 'sf_accounts' END) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('cdc.onboard_settling', 'on', true);
    IF p_object = 'sf_accounts' THEN
        made := cdc.sf_account_to_ns(p_hub);
        FOR r IN SELECT o.hub_id FROM public.sf_opportunities o
                  WHERE o.account_hub_id = p_hub AND NOT o.isdeleted
                    AND cdc.linked_hub_id('sf_opportunities', o.hub_id, 'ns_opportunities') IS NULL LOOP
            PERFORM cdc.sf_opportunity_to_ns(r.hub_id);
        END LOOP;
    ELSE
        made := cdc.ns_customer_to_sf(p_hub);
        FOR r IN SELECT o.hub_id FROM public.ns_opportunities o
                  WHERE o.entity_hub_id = p_hub
                    AND cdc.linked_hub_id('ns_opportunities', o.hub_id, 'sf_opportunities') IS NULL LOOP
            PERFORM cdc.ns_opportunity_to_sf(r.hub_id);
        END LOOP;
    END IF;
    PERFORM set_config('cdc.onboard_settling', '', true);
    RETURN made;
END
$$;

-- The deals of a newly linked pair that matched nothing on the other side are created there.
CREATE OR REPLACE FUNCTION cdc.onboard_create_children(p_sf uuid, p_ns uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    PERFORM set_config('cdc.onboard_settling', 'on', true);
    FOR r IN SELECT o.hub_id FROM public.sf_opportunities o
              WHERE o.account_hub_id = p_sf AND NOT o.isdeleted
                AND cdc.linked_hub_id('sf_opportunities', o.hub_id, 'ns_opportunities') IS NULL LOOP
        PERFORM cdc.sf_opportunity_to_ns(r.hub_id);
    END LOOP;
    FOR r IN SELECT o.hub_id FROM public.ns_opportunities o
              WHERE o.entity_hub_id = p_ns
                AND cdc.linked_hub_id('ns_opportunities', o.hub_id, 'sf_opportunities') IS NULL LOOP
        PERFORM cdc.ns_opportunity_to_sf(r.hub_id);
    END LOOP;
    PERFORM set_config('cdc.onboard_settling', '', true);
END
$$;

CREATE OR REPLACE FUNCTION cdc.onboard_require_hub_session(p_what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cdc.inbound_connector() IS NOT NULL THEN
        RAISE EXCEPTION '%: this session writes as connector % (a replication origin is set up); run it in a session without one, so its writes go out to both systems', p_what, cdc.inbound_connector();
    END IF;
END
$$;

-- Records a review left free (rejected, or a candidate the accepted one no longer claims) get
-- their counterpart now, unless onboarding is still running (cdc.onboard_settle does it then).
CREATE OR REPLACE FUNCTION cdc.onboard_release(p_records jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF cdc.onboarding_active() THEN
        RETURN;
    END IF;
    FOR r IN SELECT DISTINCT e ->> 'object' AS object, (e ->> 'hub_id')::uuid AS hub_id
               FROM jsonb_array_elements(p_records) e LOOP
        PERFORM cdc.onboard_create_counterpart(r.object, r.hub_id);
    END LOOP;
END
$$;

-- Decides a review: links the record with its only candidate, or with p_with (a candidate's
-- hub_id) in a tie. The review's other candidates, and other open reviews of the two records, are
-- closed ('rejected'); records left free are created as new. Returns the link id. Calling it again
-- with the same choice returns the same link.
CREATE OR REPLACE FUNCTION cdc.match_accept(p_id bigint, p_with uuid DEFAULT NULL, p_by text DEFAULT 'cli')
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    r       cdc.match_candidates;
    chosen  cdc.match_candidates;
    n       int;
    link    uuid;
    freed   jsonb;
    sf_hub  uuid;
    ns_hub  uuid;
BEGIN
    PERFORM cdc.onboard_require_hub_session('cdc.match_accept');
    SELECT * INTO r FROM cdc.match_candidates WHERE id = p_id;
    IF NOT FOUND OR r.object_b IS NULL THEN
        RAISE EXCEPTION 'no match review with id % (see cdcsync matches list)', p_id USING ERRCODE = 'P0002';
    END IF;
    IF r.status <> 'review' THEN
        SELECT * INTO chosen FROM cdc.match_candidates m
         WHERE m.object_a = r.object_a AND m.hub_a = r.hub_a AND m.status = 'accepted'
           AND (p_with IS NULL OR m.hub_b = p_with)
         ORDER BY m.id DESC LIMIT 1;
        IF FOUND AND cdc.link_id_of(chosen.object_a, chosen.hub_a) = chosen.link_id THEN
            RETURN chosen.link_id;
        END IF;
        RAISE EXCEPTION 'match review % is already decided (%)', p_id, r.status USING ERRCODE = 'P0003';
    END IF;

    PERFORM 1 FROM cdc.match_candidates m
     WHERE m.object_a = r.object_a AND m.hub_a = r.hub_a AND m.status = 'review' FOR UPDATE;
    SELECT count(*) INTO n FROM cdc.match_candidates m
     WHERE m.object_a = r.object_a AND m.hub_a = r.hub_a AND m.status = 'review';
    IF p_with IS NULL THEN
        IF n > 1 THEN
            RAISE EXCEPTION 'match review % has % candidates; pick one with --with <hub_id> (see cdcsync matches show %)', p_id, n, p_id
                USING ERRCODE = '22023';
        END IF;
        SELECT * INTO chosen FROM cdc.match_candidates m
         WHERE m.object_a = r.object_a AND m.hub_a = r.hub_a AND m.status = 'review';
    ELSE
        SELECT * INTO chosen FROM cdc.match_candidates m
         WHERE m.object_a = r.object_a AND m.hub_a = r.hub_a AND m.status = 'review' AND m.hub_b = p_with;
        IF NOT FOUND THEN
            RAISE EXCEPTION '% is not a candidate of match review % (see cdcsync matches show %)', p_with, p_id, p_id
                USING ERRCODE = '22023';
        END IF;
    END IF;

    link := cdc.link(chosen.object_a, chosen.hub_a, chosen.object_b, chosen.hub_b);
    UPDATE cdc.match_candidates SET status = 'accepted', link_id = link, decided_by = p_by, decided_at = now()
     WHERE id = chosen.id;
    -- The group's other candidates, and other reviews of either record, are closed; their
    -- records are free again.
    WITH closed AS (
        UPDATE cdc.match_candidates m
           SET status = 'rejected', decided_by = 'accepted elsewhere', decided_at = now()
         WHERE m.status = 'review'
           AND ((m.object_a = chosen.object_a AND m.hub_a = chosen.hub_a)
                OR (m.object_a = chosen.object_b AND m.hub_a = chosen.hub_b)
                OR (m.object_b = chosen.object_b AND m.hub_b = chosen.hub_b)
                OR (m.object_b = chosen.object_a AND m.hub_b = chosen.hub_a))
        RETURNING m.object_a, m.hub_a, m.object_b, m.hub_b)
    SELECT coalesce(jsonb_agg(x), '[]') INTO freed
      FROM (SELECT c.object_a AS object, c.hub_a AS hub_id FROM closed c
            UNION SELECT c.object_b, c.hub_b FROM closed c) x
     WHERE NOT (x.object = chosen.object_a AND x.hub_id = chosen.hub_a)
       AND NOT (x.object = chosen.object_b AND x.hub_id = chosen.hub_b);

    sf_hub := CASE WHEN chosen.object_a = 'sf_accounts' THEN chosen.hub_a ELSE chosen.hub_b END;
    ns_hub := CASE WHEN chosen.object_a = 'sf_accounts' THEN chosen.hub_b ELSE chosen.hub_a END;
    PERFORM cdc.onboard_audit('sf_accounts', sf_hub,
        jsonb_build_object('matched_with', jsonb_build_object('before', NULL, 'after', ns_hub),
                           'decided_by', jsonb_build_object('before', NULL, 'after', p_by)));
    PERFORM cdc.onboard_match_opportunities(sf_hub);
    IF NOT cdc.onboarding_active() THEN
        PERFORM cdc.onboard_settle_pairs();
        PERFORM cdc.onboard_create_children(sf_hub, ns_hub);
    END IF;
    PERFORM cdc.onboard_release(freed);
    RETURN link;
END
$$;

-- Decides a review: the record is not the same as any candidate and is created as new on the
-- other side (now, or by cdc.onboard_settle while onboarding runs). Candidates no other review
-- holds are free again too. Calling it again does nothing.
CREATE OR REPLACE FUNCTION cdc.match_reject(p_id bigint, p_by text DEFAULT 'cli') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r     cdc.match_candidates;
    freed jsonb;
BEGIN
    PERFORM cdc.onboard_require_hub_session('cdc.match_reject');
    SELECT * INTO r FROM cdc.match_candidates WHERE id = p_id;
    IF NOT FOUND OR r.object_b IS NULL THEN
        RAISE EXCEPTION 'no match review with id % (see cdcsync matches list)', p_id USING ERRCODE = 'P0002';
    END IF;
    IF r.status = 'rejected' THEN
        RETURN;
    ELSIF r.status <> 'review' THEN
        RAISE EXCEPTION 'match review % is already decided (%)', p_id, r.status USING ERRCODE = 'P0003';
    END IF;
    WITH closed AS (
        UPDATE cdc.match_candidates m
           SET status = 'rejected', decided_by = p_by, decided_at = now()
         WHERE m.object_a = r.object_a AND m.hub_a = r.hub_a AND m.status = 'review'
        RETURNING m.object_a, m.hub_a, m.object_b, m.hub_b)
    SELECT coalesce(jsonb_agg(x), '[]') INTO freed
      FROM (SELECT c.object_a AS object, c.hub_a AS hub_id FROM closed c
            UNION SELECT c.object_b, c.hub_b FROM closed c) x;
    PERFORM cdc.onboard_audit(r.object_a, r.hub_a,
        jsonb_build_object('match_rejected', jsonb_build_object('before', NULL, 'after', p_by)));
    PERFORM cdc.onboard_release(freed);
END
$$;

-- Undoes a wrong link between an account and a customer: the link goes, and the two records
-- stand alone in a new review (held: neither is created again on the other side) until
-- match_accept or match_reject. Values already merged stay as they are. Calling it again does nothing.
CREATE OR REPLACE FUNCTION cdc.match_unlink(p_link uuid, p_by text DEFAULT 'cli') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    sf_hub uuid;
    ns_hub uuid;
    prev   cdc.match_candidates;
BEGIN
    PERFORM cdc.onboard_require_hub_session('cdc.match_unlink');
    SELECT l.hub_id INTO sf_hub FROM cdc.identity_links l WHERE l.link_id = p_link AND l.object = 'sf_accounts';
    SELECT l.hub_id INTO ns_hub FROM cdc.identity_links l WHERE l.link_id = p_link AND l.object = 'ns_customers';
    IF sf_hub IS NULL OR ns_hub IS NULL THEN
        IF EXISTS (SELECT 1 FROM cdc.match_candidates m WHERE m.link_id = p_link AND m.status = 'unlinked') THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'no link % between a Salesforce account and a NetSuite customer (see cdcsync matches list, or cdc.identity_links)', p_link
            USING ERRCODE = 'P0002';
    END IF;
    SELECT * INTO prev FROM cdc.match_candidates m
     WHERE m.link_id = p_link AND m.status IN ('linked', 'accepted') ORDER BY m.id DESC LIMIT 1;
    UPDATE cdc.match_candidates m SET status = 'unlinked', decided_by = p_by, decided_at = now()
     WHERE m.link_id = p_link AND m.status IN ('linked', 'accepted');
    IF NOT FOUND THEN
        -- A link made another way (adopted by id, or created by the mapping): recorded as undone.
        INSERT INTO cdc.match_candidates (object_a, hub_a, object_b, hub_b, status, link_id, decided_by, decided_at)
        VALUES ('sf_accounts', sf_hub, 'ns_customers', ns_hub, 'unlinked', p_link, p_by, now());
    END IF;
    DELETE FROM cdc.identity_links l
     WHERE l.link_id = p_link AND l.object IN ('sf_accounts', 'ns_customers');
    INSERT INTO cdc.match_candidates (object_a, hub_a, object_b, hub_b, score, keys, status)
    VALUES ('sf_accounts', sf_hub, 'ns_customers', ns_hub, prev.score, coalesce(prev.keys, '{}'), 'review');
    -- Salesforce no longer points at the customer, (held now), or the mappings would adopt it again by id.
    UPDATE public.sf_accounts a SET netsuite_id__c = NULL
     WHERE a.hub_id = sf_hub
       AND a.netsuite_id__c = (SELECT n.internalid FROM public.ns_customers n WHERE n.hub_id = ns_hub);
    PERFORM cdc.onboard_audit('sf_accounts', sf_hub,
        jsonb_build_object('matched_with', jsonb_build_object('before', ns_hub, 'after', NULL),
                           'decided_by', jsonb_build_object('before', NULL, 'after', p_by)));
END
$$;

-- =======================================================================================
-- Merging a matched pair
-- =======================================================================================

-- The fields a linked account (with its primary contact) and customer are compared on, each in
-- Salesforce's terms: which Salesforce row and column, the customer's value in that column's
-- form and type, and whether the two already mean the same (through the mapping's
-- normalizations: phone_key, url_key, country_code, ...). Extend it with the mapping.
CREATE OR REPLACE FUNCTION cdc.onboard_account_fields(p_sf uuid, p_ns uuid)
RETURNS TABLE (sf_object text, sf_hub uuid, field text, ns_object text, ns_hub uuid, ns_field text,
               sf_value jsonb, ns_value jsonb, same boolean, sf_stamp timestamptz, ns_stamp timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a  public.sf_accounts;
    c  public.sf_contacts;
    n  public.ns_customers;
    b  record;
    nm text;
    sa timestamptz;
    sc timestamptz;
    sn timestamptz;
BEGIN
    SELECT * INTO a FROM public.sf_accounts x WHERE x.hub_id = p_sf;
    SELECT * INTO n FROM public.ns_customers x WHERE x.hub_id = p_ns;
    IF a.hub_id IS NULL OR n.hub_id IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO c FROM public.sf_contacts x WHERE x.hub_id = cdc.primary_contact_hub_id(a.hub_id);
    b := cdc.ns_billing_address(n.addressbook);
    nm := CASE WHEN n.isperson THEN cdc.sf_account_name(n) ELSE cdc.blank_to_null(n.companyname) END;
    sa := coalesce(a.cdc_source_modified_at, a.systemmodstamp, a.lastmodifieddate);
    sc := coalesce(c.cdc_source_modified_at, c.systemmodstamp, c.lastmodifieddate, sa);
    sn := coalesce(n.cdc_source_modified_at, n.lastmodifieddate);
    RETURN QUERY
    SELECT v.* FROM (VALUES
        ('sf_accounts', a.hub_id, 'name', 'ns_customers', n.hub_id, 'companyname',
         to_jsonb(cdc.blank_to_null(a.name)), to_jsonb(nm),
         CASE WHEN n.isperson THEN a.name IS NOT DISTINCT FROM nm
              ELSE cdc.ns_company_name(a.name) IS NOT DISTINCT FROM cdc.ns_company_name(nm) END, sa, sn),
        ('sf_accounts', a.hub_id, 'phone', 'ns_customers', n.hub_id, 'phone',
         to_jsonb(coalesce(cdc.blank_to_null(a.phone), cdc.blank_to_null(c.phone))), to_jsonb(cdc.blank_to_null(n.phone)),
         coalesce(cdc.phone_key(a.phone), cdc.phone_key(c.phone)) IS NOT DISTINCT FROM cdc.phone_key(n.phone), sa, sn),
        ('sf_accounts', a.hub_id, 'website', 'ns_customers', n.hub_id, 'url',
         to_jsonb(cdc.blank_to_null(a.website)), to_jsonb(cdc.blank_to_null(n.url)),
         cdc.url_key(a.website) IS NOT DISTINCT FROM cdc.url_key(n.url), sa, sn),
        ('sf_accounts', a.hub_id, 'billingstreet', 'ns_customers', n.hub_id, 'addressbook',
         to_jsonb(cdc.blank_to_null(a.billingstreet)), to_jsonb(cdc.street_from_lines(b.addr1, b.addr2, b.addr3)),
         cdc.street_lines(a.billingstreet) IS NOT DISTINCT FROM ARRAY[b.addr1, b.addr2, b.addr3], sa, sn),
        ('sf_accounts', a.hub_id, 'billingcity', 'ns_customers', n.hub_id, 'addressbook',
         to_jsonb(cdc.blank_to_null(a.billingcity)), to_jsonb(b.city),
         cdc.blank_to_null(a.billingcity) IS NOT DISTINCT FROM b.city, sa, sn),
        ('sf_accounts', a.hub_id, 'billingstate', 'ns_customers', n.hub_id, 'addressbook',
         to_jsonb(cdc.blank_to_null(a.billingstate)), to_jsonb(b.state),
         cdc.blank_to_null(a.billingstate) IS NOT DISTINCT FROM b.state, sa, sn),
        ('sf_accounts', a.hub_id, 'billingpostalcode', 'ns_customers', n.hub_id, 'addressbook',
         to_jsonb(cdc.blank_to_null(a.billingpostalcode)), to_jsonb(b.zip),
         cdc.blank_to_null(a.billingpostalcode) IS NOT DISTINCT FROM b.zip, sa, sn),
        ('sf_accounts', a.hub_id, 'billingcountry', 'ns_customers', n.hub_id, 'addressbook',
         to_jsonb(cdc.blank_to_null(a.billingcountry)), to_jsonb(cdc.country_name(b.country)),
         cdc.country_code(a.billingcountry) IS NOT DISTINCT FROM cdc.country_code(b.country), sa, sn),
        ('sf_contacts', c.hub_id, 'email', 'ns_customers', n.hub_id, 'email',
         to_jsonb(cdc.blank_to_null(c.email)), to_jsonb(cdc.blank_to_null(n.email)),
         lower(cdc.blank_to_null(c.email)) IS NOT DISTINCT FROM lower(cdc.blank_to_null(n.email)), sc, sn)
    ) v(sf_object, sf_hub, field, ns_object, ns_hub, ns_field, sf_value, ns_value, same, sf_stamp, ns_stamp);
    IF n.isperson THEN
        RETURN QUERY
        SELECT v.* FROM (VALUES
            ('sf_contacts', c.hub_id, 'firstname', 'ns_customers', n.hub_id, 'firstname',
             to_jsonb(cdc.blank_to_null(c.firstname)), to_jsonb(cdc.blank_to_null(n.firstname)),
             cdc.blank_to_null(c.firstname) IS NOT DISTINCT FROM cdc.blank_to_null(n.firstname), sc, sn),
            ('sf_contacts', c.hub_id, 'lastname', 'ns_customers', n.hub_id, 'lastname',
             to_jsonb(cdc.blank_to_null(c.lastname)), to_jsonb(cdc.blank_to_null(n.lastname)),
             cdc.blank_to_null(c.lastname) IS NOT DISTINCT FROM cdc.blank_to_null(n.lastname), sc, sn)
        ) v(sf_object, sf_hub, field, ns_object, ns_hub, ns_field, sf_value, ns_value, same, sf_stamp, ns_stamp);
    END IF;
END
$$;

-- The same for a linked pair of opportunities.
CREATE OR REPLACE FUNCTION cdc.onboard_opportunity_fields(p_sf uuid, p_ns uuid)
RETURNS TABLE (sf_object text, sf_hub uuid, field text, ns_object text, ns_hub uuid, ns_field text,
               sf_value jsonb, ns_value jsonb, same boolean, sf_stamp timestamptz, ns_stamp timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o  public.sf_opportunities;
    p  public.ns_opportunities;
    so timestamptz;
    sp timestamptz;
BEGIN
    SELECT * INTO o FROM public.sf_opportunities x WHERE x.hub_id = p_sf;
    SELECT * INTO p FROM public.ns_opportunities x WHERE x.hub_id = p_ns;
    IF o.hub_id IS NULL OR p.hub_id IS NULL THEN
        RETURN;
    END IF;
    so := coalesce(o.cdc_source_modified_at, o.systemmodstamp, o.lastmodifieddate);
    sp := coalesce(p.cdc_source_modified_at, p.lastmodifieddate);
    RETURN QUERY
    SELECT v.* FROM (VALUES
        ('sf_opportunities', o.hub_id, 'name', 'ns_opportunities', p.hub_id, 'title',
         to_jsonb(o.name), to_jsonb(cdc.blank_to_null(p.title)), left(o.name, 100) IS NOT DISTINCT FROM p.title, so, sp),
        ('sf_opportunities', o.hub_id, 'amount', 'ns_opportunities', p.hub_id, 'projectedtotal',
         to_jsonb(o.amount), to_jsonb(p.projectedtotal), o.amount IS NOT DISTINCT FROM p.projectedtotal, so, sp),
        ('sf_opportunities', o.hub_id, 'closedate', 'ns_opportunities', p.hub_id, 'expectedclosedate',
         to_jsonb(o.closedate), to_jsonb(p.expectedclosedate), o.closedate IS NOT DISTINCT FROM p.expectedclosedate, so, sp),
        ('sf_opportunities', o.hub_id, 'probability', 'ns_opportunities', p.hub_id, 'probability',
         to_jsonb(o.probability), to_jsonb(p.probability), o.probability IS NOT DISTINCT FROM p.probability, so, sp),
        ('sf_opportunities', o.hub_id, 'description', 'ns_opportunities', p.hub_id, 'memo',
         to_jsonb(cdc.blank_to_null(o.description)), to_jsonb(cdc.blank_to_null(p.memo)),
         cdc.blank_to_null(o.description) IS NOT DISTINCT FROM cdc.blank_to_null(p.memo), so, sp)
    ) v(sf_object, sf_hub, field, ns_object, ns_hub, ns_field, sf_value, ns_value, same, sf_stamp, ns_stamp);
END
$$;

-- How one differing field of a matched pair is settled (the per-field rule):
--   blank on one side      filled from the other ('fill')
--   a person's account name  NetSuite's (the mapping names a person's account after the person)
--   otherwise              the table's conflict policy: the Salesforce field's own row in
--                          cdc.conflict_policies, else the NetSuite field's own row, else the
--                          Salesforce table's '*' row (cdc.conflict_policy_of):
--       source_priority    priority_system's value
--       last_write_wins    the value with the later system stamp; Salesforce's unknown stamp
--                          loses, NetSuite wins a tie
--       custom             custom_function(NULL, salesforce value, netsuite value, stamps)
--       manual             both keep their values; an open conflict waits for `cdcsync conflicts resolve`
--       ignore             not compared
-- winner: 'salesforce', 'netsuite', 'custom' (decided holds the value), or NULL (kept apart).
CREATE OR REPLACE FUNCTION cdc.onboard_decide(p_sf_object text, p_field text, p_ns_object text, p_ns_field text,
    p_sf_value jsonb, p_ns_value jsonb, p_sf_stamp timestamptz, p_ns_stamp timestamptz, p_person_name boolean,
    OUT policy text, OUT winner text, OUT decided jsonb, OUT settlement text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    pol cdc.conflict_policies;
BEGIN
    IF p_sf_value IS NULL THEN
        policy := 'fill'; winner := 'netsuite'; decided := p_ns_value;
        settlement := 'blank in salesforce: filled from netsuite';
        RETURN;
    ELSIF p_ns_value IS NULL THEN
        policy := 'fill'; winner := 'salesforce'; decided := p_sf_value;
        settlement := 'blank in netsuite: filled from salesforce';
        RETURN;
    ELSIF p_person_name THEN
        policy := 'source_priority'; winner := 'netsuite'; decided := p_ns_value;
        settlement := 'took netsuite (a person''s account is named after the person)';
        RETURN;
    END IF;

    SELECT * INTO pol FROM cdc.conflict_policies x WHERE x.object = p_sf_object AND x.field = p_field;
    IF NOT FOUND THEN
        SELECT * INTO pol FROM cdc.conflict_policies x WHERE x.object = p_ns_object AND x.field = p_ns_field;
        IF NOT FOUND THEN
            pol := cdc.conflict_policy_of(p_sf_object, p_field);
        END IF;
    END IF;
    policy := pol.policy;
    CASE pol.policy
        WHEN 'source_priority' THEN
            winner := CASE WHEN pol.priority_system = 'netsuite' THEN 'netsuite' ELSE 'salesforce' END;
        WHEN 'manual' THEN
            winner := NULL;
            settlement := 'held for review (manual): both keep their values, conflict open';
        WHEN 'ignore' THEN
            winner := NULL;
            settlement := 'not compared (ignore)';
        WHEN 'custom' THEN
            EXECUTE format('SELECT %s($1, $2, $3, $4, $5)', pol.custom_function)
               INTO decided USING NULL::jsonb, p_sf_value, p_ns_value, p_sf_stamp, p_ns_stamp;
            winner := CASE WHEN decided IS NOT DISTINCT FROM p_ns_value THEN 'netsuite'
                           WHEN decided IS NOT DISTINCT FROM p_sf_value THEN 'salesforce'
                           ELSE 'custom' END;
        ELSE
            winner := CASE WHEN p_sf_stamp IS NULL OR (p_ns_stamp IS NOT NULL AND p_ns_stamp >= p_sf_stamp)
                           THEN 'netsuite' ELSE 'salesforce' END;
    END CASE;
    IF winner = 'netsuite' THEN
        decided := p_ns_value;
        settlement := policy || ': took netsuite';
    ELSIF winner = 'salesforce' THEN
        decided := p_sf_value;
        settlement := policy || ': kept salesforce';
    ELSIF winner = 'custom' THEN
        settlement := 'custom: value ' || coalesce(decided #>> '{}', 'NULL');
    END IF;
END
$$;

-- The differing fields of one linked pair (account + customer, or two opportunities), with how
-- each will be settled.
CREATE OR REPLACE FUNCTION cdc.onboard_pair_differences(p_sf uuid, p_ns uuid, p_opportunity boolean)
RETURNS TABLE (sf_object text, sf_hub uuid, field text, ns_object text, ns_hub uuid, ns_field text,
               sf_value jsonb, ns_value jsonb, sf_stamp timestamptz, ns_stamp timestamptz,
               policy text, winner text, decided jsonb, settlement text)
LANGUAGE sql STABLE AS $$
    SELECT f.sf_object, f.sf_hub, f.field, f.ns_object, f.ns_hub, f.ns_field, f.sf_value, f.ns_value,
           f.sf_stamp, f.ns_stamp, d.policy, d.winner, d.decided, d.settlement
      FROM (SELECT * FROM cdc.onboard_account_fields(p_sf, p_ns) WHERE NOT p_opportunity
            UNION ALL
            SELECT * FROM cdc.onboard_opportunity_fields(p_sf, p_ns) WHERE p_opportunity) f
     CROSS JOIN LATERAL cdc.onboard_decide(f.sf_object, f.field, f.ns_object, f.ns_field, f.sf_value, f.ns_value,
                                           f.sf_stamp, f.ns_stamp,
                                           f.field = 'name' AND f.sf_object = 'sf_accounts'
                                           AND coalesce((SELECT n.isperson FROM public.ns_customers n WHERE n.hub_id = p_ns), false)) d
     WHERE NOT f.same AND (f.sf_value IS NOT NULL OR f.ns_value IS NOT NULL)
$$;

-- The same for every matched pair not merged yet.
CREATE OR REPLACE FUNCTION cdc.onboard_differences()
RETURNS TABLE (sf_object text, sf_hub uuid, field text, ns_object text, ns_hub uuid, ns_field text,
               sf_value jsonb, ns_value jsonb, sf_stamp timestamptz, ns_stamp timestamptz,
               policy text, winner text, decided jsonb, settlement text)
LANGUAGE sql STABLE AS $$
    SELECT d.*
      FROM cdc.match_candidates m
     CROSS JOIN LATERAL cdc.onboard_pair_differences(
                CASE WHEN m.object_a LIKE 'sf\_%' THEN m.hub_a ELSE m.hub_b END,
                CASE WHEN m.object_a LIKE 'sf\_%' THEN m.hub_b ELSE m.hub_a END,
                m.object_a IN ('sf_opportunities', 'ns_opportunities')) d
     WHERE m.status IN ('linked', 'accepted') AND m.settled_at IS NULL AND m.hub_a::text LIKE cdc.onboard_scope()
       AND cdc.link_id_of(m.object_a, m.hub_a) IS NOT DISTINCT FROM m.link_id
$$;

CREATE OR REPLACE FUNCTION cdc.onboard_row(p_object text, p_hub uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    IF p_hub IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT to_jsonb(t) FROM public.%I t WHERE t.hub_id = $1', p_object) INTO r USING p_hub;
    RETURN r;
END
$$;

-- The audit row of one staging row the settle wrote: each changed field, before and after.
CREATE OR REPLACE FUNCTION cdc.onboard_audit_row(p_object text, p_hub uuid, p_before jsonb, p_after jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb;
BEGIN
    IF p_after IS NULL THEN
        RETURN false;
    END IF;
    SELECT coalesce(jsonb_object_agg(k.key, jsonb_build_object('before', p_before -> k.key, 'after', k.value)), '{}')
      INTO changes
      FROM (SELECT e.key, e.value FROM jsonb_each(p_after) e
             WHERE (p_before -> e.key) IS DISTINCT FROM e.value OFFSET 0) k
     WHERE cdc.sync_field_tracked(p_object, k.key);
    IF changes = '{}'::jsonb THEN
        RETURN false;
    END IF;
    PERFORM cdc.onboard_audit(p_object, p_hub, changes);
    RETURN true;
END
$$;

-- Writes {column: value} into one staging row (values cast through the row type), only the
-- columns whose value differs.
CREATE OR REPLACE FUNCTION cdc.onboard_write(p_object text, p_hub uuid, p_values jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    vals text;
BEGIN
    SELECT string_agg(format('%I', k), ', '), string_agg(format('c.%I', k), ', ')
      INTO cols, vals
      FROM jsonb_object_keys(p_values) k;
    IF cols IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('UPDATE public.%I t SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::public.%I, $1) c)
                     WHERE t.hub_id = $2 AND ROW(%s) IS DISTINCT FROM (SELECT ROW(%s) FROM jsonb_populate_record(NULL::public.%I, $1) c)',
                   p_object, cols, vals, p_object,
                   (SELECT string_agg(format('t.%I', k), ', ') FROM jsonb_object_keys(p_values) k), vals, p_object)
      USING p_values, p_hub;
END
$$;

-- Merges one linked pair (account + customer, or two opportunities) by the per-field rule:
-- the Salesforce rows get the fields Salesforce loses or lacks, then the mapping carries the
-- Salesforce side (now the merged values) to NetSuite, which writes only the fields NetSuite
-- loses or lacks; fields kept apart (manual) are left alone by the mapping while their conflict
-- is open. Every decision between two values is a row of cdc.conflicts ('onboarding'), every
-- write a row of cdc.audit_log (operation 'onboarding'). The triggers stand aside, so each
-- changed field is written once, as the hub's own change (it goes out to the system).
CREATE OR REPLACE FUNCTION cdc.onboard_settle_pair(p_id bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m        cdc.match_candidates;
    sf       uuid;
    ns       uuid;
    is_opp   boolean;
    d        record;
    acct     jsonb := '{}';
    contact  jsonb := '{}';
    c_hub    uuid;
    before   jsonb := '{}';
    conflicts integer := 0;
    n        public.ns_customers;
BEGIN
    SELECT * INTO m FROM cdc.match_candidates WHERE id = p_id FOR UPDATE;
    IF m.settled_at IS NOT NULL OR m.status NOT IN ('linked', 'accepted') THEN
        RETURN 0;
    END IF;
    is_opp := m.object_a IN ('sf_opportunities', 'ns_opportunities');
    sf := CASE WHEN m.object_a LIKE 'sf\_%' THEN m.hub_a ELSE m.hub_b END;
    ns := CASE WHEN m.object_a LIKE 'sf\_%' THEN m.hub_b ELSE m.hub_a END;
    UPDATE cdc.match_candidates SET settled_at = now() WHERE id = p_id;
    IF cdc.link_id_of(m.object_a, m.hub_a) IS DISTINCT FROM m.link_id THEN
        RETURN 0;                  -- unlinked since, or a record is gone
    END IF;
    PERFORM set_config('cdc.onboard_settling', 'on', true);

    IF is_opp THEN
        before := jsonb_build_object('sf_opportunities', cdc.onboard_row('sf_opportunities', sf),
                                     'ns_opportunities', cdc.onboard_row('ns_opportunities', ns));
    ELSE
        c_hub := cdc.primary_contact_hub_id(sf);
        before := jsonb_build_object('sf_accounts', cdc.onboard_row('sf_accounts', sf),
                                     'sf_contacts', cdc.onboard_row('sf_contacts', c_hub),
                                     'ns_customers', cdc.onboard_row('ns_customers', ns));
    END IF;

    FOR d IN SELECT * FROM cdc.onboard_pair_differences(sf, ns, is_opp) LOOP
        -- Salesforce's side takes what it loses or lacks.
        IF d.winner IN ('netsuite', 'custom') THEN
            IF d.sf_object = 'sf_contacts' THEN
                contact := contact || jsonb_build_object(d.field, d.decided);
            ELSE
                acct := acct || jsonb_build_object(d.field, d.decided);
            END IF;
        END IF;
        IF d.policy NOT IN ('fill', 'ignore') THEN
            INSERT INTO cdc.conflicts (connector, object, record_key, field, policy, base_value, hub_value,
                                       incoming_value, decided_value, hub_system, incoming_system,
                                       hub_modified_at, incoming_modified_at, hub_values, incoming_values,
                                       decision, status, resolved_at, resolved_by)
            VALUES ('onboarding', d.sf_object, coalesce(d.sf_hub, sf)::text, d.field, d.policy, NULL, d.sf_value,
                    d.ns_value, CASE WHEN d.winner IS NULL THEN NULL ELSE d.decided END, 'salesforce', 'netsuite',
                    d.sf_stamp, d.ns_stamp, jsonb_build_object(d.field, d.sf_value), jsonb_build_object(d.field, d.ns_value),
                    CASE d.winner WHEN 'netsuite' THEN 'took netsuite' WHEN 'salesforce' THEN 'kept salesforce'
                                  WHEN 'custom' THEN 'custom value' ELSE 'held for review' END,
                    CASE WHEN d.winner IS NULL THEN 'open' ELSE 'resolved' END,
                    CASE WHEN d.winner IS NULL THEN NULL ELSE now() END,
                    CASE WHEN d.winner IS NULL THEN NULL ELSE 'onboarding:policy:' || d.policy END)
            ON CONFLICT (object, record_key, field) WHERE status = 'open' DO NOTHING;
            conflicts := conflicts + 1;
        END IF;
    END LOOP;

    IF is_opp THEN
        -- Salesforce learns the NetSuite id in the same write (as cdc.ns_opportunity_to_sf sets it).
        IF (before -> 'ns_opportunities' ->> 'internalid') IS NOT NULL
           AND (before -> 'sf_opportunities' ->> 'netsuite_id__c') IS DISTINCT FROM (before -> 'ns_opportunities' ->> 'internalid') THEN
            acct := acct || jsonb_build_object('netsuite_id__c', before -> 'ns_opportunities' ->> 'internalid');
        END IF;
        IF acct <> '{}' THEN
            PERFORM cdc.onboard_write('sf_opportunities', sf, acct);
        END IF;
        -- The Salesforce side now holds the merge; the mapping gives NetSuite what it lacks or lost.
        PERFORM cdc.sf_opportunity_to_ns(sf);
        PERFORM cdc.onboard_audit_row('sf_opportunities', sf, before -> 'sf_opportunities', cdc.onboard_row('sf_opportunities', sf));
        PERFORM cdc.onboard_audit_row('ns_opportunities', ns, before -> 'ns_opportunities', cdc.onboard_row('ns_opportunities', ns));
    ELSE
        -- Salesforce learns the NetSuite id in the same write (the mapping would add it after).
        SELECT * INTO n FROM public.ns_customers WHERE hub_id = ns;
        IF n.internalid IS NOT NULL AND (before -> 'sf_accounts' ->> 'netsuite_id__c') IS DISTINCT FROM n.internalid THEN
            acct := acct || jsonb_build_object('netsuite_id__c', n.internalid);
        END IF;
        IF contact <> '{}' THEN
            IF c_hub IS NULL THEN
                -- No contact to hold the customer's email or name yet: one as the mapping makes it.
                INSERT INTO public.sf_contacts (account_hub_id, firstname, lastname, email)
                VALUES (sf, cdc.blank_to_null(n.firstname), cdc.sf_contact_lastname(n), contact ->> 'email')
                RETURNING hub_id INTO c_hub;
            ELSE
                PERFORM cdc.onboard_write('sf_contacts', c_hub, contact);
            END IF;
        END IF;
        IF acct <> '{}' THEN
            PERFORM cdc.onboard_write('sf_accounts', sf, acct);
        END IF;
        -- The Salesforce side now holds the merge (contact, NetSuite id included); the mapping gives
        -- NetSuite what it lacks or lost. The reverse mapping would find nothing to change.
        PERFORM cdc.sf_account_to_ns(sf);
        PERFORM cdc.onboard_audit_row('sf_accounts', sf, before -> 'sf_accounts', cdc.onboard_row('sf_accounts', sf));
        PERFORM cdc.onboard_audit_row('sf_contacts', c_hub, before -> 'sf_contacts', cdc.onboard_row('sf_contacts', c_hub));
        PERFORM cdc.onboard_audit_row('ns_customers', ns, before -> 'ns_customers', cdc.onboard_row('ns_customers', ns));
    END IF;
    PERFORM set_config('cdc.onboard_settling', '', true);
    RETURN conflicts;
END
$$;

-- Merges every linked pair not merged yet; returns (pairs, conflicts recorded).
CREATE OR REPLACE FUNCTION cdc.onboard_settle_pairs(OUT pairs bigint, OUT conflicts bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    pairs := 0;
    conflicts := 0;
    FOR r IN SELECT m.id FROM cdc.match_candidates m
              WHERE m.status IN ('linked', 'accepted') AND m.settled_at IS NULL
                AND m.hub_a::text LIKE cdc.onboard_scope()
              ORDER BY CASE WHEN m.object_a IN ('sf_accounts', 'ns_customers') THEN 0 ELSE 1 END, m.id LOOP
        CONTINUE WHEN (SELECT x.settled_at FROM cdc.match_candidates x WHERE x.id = r.id) IS NOT NULL;
        conflicts := conflicts + cdc.onboard_settle_pair(r.id);
        pairs := pairs + 1;
    END LOOP;
END
$$;

-- Settles onboarding: merges every matched pair, creates on the other side every record that is
-- neither linked nor held in a review (with its opportunities), and marks every 'loaded'
-- connector 'settled'. Refuses while a connector is still loading (its records are not all in
-- the hub, creating now could duplicate them). Run it in a session without a replication origin:
-- its writes are the hub's own and go out to both systems. A second call finds nothing to do.
CREATE OR REPLACE FUNCTION cdc.onboard_settle()
RETURNS TABLE (outcome text, object text, count bigint)
LANGUAGE plpgsql AS $$
DECLARE
    merged      record;
    r           record;
    made_ns     bigint := 0;
    made_sf     bigint := 0;
    made_ns_opp bigint := 0;
    made_sf_opp bigint := 0;
    settled     bigint;
    held        bigint;
BEGIN
    PERFORM cdc.onboard_require_hub_session('cdc.onboard_settle');
    IF EXISTS (SELECT 1 FROM cdc.onboarding WHERE phase = 'loading') THEN
        RAISE EXCEPTION 'cdc.onboard_settle: connector % is still loading; settle after cdc.onboard_loaded',
            (SELECT string_agg(connector, ', ' ORDER BY connector) FROM cdc.onboarding WHERE phase = 'loading');
    END IF;
    -- Nothing may move under the merge (an inbound write of a pair between reading and writing it).
    LOCK TABLE public.sf_accounts, public.sf_contacts, public.ns_customers,
               public.sf_opportunities, public.ns_opportunities IN SHARE ROW EXCLUSIVE MODE;

    PERFORM cdc.onboard_analyze();
    merged := cdc.onboard_settle_pairs();

    PERFORM set_config('cdc.onboard_settling', 'on', true);
    FOR r IN SELECT a.hub_id FROM public.sf_accounts a
              WHERE a.hub_id::text LIKE cdc.onboard_scope() AND NOT a.isdeleted
                AND cdc.linked_hub_id('sf_accounts', a.hub_id, 'ns_customers') IS NULL
                AND NOT cdc.match_held('sf_accounts', a.hub_id)
              ORDER BY a.hub_id LOOP
        IF cdc.sf_account_to_ns(r.hub_id) IS NOT NULL THEN
            made_ns := made_ns + 1;
        END IF;
    END LOOP;
    FOR r IN SELECT n.hub_id FROM public.ns_customers n
              WHERE n.hub_id::text LIKE cdc.onboard_scope() AND NOT n.isinactive
                AND cdc.linked_hub_id('ns_customers', n.hub_id, 'sf_accounts') IS NULL
                AND NOT cdc.match_held('ns_customers', n.hub_id)
              ORDER BY n.hub_id LOOP
        IF cdc.ns_customer_to_sf(r.hub_id) IS NOT NULL THEN
            made_sf := made_sf + 1;
        END IF;
    END LOOP;
    -- Deals of linked parents that matched nothing on the other side.
    FOR r IN SELECT o.hub_id FROM public.sf_opportunities o
              WHERE o.hub_id::text LIKE cdc.onboard_scope() AND NOT o.isdeleted AND o.account_hub_id IS NOT NULL
                AND cdc.linked_hub_id('sf_opportunities', o.hub_id, 'ns_opportunities') IS NULL
                AND cdc.linked_hub_id('sf_accounts', o.account_hub_id, 'ns_customers') IS NOT NULL
              ORDER BY o.hub_id LOOP
        IF cdc.sf_opportunity_to_ns(r.hub_id) IS NOT NULL THEN
            made_ns_opp := made_ns_opp + 1;
        END IF;
    END LOOP;
    FOR r IN SELECT o.hub_id FROM public.ns_opportunities o
              WHERE o.hub_id::text LIKE cdc.onboard_scope() AND o.entity_hub_id IS NOT NULL
                AND cdc.linked_hub_id('ns_opportunities', o.hub_id, 'sf_opportunities') IS NULL
                AND cdc.linked_hub_id('ns_customers', o.entity_hub_id, 'sf_accounts') IS NOT NULL
              ORDER BY o.hub_id LOOP
        IF cdc.ns_opportunity_to_sf(r.hub_id) IS NOT NULL THEN
            made_sf_opp := made_sf_opp + 1;
        END IF;
    END LOOP;
    PERFORM set_config('cdc.onboard_settling', '', true);

    UPDATE cdc.onboarding SET phase = 'settled', settled_at = now() WHERE phase = 'loaded';
    GET DIAGNOSTICS settled = ROW_COUNT;
    SELECT count(DISTINCT (m.object_a, m.hub_a)) INTO held FROM cdc.match_candidates m
     WHERE m.status = 'review' AND m.hub_a::text LIKE cdc.onboard_scope();

    RETURN QUERY
    SELECT x.outcome, x.object, x.count FROM (VALUES
        ('merged', 'pairs', merged.pairs),
        ('conflicts', 'fields', merged.conflicts),
        ('created', 'ns_customers', made_ns),
        ('created', 'sf_accounts', made_sf),
        ('created', 'ns_opportunities', made_ns_opp),
        ('created', 'sf_opportunities', made_sf_opp),
        ('held', 'reviews', held),
        ('settled', 'connectors', settled)) x(outcome, object, count)
     WHERE x.count > 0;
END
$$;

-- After `cdcsync conflicts resolve` of an onboarding conflict (cdc.resolve_conflict calls this):
-- the field is no longer kept apart, so the mapping carries the decision to the other system.
CREATE OR REPLACE FUNCTION cdc.onboard_conflict_resolved(c cdc.conflicts) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    account uuid;
BEGIN
    IF c.object = 'sf_accounts' THEN
        account := c.record_key::uuid;
    ELSIF c.object = 'sf_contacts' THEN
        SELECT x.account_hub_id INTO account FROM public.sf_contacts x WHERE x.hub_id = c.record_key::uuid;
    ELSIF c.object = 'sf_opportunities' THEN
        PERFORM set_config('cdc.onboard_settling', 'on', true);
        PERFORM cdc.sf_opportunity_to_ns(c.record_key::uuid);
        PERFORM set_config('cdc.onboard_settling', '', true);
        RETURN;
    END IF;
    IF account IS NOT NULL AND cdc.linked_hub_id('sf_accounts', account, 'ns_customers') IS NOT NULL THEN
        PERFORM set_config('cdc.onboard_settling', 'on', true);
        PERFORM cdc.sf_account_to_ns(account);
        PERFORM set_config('cdc.onboard_settling', '', true);
    END IF;
END
$$;

-- =======================================================================================
-- The report
-- =======================================================================================

-- What onboarding found and what settling will do, one row per line:
--   matched               a linked pair not merged yet (score and keys of the match)
--   review                one row per candidate of an open review (hub_id: the held record)
--   create_in_salesforce  a NetSuite record (customer, or opportunity of a linked customer) to create
--   create_in_netsuite    a Salesforce record to create
--   difference            a field of a matched pair the two sides disagree on, and its settlement
CREATE OR REPLACE FUNCTION cdc.onboard_report()
RETURNS TABLE (section text, object text, hub_id uuid, other_object text, other_hub_id uuid, label text,
               field text, value text, other_value text, settlement text, score numeric)
LANGUAGE sql STABLE AS $$
    SELECT 'matched', m.object_a, m.hub_a, m.object_b, m.hub_b, cdc.match_label(m.object_a, m.hub_a),
           NULL, NULL, NULL, (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(m.keys) k), m.score
      FROM cdc.match_candidates m
     WHERE m.status IN ('linked', 'accepted') AND m.settled_at IS NULL AND m.hub_a::text LIKE cdc.onboard_scope()
    UNION ALL
    SELECT 'review', m.object_a, m.hub_a, m.object_b, m.hub_b, cdc.match_label(m.object_a, m.hub_a),
           NULL, NULL, cdc.match_label(m.object_b, m.hub_b), 'held until cdcsync matches accept/reject', m.score
      FROM cdc.match_candidates m
     WHERE m.status = 'review' AND m.hub_a::text LIKE cdc.onboard_scope()
    UNION ALL
    SELECT 'create_in_netsuite', 'sf_accounts', a.hub_id, 'ns_customers', NULL, a.name,
           NULL, NULL, NULL, NULL, NULL
      FROM public.sf_accounts a
     WHERE a.hub_id::text LIKE cdc.onboard_scope() AND NOT a.isdeleted
       AND cdc.linked_hub_id('sf_accounts', a.hub_id, 'ns_customers') IS NULL
       AND NOT cdc.match_held('sf_accounts', a.hub_id)
    UNION ALL
    SELECT 'create_in_salesforce', 'ns_customers', n.hub_id, 'sf_accounts', NULL, cdc.sf_account_name(n),
           NULL, NULL, NULL, NULL, NULL
      FROM public.ns_customers n
     WHERE n.hub_id::text LIKE cdc.onboard_scope() AND NOT n.isinactive
       AND cdc.linked_hub_id('ns_customers', n.hub_id, 'sf_accounts') IS NULL
       AND NOT cdc.match_held('ns_customers', n.hub_id)
    UNION ALL
    SELECT 'create_in_netsuite', 'sf_opportunities', o.hub_id, 'ns_opportunities', NULL, o.name,
           NULL, NULL, NULL, NULL, NULL
      FROM public.sf_opportunities o
     WHERE o.hub_id::text LIKE cdc.onboard_scope() AND NOT o.isdeleted AND o.account_hub_id IS NOT NULL
       AND cdc.linked_hub_id('sf_opportunities', o.hub_id, 'ns_opportunities') IS NULL
       AND NOT cdc.match_held('sf_accounts', o.account_hub_id)
       AND (cdc.linked_hub_id('sf_accounts', o.account_hub_id, 'ns_customers') IS NOT NULL
            OR (SELECT NOT a.isdeleted FROM public.sf_accounts a WHERE a.hub_id = o.account_hub_id))
    UNION ALL
    SELECT 'create_in_salesforce', 'ns_opportunities', o.hub_id, 'sf_opportunities', NULL, o.title,
           NULL, NULL, NULL, NULL, NULL
      FROM public.ns_opportunities o
     WHERE o.hub_id::text LIKE cdc.onboard_scope() AND o.entity_hub_id IS NOT NULL
       AND cdc.linked_hub_id('ns_opportunities', o.hub_id, 'sf_opportunities') IS NULL
       AND NOT cdc.match_held('ns_customers', o.entity_hub_id)
       AND (cdc.linked_hub_id('ns_customers', o.entity_hub_id, 'sf_accounts') IS NOT NULL
            OR (SELECT NOT n.isinactive FROM public.ns_customers n WHERE n.hub_id = o.entity_hub_id))
    UNION ALL
    SELECT 'difference', d.sf_object, coalesce(d.sf_hub, d.ns_hub), d.ns_object, d.ns_hub,
           cdc.match_label(CASE WHEN d.sf_object = 'sf_contacts' THEN 'ns_customers' ELSE d.sf_object END,
                           CASE WHEN d.sf_object = 'sf_contacts' THEN d.ns_hub ELSE d.sf_hub END),
           d.field, d.sf_value #>> '{}', d.ns_value #>> '{}', d.settlement, NULL
      FROM cdc.onboard_differences() d
$$;
