-- Lookup helpers shared by the transform tests: follow the identity link from one side to the
-- row on the other, so tests never look a counterpart up by name either.

-- (schema cdc_test comes from _assert.sql, which runs first)

CREATE OR REPLACE FUNCTION cdc_test.ns_of(account_hub_id uuid) RETURNS public.ns_customers
LANGUAGE sql STABLE AS $$
    SELECT n.* FROM public.ns_customers n
     WHERE n.hub_id = cdc.linked_hub_id('sf_accounts', ns_of.account_hub_id, 'ns_customers')
$$;

CREATE OR REPLACE FUNCTION cdc_test.sf_of(customer_hub_id uuid) RETURNS public.sf_accounts
LANGUAGE sql STABLE AS $$
    SELECT a.* FROM public.sf_accounts a
     WHERE a.hub_id = cdc.linked_hub_id('ns_customers', sf_of.customer_hub_id, 'sf_accounts')
$$;

CREATE OR REPLACE FUNCTION cdc_test.primary_contact(account_hub_id uuid) RETURNS public.sf_contacts
LANGUAGE sql STABLE AS $$
    SELECT c.* FROM public.sf_contacts c WHERE c.hub_id = cdc.primary_contact_hub_id(primary_contact.account_hub_id)
$$;

-- The default billing address object of a customer's address book ('{}' when none).
CREATE OR REPLACE FUNCTION cdc_test.billing(n public.ns_customers) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(n.addressbook -> cdc.ns_default_billing_index(n.addressbook) -> 'addressBookAddress', '{}')
$$;
