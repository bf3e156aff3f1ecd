-- NetSuite sends invoices and statements by email: an active customer without one gets nothing.
-- check: customers_without_email
-- severity: warning
-- schedule: 0 * * * *
-- description: Active NetSuite customers with no email address.
SELECT c.hub_id,
       c.internalid,
       coalesce(cdc.blank_to_null(c.companyname),
                cdc.blank_to_null(concat_ws(' ', cdc.blank_to_null(c.firstname), cdc.blank_to_null(c.lastname))),
                c.entityid) AS name
  FROM public.ns_customers c
 WHERE NOT c.isinactive
   AND cdc.blank_to_null(c.email) IS NULL;
