-- A live Salesforce account linked to an inactive NetSuite customer: the systems disagree on
-- whether the customer exists (the transforms keep the two in step, so this is drift, a match
-- made by hand or during onboarding, or a change written with the triggers off).
-- check: links_to_inactive_customers
-- severity: error
-- schedule: */15 * * * *
-- description: Live Salesforce accounts linked to an inactive NetSuite customer.
SELECT a.hub_id AS account_hub_id,
       a.id AS account_id,
       a.name AS account_name,
       c.hub_id AS customer_hub_id,
       c.internalid AS customer_internalid
  FROM cdc.identity_links la
  JOIN cdc.identity_links lc ON lc.link_id = la.link_id AND lc.object = 'ns_customers'
  JOIN public.sf_accounts a ON a.hub_id = la.hub_id
  JOIN public.ns_customers c ON c.hub_id = lc.hub_id
 WHERE la.object = 'sf_accounts'
   AND NOT a.isdeleted
   AND c.isinactive;
