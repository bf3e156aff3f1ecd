-- Staging tables of the shipped Salesforce <-> NetSuite example: one mirror table per object,
-- columns named like the APIs' fields in lower case (unquoted identifiers fold to lower case,
-- so `BillingStreet` typed in SQL works). hub_id is the hub's own key: a record exists in the
-- hub before either system has assigned its id.
--
-- REPLICA IDENTITY FULL: on DELETE the WAL must carry the old system ids (Id, internalId),
-- otherwise the outbound connectors could not tell the target which record to delete.
--
-- cdc_source_modified_at is the source system's modification stamp of the version we hold
-- (for last-write-wins). Nothing here changes on every sync without a data change: inbound
-- upserts that bring identical values must write nothing, or echoes would never die out.

-- Salesforce Account
CREATE TABLE public.sf_accounts (
    hub_id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    id                 text        UNIQUE,          -- 18-char Id; NULL until created in Salesforce
    name               text        NOT NULL,
    accountnumber      text,
    type               text,
    industry           text,
    phone              text,
    website            text,
    billingstreet      text,
    billingcity        text,
    billingstate       text,
    billingpostalcode  text,
    billingcountry     text,
    shippingstreet     text,
    shippingcity       text,
    shippingstate      text,
    shippingpostalcode text,
    shippingcountry    text,
    annualrevenue      numeric(18,0),
    numberofemployees  integer,
    ownerid            text,
    isdeleted          boolean     NOT NULL DEFAULT false,
    systemmodstamp     timestamptz,
    lastmodifieddate   timestamptz,
    createddate        timestamptz,
    netsuite_id__c     text,                        -- NetSuite internalId of the linked customer
    cdcsync_id__c      text        UNIQUE,          -- external id the connector upserts by
    cdc_source_modified_at timestamptz
);
ALTER TABLE public.sf_accounts REPLICA IDENTITY FULL;
-- Initial loads adopt an existing NetSuite customer through the NetSuite id custom field.
CREATE INDEX sf_accounts_netsuite_id_idx ON public.sf_accounts (netsuite_id__c);

-- Salesforce Contact
CREATE TABLE public.sf_contacts (
    hub_id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    id               text        UNIQUE,            -- NULL until created in Salesforce
    accountid        text,                          -- Salesforce Account Id
    -- Hub-side parent: accountid stays NULL until Salesforce has created the account, but the
    -- transforms need the parent from the first moment.
    account_hub_id   uuid        REFERENCES public.sf_accounts (hub_id) ON DELETE CASCADE,
    firstname        text,
    lastname         text        NOT NULL,
    email            text,
    phone            text,
    title            text,
    isdeleted        boolean     NOT NULL DEFAULT false,
    systemmodstamp   timestamptz,
    lastmodifieddate timestamptz,
    createddate      timestamptz,
    cdcsync_id__c    text        UNIQUE,
    cdc_source_modified_at timestamptz
);
ALTER TABLE public.sf_contacts REPLICA IDENTITY FULL;
-- Primary-contact lookup (and the FK cascade) go by parent, ordered by createddate.
CREATE INDEX sf_contacts_account_primary_idx ON public.sf_contacts (account_hub_id, createddate, hub_id);
-- Resolving account_hub_id from the Salesforce AccountId an inbound contact carries.
CREATE INDEX sf_contacts_accountid_idx ON public.sf_contacts (accountid);

-- NetSuite Customer (SuiteTalk REST field names, lower case)
CREATE TABLE public.ns_customers (
    hub_id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    internalid       text        UNIQUE,            -- NULL until created in NetSuite
    externalid       text        UNIQUE,
    entityid         text,
    companyname      text,
    isperson         boolean     NOT NULL DEFAULT false,
    firstname        text,
    lastname         text,
    email            text,
    phone            text,
    url              text,
    subsidiary       text,                          -- subsidiary internalId
    isinactive       boolean     NOT NULL DEFAULT false,
    -- addressBook items: {"defaultBilling":true,"defaultShipping":false,"label":"Billing",
    --                     "addressBookAddress":{"addr1":..,"city":..,"state":..,"zip":..,"country":"US"}}
    addressbook      jsonb       NOT NULL DEFAULT '[]'
                     CHECK (jsonb_typeof(addressbook) = 'array'),
    datecreated      timestamptz,
    lastmodifieddate timestamptz,
    cdc_source_modified_at timestamptz
);
ALTER TABLE public.ns_customers REPLICA IDENTITY FULL;

-- Salesforce upserts by cdcsync_id__c, so every row needs one from the moment it exists; the
-- hub_id is the natural stable value. A column DEFAULT cannot refer to another column, hence
-- the trigger. An inbound row that already carries a value keeps it.
CREATE FUNCTION cdc.default_cdcsync_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.cdcsync_id__c IS NULL THEN
        NEW.cdcsync_id__c := NEW.hub_id::text;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER cdc_default_cdcsync_id BEFORE INSERT ON public.sf_accounts
    FOR EACH ROW EXECUTE FUNCTION cdc.default_cdcsync_id();
CREATE TRIGGER cdc_default_cdcsync_id BEFORE INSERT ON public.sf_contacts
    FOR EACH ROW EXECUTE FUNCTION cdc.default_cdcsync_id();
