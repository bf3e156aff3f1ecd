-- A phone value that does not reduce to a plausible number (7 to 15 digits, E.164) after
-- cdc.normalize_phone: NetSuite may reject it, and matching (cdc.phone_key) cannot use it.
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
 WHERE cdc.blank_to_null(p.phone) IS NOT NULL
   AND coalesce(length(ltrim(cdc.phone_key(p.phone), '+')), 0) NOT BETWEEN 7 AND 15;
