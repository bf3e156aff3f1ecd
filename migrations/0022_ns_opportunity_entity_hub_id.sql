-- The hub-side parent of a NetSuite opportunity, like sf_opportunities.account_hub_id: the hub
-- row of its customer, known before NetSuite has created that customer. The transform fills it at
-- once; the NetSuite outbound connector resolves `entity` from the parent's internalid at send time
-- (Records[].Lookups), so an opportunity made together with its account never waits for a later edit.
ALTER TABLE public.ns_opportunities
    ADD COLUMN entity_hub_id uuid REFERENCES public.ns_customers (hub_id) ON DELETE SET NULL;
CREATE INDEX ns_opportunities_entity_hub_idx ON public.ns_opportunities (entity_hub_id);
