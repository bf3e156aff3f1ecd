-- A phone value that does not reduce to a plausible number (7 to 15 digits, E.164) after
-- cdc.normalize_phone: NetSuite may reject it, and matching (cdc.phone_key) cannot use it.
-- The filter counts the digits with built-ins, which is what cdc.normalize_phone keeps: that
-- helper is a SQL function PostgreSQL cannot inline, and calling it on every row took 25 s for
-- 100,000 rows (a busy 2-core machine) where this takes 0.6 s. It runs on the offending rows only.
-- check: phones_not_normalized
-- severity: warning
-- schedule: 15 3 * * *
-- description: Phone values of accounts, contacts and customers that do not normalize to a number.
SELECT p.system, p.object, p.hub_id, p.phone, cdc.phone_key(p.phone) AS phone_key
  FROM (SELECT 'salesforce' AS system, 'sf_accounts' AS object, a.hub_id, a.phone
          FROM public.sf_accounts a WHERE NOT a.isdeleted
        UNION ALL
        SELECT 'salesforce', 'sf_contacts', c.hub_id, c.phone
          FROM public.sf_contacts c WHERE NOT c.isdeleted
        UNION ALL
        SELECT 'netsuite', 'ns_customers', n.hub_id, n.phone
          FROM public.ns_customers n WHERE NOT n.isinactive) p
 WHERE btrim(p.phone) <> ''
   AND length(regexp_replace(p.phone, '[^0-9]', '', 'g')) NOT BETWEEN 7 AND 15;
