-- Salesforce Opportunity <-> NetSuite opportunity, linked through the identity links of their
-- Account / customer: an opportunity is mapped as soon as its account has a linked customer row in
-- the hub, even before NetSuite has created that customer: ns_opportunities.entity_hub_id names the
-- customer's hub row, and the NetSuite connector resolves `entity` from its internalid at send time
-- (Records[].Lookups, like Salesforce's Lookups for Contact.AccountId). In the other direction an
-- opportunity is mapped once its customer has a linked account.
-- Same rules as 020/030 (see docs/TRANSFORMS.md): write nothing
-- when nothing mapped changed, find counterparts through cdc.identity_links, act only on direct
-- writes (pg_trigger_depth() = 1).
--
--   Opportunity.Name        <-> opportunity.title
--   Opportunity.Amount      <-> opportunity.projectedTotal
--   Opportunity.CloseDate   <-> opportunity.expectedCloseDate
--   Opportunity.Probability <-> opportunity.probability
--   Opportunity.Description <-> opportunity.memo
--   Opportunity.AccountId   <-> opportunity.entity (through the account/customer link)
--   deleted in Salesforce    -> deleted in NetSuite; deleted in NetSuite -> deleted in Salesforce

-- The NetSuite internalId of the customer linked to an account, NULL until there is one.
CREATE OR REPLACE FUNCTION cdc.ns_entity_of_account(p_account_hub_id uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT n.internalid FROM public.ns_customers n
     WHERE n.hub_id = cdc.linked_hub_id('sf_accounts', p_account_hub_id, 'ns_customers')
$$;

-- The hub row of the customer linked to an account, NULL while the account is not mapped.
CREATE OR REPLACE FUNCTION cdc.ns_customer_of_account(p_account_hub_id uuid) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT n.hub_id FROM public.ns_customers n
     WHERE n.hub_id = cdc.linked_hub_id('sf_accounts', p_account_hub_id, 'ns_customers')
$$;

-- The account linked to the customer a NetSuite entity id names, NULL until there is one.
CREATE OR REPLACE FUNCTION cdc.sf_account_of_entity(p_entity text) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT cdc.linked_hub_id('ns_customers', n.hub_id, 'sf_accounts')
      FROM public.ns_customers n WHERE n.internalid = p_entity
$$;

-- A stage for an opportunity created in NetSuite (Salesforce requires one): by probability.
CREATE OR REPLACE FUNCTION cdc.sf_stage_for(p_probability numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
               WHEN p_probability IS NULL OR p_probability < 20 THEN 'Prospecting'
               WHEN p_probability >= 100 THEN 'Closed Won'
               WHEN p_probability >= 75 THEN 'Proposal/Price Quote'
               WHEN p_probability >= 50 THEN 'Value Proposition'
               ELSE 'Needs Analysis'
           END
$$;

CREATE OR REPLACE FUNCTION cdc.sf_opportunity_to_ns(p_hub_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    o      public.sf_opportunities;
    cur    public.ns_opportunities;
    n      public.ns_opportunities;
    ns_hub   uuid;
    customer uuid;
    entity   text;
    held     text[] := '{}';           -- fields kept apart by an open onboarding conflict
BEGIN
    SELECT * INTO o FROM public.sf_opportunities WHERE hub_id = p_hub_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    ns_hub := cdc.linked_hub_id('sf_opportunities', o.hub_id, 'ns_opportunities');
    IF o.isdeleted THEN
        DELETE FROM public.ns_opportunities WHERE hub_id = ns_hub;
        RETURN NULL;
    END IF;

    customer := cdc.ns_customer_of_account(o.account_hub_id);
    entity := cdc.ns_entity_of_account(o.account_hub_id);
    IF ns_hub IS NOT NULL THEN
        IF cdc.onboard_unsettled('sf_opportunities', o.hub_id) THEN
            RETURN ns_hub; -- matched while onboarding: cdc.onboard_settle merges the pair first
        END IF;
        SELECT * INTO cur FROM public.ns_opportunities WHERE hub_id = ns_hub FOR UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;   -- deleted in NetSuite: do not resurrect it
        END IF;
        held := cdc.onboard_held_fields('sf_opportunities', o.hub_id);
    ELSIF customer IS NULL THEN
        -- The account is not mapped to a customer (not in the hub yet): nothing to attach to.
        RETURN NULL;
    ELSIF cdc.onboard_holds_creation() THEN
        RETURN NULL;       -- onboarding: matched first, created by cdc.onboard_settle
    ELSE
        cur.hub_id     := gen_random_uuid();
        -- Stable per Salesforce row: NetSuite upserts by externalId, a retried create makes no duplicate.
        cur.externalid := 'sf-' || o.hub_id::text;
    END IF;
    n := cur;

    -- A customer NetSuite has not created yet leaves entity NULL: the connector resolves it from
    -- entity_hub_id when it sends the row (after the customer's own create, earlier in the WAL).
    IF customer IS NOT NULL AND n.entity_hub_id IS DISTINCT FROM customer THEN
        n.entity_hub_id := customer;
        n.entity := entity;
    ELSIF entity IS NOT NULL AND n.entity IS DISTINCT FROM entity THEN
        n.entity := entity;
    END IF;
    IF n.title IS DISTINCT FROM left(o.name, 100) AND NOT 'name' = ANY (held) THEN
        n.title := left(o.name, 100);
    END IF;
    IF n.projectedtotal IS DISTINCT FROM o.amount AND NOT 'amount' = ANY (held) THEN
        n.projectedtotal := o.amount;
    END IF;
    IF n.expectedclosedate IS DISTINCT FROM o.closedate AND NOT 'closedate' = ANY (held) THEN
        n.expectedclosedate := o.closedate;
    END IF;
    IF o.probability IS NOT NULL AND n.probability IS DISTINCT FROM o.probability AND NOT 'probability' = ANY (held) THEN
        n.probability := o.probability;
    END IF;
    IF cdc.blank_to_null(n.memo) IS DISTINCT FROM cdc.blank_to_null(o.description) AND NOT 'description' = ANY (held) THEN
        n.memo := cdc.blank_to_null(o.description);
    END IF;

    IF ns_hub IS NULL THEN
        INSERT INTO public.ns_opportunities SELECT n.*;
        PERFORM cdc.link('sf_opportunities', o.hub_id, 'ns_opportunities', n.hub_id);
    ELSIF n IS DISTINCT FROM cur THEN
        UPDATE public.ns_opportunities
           SET entity = n.entity, entity_hub_id = n.entity_hub_id, title = n.title, projectedtotal = n.projectedtotal,
               expectedclosedate = n.expectedclosedate, probability = n.probability, memo = n.memo
         WHERE hub_id = n.hub_id;
    END IF;
    PERFORM cdc.set_record_id('sf_opportunities', o.hub_id, o.id);
    RETURN n.hub_id;
END
$$;

CREATE OR REPLACE FUNCTION cdc.ns_opportunity_to_sf(p_hub_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    n       public.ns_opportunities;
    cur     public.sf_opportunities;
    o       public.sf_opportunities;
    sf_hub  uuid;
    account uuid;
    held    text[] := '{}';
BEGIN
    SELECT * INTO n FROM public.ns_opportunities WHERE hub_id = p_hub_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    sf_hub := cdc.linked_hub_id('ns_opportunities', n.hub_id, 'sf_opportunities');
    account := coalesce(cdc.linked_hub_id('ns_customers', n.entity_hub_id, 'sf_accounts'),
                        cdc.sf_account_of_entity(n.entity));
    IF sf_hub IS NOT NULL THEN
        IF cdc.onboard_unsettled('ns_opportunities', n.hub_id) THEN
            RETURN sf_hub; -- matched while onboarding: cdc.onboard_settle merges the pair first
        END IF;
        SELECT * INTO cur FROM public.sf_opportunities WHERE hub_id = sf_hub FOR UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        held := cdc.onboard_held_fields('sf_opportunities', sf_hub);
    ELSIF account IS NULL THEN
        RETURN NULL;       -- its customer has no account yet
    ELSIF cdc.onboard_holds_creation() THEN
        RETURN NULL;       -- onboarding: matched first, created by cdc.onboard_settle
    ELSE
        cur.hub_id    := gen_random_uuid();
        cur.isdeleted := false;
        cur.stagename := cdc.sf_stage_for(n.probability);
    END IF;
    o := cur;

    IF account IS NOT NULL AND o.account_hub_id IS DISTINCT FROM account THEN
        o.account_hub_id := account;
        o.accountid      := (SELECT a.id FROM public.sf_accounts a WHERE a.hub_id = account);
    END IF;
    IF o.name IS NULL OR left(o.name, 100) IS DISTINCT FROM n.title AND NOT 'name' = ANY (held) THEN
        o.name := coalesce(n.title, '[no title]');
    END IF;
    IF o.amount IS DISTINCT FROM n.projectedtotal AND NOT 'amount' = ANY (held) THEN
        o.amount := n.projectedtotal;
    END IF;
    IF o.closedate IS DISTINCT FROM coalesce(n.expectedclosedate, o.closedate, n.trandate, current_date)
       AND NOT 'closedate' = ANY (held) THEN
        o.closedate := coalesce(n.expectedclosedate, o.closedate, n.trandate, current_date);
    END IF;
    IF n.probability IS NOT NULL AND o.probability IS DISTINCT FROM n.probability AND NOT 'probability' = ANY (held) THEN
        o.probability := n.probability;
    END IF;
    IF cdc.blank_to_null(o.description) IS DISTINCT FROM cdc.blank_to_null(n.memo) AND NOT 'description' = ANY (held) THEN
        o.description := cdc.blank_to_null(n.memo);
    END IF;
    IF n.internalid IS NOT NULL AND o.netsuite_id__c IS DISTINCT FROM n.internalid THEN
        o.netsuite_id__c := n.internalid;
    END IF;

    IF sf_hub IS NULL THEN
        INSERT INTO public.sf_opportunities SELECT o.*;
        PERFORM cdc.link('ns_opportunities', n.hub_id, 'sf_opportunities', o.hub_id);
    ELSIF o IS DISTINCT FROM cur THEN
        UPDATE public.sf_opportunities
           SET account_hub_id = o.account_hub_id, accountid = o.accountid, name = o.name,
               amount = o.amount, closedate = o.closedate, probability = o.probability,
               description = o.description, netsuite_id__c = o.netsuite_id__c
         WHERE hub_id = o.hub_id;
    END IF;
    PERFORM cdc.set_record_id('ns_opportunities', n.hub_id, n.internalid);
    RETURN o.hub_id;
END
$$;

-- Inbound opportunities carry the Salesforce AccountId only; the mapping needs the account's hub row.
CREATE OR REPLACE FUNCTION cdc.sf_opportunities_resolve_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.accountid IS NOT NULL
       AND (NEW.account_hub_id IS NULL OR TG_OP = 'UPDATE' AND NEW.accountid IS DISTINCT FROM OLD.accountid) THEN
        NEW.account_hub_id := (SELECT a.hub_id FROM public.sf_accounts a WHERE a.id = NEW.accountid);
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER cdc_resolve_account BEFORE INSERT OR UPDATE ON public.sf_opportunities
    FOR EACH ROW EXECUTE FUNCTION cdc.sf_opportunities_resolve_account();

-- Inbound opportunities carry NetSuite's entity id only; the hub-side parent follows it.
CREATE OR REPLACE FUNCTION cdc.ns_opportunities_resolve_entity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.entity IS NOT NULL
       AND (NEW.entity_hub_id IS NULL OR TG_OP = 'UPDATE' AND NEW.entity IS DISTINCT FROM OLD.entity) THEN
        NEW.entity_hub_id := (SELECT c.hub_id FROM public.ns_customers c WHERE c.internalid = NEW.entity);
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER cdc_resolve_entity BEFORE INSERT OR UPDATE ON public.ns_opportunities
    FOR EACH ROW EXECUTE FUNCTION cdc.ns_opportunities_resolve_entity();

CREATE OR REPLACE FUNCTION cdc.on_sf_opportunity_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() > 1 OR cdc.onboard_settling() THEN
        RETURN NULL;       -- recursion guard, see cdc.on_sf_account_change
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM public.ns_opportunities
         WHERE hub_id = cdc.linked_hub_id('sf_opportunities', OLD.hub_id, 'ns_opportunities');
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    PERFORM cdc.sf_opportunity_to_ns(NEW.hub_id);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION cdc.on_ns_opportunity_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() > 1 OR cdc.onboard_settling() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        -- Deleted in NetSuite: Salesforce gets the opportunity marked deleted, its writer deletes it.
        UPDATE public.sf_opportunities
           SET isdeleted = true
         WHERE hub_id = cdc.linked_hub_id('ns_opportunities', OLD.hub_id, 'sf_opportunities')
           AND NOT isdeleted;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    PERFORM cdc.ns_opportunity_to_sf(NEW.hub_id);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER cdc_sf_opportunities_to_ns
    AFTER INSERT OR UPDATE OR DELETE ON public.sf_opportunities
    FOR EACH ROW EXECUTE FUNCTION cdc.on_sf_opportunity_change();

CREATE OR REPLACE TRIGGER cdc_ns_opportunities_to_sf
    AFTER INSERT OR UPDATE OR DELETE ON public.ns_opportunities
    FOR EACH ROW EXECUTE FUNCTION cdc.on_ns_opportunity_change();

-- Opportunities read before their account (same inbound poll, the account's query ran before the
-- account existed and the opportunity's after both did) carry only the Salesforce AccountId: attach
-- and map them when the account arrives, so none waits for a later edit. Named to run after
-- cdc_sf_accounts_to_ns, which creates the account's customer.
CREATE OR REPLACE FUNCTION cdc.on_sf_account_attach_opportunities() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF pg_trigger_depth() > 1 OR cdc.onboard_settling() OR NEW.id IS NULL OR TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id THEN
        RETURN NULL;
    END IF;
    FOR r IN UPDATE public.sf_opportunities SET account_hub_id = NEW.hub_id
              WHERE accountid = NEW.id AND account_hub_id IS NULL
             RETURNING hub_id LOOP
        PERFORM cdc.sf_opportunity_to_ns(r.hub_id);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER cdc_sf_accounts_to_ns_opportunities
    AFTER INSERT OR UPDATE OF id ON public.sf_accounts
    FOR EACH ROW EXECUTE FUNCTION cdc.on_sf_account_attach_opportunities();

-- The same in the other direction: opportunities read before their customer.
CREATE OR REPLACE FUNCTION cdc.on_ns_customer_attach_opportunities() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF pg_trigger_depth() > 1 OR cdc.onboard_settling() OR NEW.internalid IS NULL
       OR TG_OP = 'UPDATE' AND NEW.internalid IS NOT DISTINCT FROM OLD.internalid THEN
        RETURN NULL;
    END IF;
    FOR r IN UPDATE public.ns_opportunities SET entity_hub_id = NEW.hub_id
              WHERE entity = NEW.internalid AND entity_hub_id IS NULL
             RETURNING hub_id LOOP
        PERFORM cdc.ns_opportunity_to_sf(r.hub_id);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER cdc_ns_customers_to_sf_opportunities
    AFTER INSERT OR UPDATE OF internalid ON public.ns_customers
    FOR EACH ROW EXECUTE FUNCTION cdc.on_ns_customer_attach_opportunities();
