-- Two live companies of one system on the same website are usually one company entered twice;
-- matching (transforms/050_matching.sql) cannot tell such records apart either.
-- check: shared_website_domains
-- severity: warning
-- schedule: 30 2 * * *
-- description: Companies of one system (Salesforce accounts, NetSuite company customers) sharing a website domain.
SELECT 'salesforce' AS system,
       d.domain,
       count(*) AS companies,
       array_agg(d.hub_id ORDER BY d.hub_id) AS hub_ids,
       array_agg(d.name ORDER BY d.hub_id) AS names
  FROM (SELECT a.hub_id, a.name, cdc.match_website_domain(a.website) AS domain
          FROM public.sf_accounts a
         WHERE NOT a.isdeleted) d
 WHERE d.domain IS NOT NULL
 GROUP BY d.domain
HAVING count(*) > 1
UNION ALL
SELECT 'netsuite',
       d.domain,
       count(*),
       array_agg(d.hub_id ORDER BY d.hub_id),
       array_agg(d.name ORDER BY d.hub_id)
  FROM (SELECT c.hub_id, c.companyname AS name, cdc.match_website_domain(c.url) AS domain
          FROM public.ns_customers c
         WHERE NOT c.isinactive AND NOT c.isperson) d
 WHERE d.domain IS NOT NULL
 GROUP BY d.domain
HAVING count(*) > 1;
