-- Salesforce -> NetSuite: an Account plus its primary Contact become one NetSuite Customer.
--
-- Rules every function here keeps (see docs/TRANSFORMS.md):
--  * Write nothing when the mapped values did not change: the new row is computed in a
--    variable and written only if it differs from the stored one. An unchanged inbound write
--    therefore produces no WAL for ns_customers and no outbound call to NetSuite.
--  * Round-trip stability: a NetSuite value is overwritten only when it is not already
--    equivalent to what Salesforce holds (same normalized phone, same url once a scheme is
--    added, same country code, same truncated name...). NetSuite's own formatting of a value
--    we sent therefore never travels back as a change.
--  * The counterpart is found through cdc.identity_links, never by name.
--  * Deletes become isinactive = true: NetSuite customers carry transactions and are not
--    deleted.

-- Maps one account (and its primary contact) onto its linked customer, creating and linking the
-- customer when the account has none yet. p_reactivate: the account was just undeleted in
-- Salesforce, so an inactive customer becomes active again (otherwise a customer made inactive
-- in NetSuite stays inactive). Returns the customer's hub_id, NULL when nothing is mapped.
CREATE OR REPLACE FUNCTION cdc.sf_account_to_ns(p_account_hub_id uuid, p_reactivate boolean DEFAULT false)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    a      public.sf_accounts;
    c      public.sf_contacts;         -- all fields NULL when the account has no contact
    cur    public.ns_customers;        -- the stored customer
    n      public.ns_customers;        -- the customer as it should be
    ns_hub uuid;
    is_new boolean := false;
    phone  text;
    keep_contact_fields boolean;
    held   text[];                     -- fields kept apart by an open onboarding conflict
    hb     record;                     -- the customer's billing address, for held billing fields
BEGIN
    SELECT * INTO a FROM public.sf_accounts WHERE hub_id = p_account_hub_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO c FROM public.sf_contacts WHERE hub_id = cdc.primary_contact_hub_id(a.hub_id);

    ns_hub := cdc.linked_hub_id('sf_accounts', a.hub_id, 'ns_customers');
    IF ns_hub IS NULL AND cdc.match_held('sf_accounts', a.hub_id) THEN
        RETURN NULL;       -- held in an open match review: nothing adopted or created until decided
    END IF;
    IF ns_hub IS NULL AND a.netsuite_id__c IS NOT NULL THEN
        -- An initial load of records that were paired before CdcSync: adopt the customer
        -- Salesforce already points at, if nothing else claims it.
        SELECT x.hub_id INTO ns_hub
          FROM public.ns_customers x
         WHERE x.internalid = a.netsuite_id__c
           AND cdc.link_id_of('ns_customers', x.hub_id) IS NULL;
        IF ns_hub IS NOT NULL THEN
            PERFORM cdc.link('sf_accounts', a.hub_id, 'ns_customers', ns_hub);
        END IF;
    END IF;

    IF ns_hub IS NOT NULL THEN
        IF cdc.onboard_unsettled('sf_accounts', a.hub_id) THEN
            RETURN ns_hub; -- matched while onboarding: cdc.onboard_settle merges the pair first
        END IF;
        -- Lock: a concurrent NetSuite inbound write must not be overwritten by values we
        -- computed from the version before it.
        SELECT * INTO cur FROM public.ns_customers WHERE hub_id = ns_hub FOR UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;   -- deleted in NetSuite: do not resurrect it
        END IF;
    ELSIF a.isdeleted THEN
        RETURN NULL;       -- never create a customer for a deleted account
    ELSIF cdc.onboard_holds_creation() THEN
        RETURN NULL;       -- onboarding: matched first, created by cdc.onboard_settle
    ELSE
        is_new          := true;
        cur.hub_id      := gen_random_uuid();
        -- Stable and unique per link: NetSuite upserts by externalId, so a retried create
        -- cannot make a duplicate customer.
        cur.externalid  := 'sf-' || a.hub_id::text;
        cur.isperson    := false;
        cur.isinactive  := false;
        cur.addressbook := '[]';
        cur.subsidiary  := cdc.ns_default_subsidiary();
    END IF;
    n := cur;
    held := CASE WHEN is_new THEN '{}' ELSE cdc.onboard_held_fields('sf_accounts', a.hub_id, c.hub_id) END;

    IF a.isdeleted THEN
        -- Deleted in Salesforce, which deletes the account's contacts with it: NetSuite keeps the
        -- customer as it was, only inactive. Mapping the rest now would blank what the deleted
        -- contacts supplied (email, phone) in a customer nobody edits any more.
        IF NOT cur.isinactive THEN
            UPDATE public.ns_customers SET isinactive = true WHERE hub_id = cur.hub_id;
        END IF;
        RETURN cur.hub_id;
    END IF;

    IF n.isperson THEN
        -- An individual's name lives in first/last name (from the contact); the account name
        -- was derived from them and is not mapped back.
        IF c.hub_id IS NOT NULL THEN
            IF cdc.blank_to_null(n.firstname) IS DISTINCT FROM cdc.blank_to_null(c.firstname)
               AND NOT 'firstname' = ANY (held) THEN
                n.firstname := cdc.blank_to_null(c.firstname);
            END IF;
            -- The NS->SF side fills a missing last name from companyname or '[not provided]';
            -- such a stand-in is not a change to send back.
            IF cdc.blank_to_null(c.lastname) IS DISTINCT FROM coalesce(cdc.blank_to_null(n.lastname),
                                                    cdc.blank_to_null(n.companyname), '[not provided]')
               AND NOT 'lastname' = ANY (held) THEN
                n.lastname := cdc.blank_to_null(c.lastname);
            END IF;
        END IF;
    ELSIF NOT 'name' = ANY (held)
          AND cdc.ns_company_name(n.companyname) IS DISTINCT FROM cdc.ns_company_name(a.name)
          -- The NS->SF side names an account without companyName after entityId (Name is
          -- required); such a stand-in is not a name to send back.
          AND a.name IS DISTINCT FROM cdc.sf_account_name(n) THEN
        n.companyname := cdc.ns_company_name(a.name);
    END IF;

    -- An undelete brings the account back before its contacts (Salesforce restores both, the
    -- inbound connector reads accounts first): until they are back, the customer keeps what
    -- they supplied instead of losing it and getting it again a moment later.
    keep_contact_fields := p_reactivate AND c.hub_id IS NULL;

    IF lower(cdc.blank_to_null(n.email)) IS DISTINCT FROM lower(cdc.blank_to_null(c.email))
       AND NOT keep_contact_fields AND NOT 'email' = ANY (held) THEN
        n.email := cdc.blank_to_null(c.email);
    END IF;

    phone := coalesce(cdc.normalize_phone(a.phone), cdc.normalize_phone(c.phone));
    IF cdc.phone_key(n.phone) IS DISTINCT FROM cdc.phone_key(phone)
       AND NOT (keep_contact_fields AND phone IS NULL) AND NOT 'phone' = ANY (held) THEN
        n.phone := phone;
    END IF;

    IF cdc.url_key(n.url) IS DISTINCT FROM cdc.url_key(a.website) AND NOT 'website' = ANY (held) THEN
        n.url := cdc.normalize_url(a.website);
    END IF;

    IF cardinality(held) = 0 THEN
        n.addressbook := cdc.ns_merge_billing(n.addressbook, a.billingstreet, a.billingcity,
                                              a.billingstate, a.billingpostalcode, a.billingcountry);
    ELSE
        -- A held billing field keeps NetSuite's value.
        hb := cdc.ns_billing_address(n.addressbook);
        n.addressbook := cdc.ns_merge_billing(n.addressbook,
            CASE WHEN 'billingstreet' = ANY (held) THEN cdc.street_from_lines(hb.addr1, hb.addr2, hb.addr3) ELSE a.billingstreet END,
            CASE WHEN 'billingcity' = ANY (held) THEN hb.city ELSE a.billingcity END,
            CASE WHEN 'billingstate' = ANY (held) THEN hb.state ELSE a.billingstate END,
            CASE WHEN 'billingpostalcode' = ANY (held) THEN hb.zip ELSE a.billingpostalcode END,
            CASE WHEN 'billingcountry' = ANY (held) THEN hb.country ELSE a.billingcountry END);
    END IF;

    IF p_reactivate THEN
        n.isinactive := false;
    END IF;

    IF is_new THEN
        INSERT INTO public.ns_customers SELECT n.*;
        PERFORM cdc.link('sf_accounts', a.hub_id, 'ns_customers', n.hub_id);
        PERFORM cdc.set_record_id('sf_accounts', a.hub_id, a.id);
    ELSIF n IS DISTINCT FROM cur THEN
        UPDATE public.ns_customers
           SET companyname = n.companyname, firstname = n.firstname, lastname = n.lastname,
               email = n.email, phone = n.phone, url = n.url, addressbook = n.addressbook,
               isinactive = n.isinactive
         WHERE hub_id = n.hub_id;
    END IF;
    RETURN n.hub_id;
END
$$;

-- The row of an account is gone from the hub (deleted in Salesforce and purged, or removed by
-- the inbound connector): the customer becomes inactive.
CREATE OR REPLACE FUNCTION cdc.sf_account_removed_to_ns(p_account_hub_id uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE public.ns_customers
       SET isinactive = true
     WHERE hub_id = cdc.linked_hub_id('sf_accounts', p_account_hub_id, 'ns_customers')
       AND NOT isinactive
$$;

-- Recursion guard, used by every mapping trigger: act only on writes made directly by a
-- statement (an inbound connector, an operator, a test), i.e. pg_trigger_depth() = 1. Writes
-- a transform makes to the other side fire that side's trigger at depth 2, which must not map
-- them back: the value would bounce SF -> NS -> SF inside one transaction, and with
-- normalizing mappings (phone, url, truncated name) it could rewrite the very row being
-- synced. One inbound write therefore causes at most one write per other table.
CREATE OR REPLACE FUNCTION cdc.on_sf_account_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    attached bigint := 0;
BEGIN
    IF pg_trigger_depth() > 1 OR cdc.onboard_settling() THEN
        RETURN NULL;
    END IF;

    IF TG_OP = 'DELETE' THEN
        PERFORM cdc.sf_account_removed_to_ns(OLD.hub_id);
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;

    -- Contacts that arrived before their account (same inbound batch, other order) carry only
    -- the Salesforce AccountId; attach them now so the mapping sees the primary contact.
    IF NEW.id IS NOT NULL THEN
        UPDATE public.sf_contacts
           SET account_hub_id = NEW.hub_id
         WHERE accountid = NEW.id AND account_hub_id IS NULL;
        GET DIAGNOSTICS attached = ROW_COUNT;
    END IF;

    -- An Id written back after a create (one per record Salesforce creates) changes nothing the
    -- customer is mapped from, unless it attached contacts: a linked account only records its
    -- Id. This keeps the write-back cheap (docs/BENCHMARKS.md, Salesforce outbound).
    IF TG_OP = 'UPDATE' AND attached = 0 AND to_jsonb(NEW) - 'id' = to_jsonb(OLD) - 'id'
       AND cdc.linked_hub_id('sf_accounts', NEW.hub_id, 'ns_customers') IS NOT NULL THEN
        PERFORM cdc.set_record_id('sf_accounts', NEW.hub_id, NEW.id);
        RETURN NULL;
    END IF;

    PERFORM cdc.sf_account_to_ns(NEW.hub_id,
        p_reactivate => TG_OP = 'UPDATE' AND OLD.isdeleted AND NOT NEW.isdeleted);
    PERFORM cdc.set_record_id('sf_accounts', NEW.hub_id, NEW.id);
    RETURN NULL;
END
$$;

-- Any contact change may change the account's primary contact (a new earlier contact, a
-- deleted one, a move to another account): re-map the affected accounts; the mapping itself
-- writes nothing when the customer is already right.
CREATE OR REPLACE FUNCTION cdc.on_sf_contact_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() > 1 OR cdc.onboard_settling() THEN
        RETURN NULL;       -- see cdc.on_sf_account_change
    END IF;

    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.account_hub_id IS NOT NULL THEN
        PERFORM cdc.sf_account_to_ns(OLD.account_hub_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.account_hub_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.account_hub_id IS DISTINCT FROM OLD.account_hub_id) THEN
        PERFORM cdc.sf_account_to_ns(NEW.account_hub_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER cdc_sf_accounts_to_ns
    AFTER INSERT OR UPDATE OR DELETE ON public.sf_accounts
    FOR EACH ROW EXECUTE FUNCTION cdc.on_sf_account_change();

CREATE OR REPLACE TRIGGER cdc_sf_contacts_to_ns
    AFTER INSERT OR UPDATE OR DELETE ON public.sf_contacts
    FOR EACH ROW EXECUTE FUNCTION cdc.on_sf_contact_change();
