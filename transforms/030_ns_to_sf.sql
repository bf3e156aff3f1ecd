-- NetSuite -> Salesforce: a Customer becomes an Account plus a (primary) Contact.
-- Same rules as 020_sf_to_ns.sql, mirrored: write only real changes, never overwrite a
-- Salesforce value that already maps to what NetSuite holds, find the counterpart through
-- cdc.identity_links, and a deleted customer marks the account deleted.

-- Salesforce requires Contact.LastName; a company customer has no last name.
CREATE OR REPLACE FUNCTION cdc.sf_contact_lastname(n public.ns_customers) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(cdc.blank_to_null(n.lastname), cdc.blank_to_null(n.companyname), '[not provided]')
$$;

-- Maps one customer onto its linked account and the account's primary contact, creating and
-- linking them when the customer has no account yet. Returns the account's hub_id, NULL when
-- nothing is mapped.
CREATE OR REPLACE FUNCTION cdc.ns_customer_to_sf(p_customer_hub_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    n      public.ns_customers;
    cur_a  public.sf_accounts;     -- stored account
    a      public.sf_accounts;     -- account as it should be
    cur_c  public.sf_contacts;     -- stored primary contact (all NULL when none)
    c      public.sf_contacts;
    b      record;                 -- default billing address of the customer
    sf_hub uuid;
    is_new boolean := false;
    held   text[] := '{}';             -- fields kept apart by an open onboarding conflict
BEGIN
    SELECT * INTO n FROM public.ns_customers WHERE hub_id = p_customer_hub_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    sf_hub := cdc.linked_hub_id('ns_customers', n.hub_id, 'sf_accounts');
    IF sf_hub IS NULL AND cdc.match_held('ns_customers', n.hub_id) THEN
        RETURN NULL;       -- held in an open match review: nothing adopted or created until decided
    END IF;
    IF sf_hub IS NULL AND n.internalid IS NOT NULL THEN
        -- Initial load: an account that already carries this customer's internalId.
        SELECT x.hub_id INTO sf_hub
          FROM public.sf_accounts x
         WHERE x.netsuite_id__c = n.internalid
           AND cdc.link_id_of('sf_accounts', x.hub_id) IS NULL
         ORDER BY x.isdeleted, x.hub_id
         LIMIT 1;
        IF sf_hub IS NOT NULL THEN
            PERFORM cdc.link('ns_customers', n.hub_id, 'sf_accounts', sf_hub);
        END IF;
    END IF;

    IF sf_hub IS NOT NULL THEN
        IF cdc.onboard_unsettled('ns_customers', n.hub_id) THEN
            RETURN sf_hub; -- matched while onboarding: cdc.onboard_settle merges the pair first
        END IF;
        -- Lock against a concurrent Salesforce inbound write (see cdc.sf_account_to_ns).
        SELECT * INTO cur_a FROM public.sf_accounts WHERE hub_id = sf_hub FOR UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;   -- removed on the Salesforce side: do not resurrect it
        END IF;
        SELECT * INTO cur_c FROM public.sf_contacts
         WHERE hub_id = cdc.primary_contact_hub_id(sf_hub) FOR UPDATE;
        held := cdc.onboard_held_fields('sf_accounts', sf_hub, cur_c.hub_id);
    ELSIF n.isinactive THEN
        RETURN NULL;       -- an inactive customer does not need a new account
    ELSIF cdc.onboard_holds_creation() THEN
        RETURN NULL;       -- onboarding: matched first, created by cdc.onboard_settle
    ELSE
        is_new         := true;
        cur_a.hub_id   := gen_random_uuid();
        cur_a.isdeleted := false;
    END IF;
    a := cur_a;
    c := cur_c;

    -- Keep a name whose NetSuite form equals what NetSuite holds (a 100-character Name and its
    -- 83-character companyName are the same record). Individuals' accounts follow the person.
    IF n.isperson THEN
        IF a.name IS DISTINCT FROM cdc.sf_account_name(n) AND NOT 'name' = ANY (held) THEN
            a.name := cdc.sf_account_name(n);
        END IF;
    ELSIF a.name IS NULL
          OR NOT 'name' = ANY (held) AND cdc.ns_company_name(a.name) IS DISTINCT FROM cdc.ns_company_name(n.companyname) THEN
        a.name := cdc.sf_account_name(n);
    END IF;

    -- The phone NetSuite got is the account's, else the primary contact's; if that already
    -- matches NetSuite's digits, Salesforce's formatting stays.
    IF coalesce(cdc.phone_key(a.phone), cdc.phone_key(c.phone))
       IS DISTINCT FROM cdc.phone_key(n.phone) AND NOT 'phone' = ANY (held) THEN
        a.phone := cdc.blank_to_null(n.phone);
    END IF;

    IF cdc.url_key(a.website) IS DISTINCT FROM cdc.url_key(n.url) AND NOT 'website' = ANY (held) THEN
        a.website := cdc.blank_to_null(n.url);
    END IF;

    b := cdc.ns_billing_address(n.addressbook);
    IF cdc.street_lines(a.billingstreet) IS DISTINCT FROM ARRAY[b.addr1, b.addr2, b.addr3]
       AND NOT 'billingstreet' = ANY (held) THEN
        a.billingstreet := cdc.street_from_lines(b.addr1, b.addr2, b.addr3);
    END IF;
    IF cdc.blank_to_null(a.billingcity) IS DISTINCT FROM b.city AND NOT 'billingcity' = ANY (held) THEN
        a.billingcity := b.city;
    END IF;
    IF cdc.blank_to_null(a.billingstate) IS DISTINCT FROM b.state AND NOT 'billingstate' = ANY (held) THEN
        a.billingstate := b.state;
    END IF;
    IF cdc.blank_to_null(a.billingpostalcode) IS DISTINCT FROM b.zip AND NOT 'billingpostalcode' = ANY (held) THEN
        a.billingpostalcode := b.zip;
    END IF;
    IF cdc.country_code(a.billingcountry) IS DISTINCT FROM cdc.country_code(b.country)
       AND NOT 'billingcountry' = ANY (held) THEN
        a.billingcountry := cdc.country_name(b.country);
    END IF;

    IF n.internalid IS NOT NULL AND a.netsuite_id__c IS DISTINCT FROM n.internalid THEN
        a.netsuite_id__c := n.internalid;
    END IF;

    IF is_new THEN
        INSERT INTO public.sf_accounts SELECT a.*;
        PERFORM cdc.link('ns_customers', n.hub_id, 'sf_accounts', a.hub_id);
        PERFORM cdc.set_record_id('ns_customers', n.hub_id, n.internalid);
    ELSIF a IS DISTINCT FROM cur_a THEN
        UPDATE public.sf_accounts
           SET name = a.name, phone = a.phone, website = a.website,
               billingstreet = a.billingstreet, billingcity = a.billingcity,
               billingstate = a.billingstate, billingpostalcode = a.billingpostalcode,
               billingcountry = a.billingcountry, netsuite_id__c = a.netsuite_id__c
         WHERE hub_id = a.hub_id;
    END IF;

    -- The contact: only when there is something to put in it (an email or a person's name);
    -- a bare company customer gets no placeholder contact.
    IF c.hub_id IS NULL THEN
        IF cdc.blank_to_null(n.email) IS NOT NULL OR n.isperson
           OR cdc.blank_to_null(n.firstname) IS NOT NULL OR cdc.blank_to_null(n.lastname) IS NOT NULL THEN
            INSERT INTO public.sf_contacts (account_hub_id, firstname, lastname, email)
            VALUES (a.hub_id, cdc.blank_to_null(n.firstname), cdc.sf_contact_lastname(n),
                    cdc.blank_to_null(n.email));
        END IF;
    ELSE
        IF lower(cdc.blank_to_null(c.email)) IS DISTINCT FROM lower(cdc.blank_to_null(n.email))
           AND NOT 'email' = ANY (held) THEN
            c.email := cdc.blank_to_null(n.email);
        END IF;
        IF n.isperson THEN
            IF cdc.blank_to_null(c.firstname) IS DISTINCT FROM cdc.blank_to_null(n.firstname)
               AND NOT 'firstname' = ANY (held) THEN
                c.firstname := cdc.blank_to_null(n.firstname);
            END IF;
            -- Without a last name in NetSuite the contact keeps the one it has.
            IF cdc.blank_to_null(n.lastname) IS NOT NULL AND NOT 'lastname' = ANY (held)
               AND cdc.blank_to_null(c.lastname) IS DISTINCT FROM cdc.blank_to_null(n.lastname) THEN
                c.lastname := cdc.blank_to_null(n.lastname);
            END IF;
        END IF;
        IF c IS DISTINCT FROM cur_c THEN
            UPDATE public.sf_contacts
               SET email = c.email, firstname = c.firstname, lastname = c.lastname
             WHERE hub_id = c.hub_id;
        END IF;
    END IF;

    RETURN a.hub_id;
END
$$;

-- The customer's row is gone from the hub (deleted in NetSuite): Salesforce gets the account
-- marked deleted; its outbound writer turns that into a delete.
CREATE OR REPLACE FUNCTION cdc.ns_customer_removed_to_sf(p_customer_hub_id uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE public.sf_accounts
       SET isdeleted = true
     WHERE hub_id = cdc.linked_hub_id('ns_customers', p_customer_hub_id, 'sf_accounts')
       AND NOT isdeleted
$$;

CREATE OR REPLACE FUNCTION cdc.on_ns_customer_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() > 1 OR cdc.onboard_settling() THEN
        RETURN NULL;       -- recursion guard, see cdc.on_sf_account_change
    END IF;

    IF TG_OP = 'DELETE' THEN
        PERFORM cdc.ns_customer_removed_to_sf(OLD.hub_id);
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;

    PERFORM cdc.ns_customer_to_sf(NEW.hub_id);
    PERFORM cdc.set_record_id('ns_customers', NEW.hub_id, NEW.internalid);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER cdc_ns_customers_to_sf
    AFTER INSERT OR UPDATE OR DELETE ON public.ns_customers
    FOR EACH ROW EXECUTE FUNCTION cdc.on_ns_customer_change();
