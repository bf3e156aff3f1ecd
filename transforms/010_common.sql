-- Shared helpers of the transforms: identity links, value normalization, the primary contact
-- rule, address-book access. Re-run by `cdcsync migrate` whenever this file changes, so
-- everything here is CREATE OR REPLACE.

-- ---------------------------------------------------------------------------------------
-- Identity links
-- ---------------------------------------------------------------------------------------

-- Staging tables are named <system prefix>_<object>; the link row records the system so that
-- lookups by a system's record id do not need to know the table.
CREATE OR REPLACE FUNCTION cdc.system_of(obj text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE split_part(obj, '_', 1)
               WHEN 'sf' THEN 'salesforce'
               WHEN 'ns' THEN 'netsuite'
               ELSE split_part(obj, '_', 1)
           END
$$;

CREATE OR REPLACE FUNCTION cdc.link_id_of(obj text, hub_id uuid) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT l.link_id FROM cdc.identity_links l WHERE l.object = obj AND l.hub_id = link_id_of.hub_id
$$;

-- The hub row of other_obj that is the same record as (obj, hub_id), or NULL when unlinked.
CREATE OR REPLACE FUNCTION cdc.linked_hub_id(obj text, hub_id uuid, other_obj text) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT o.hub_id
      FROM cdc.identity_links s
      JOIN cdc.identity_links o ON o.link_id = s.link_id AND o.object = other_obj
     WHERE s.object = obj AND s.hub_id = linked_hub_id.hub_id
$$;

-- Declares (obj_a, hub_a) and (obj_b, hub_b) the same record and returns the link id.
-- Idempotent. Refuses to silently re-point a row that is already linked elsewhere: that would
-- merge two real-world records, which only an operator can decide.
CREATE OR REPLACE FUNCTION cdc.link(obj_a text, hub_a uuid, obj_b text, hub_b uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    link_a uuid := cdc.link_id_of(obj_a, hub_a);
    link_b uuid := cdc.link_id_of(obj_b, hub_b);
    link   uuid;
BEGIN
    IF obj_a IS NULL OR hub_a IS NULL OR obj_b IS NULL OR hub_b IS NULL THEN
        RAISE EXCEPTION 'cdc.link: object and hub_id must not be NULL';
    END IF;
    IF obj_a = obj_b THEN
        RAISE EXCEPTION 'cdc.link: cannot link two rows of the same table % (% and %)', obj_a, hub_a, hub_b;
    END IF;
    IF link_a IS NOT NULL AND link_b IS NOT NULL AND link_a <> link_b THEN
        RAISE EXCEPTION 'cdc.link: %/% and %/% are already linked to different records (links % and %)',
            obj_a, hub_a, obj_b, hub_b, link_a, link_b;
    END IF;
    link := coalesce(link_a, link_b, gen_random_uuid());
    -- Two keyed probes, each on the (link_id, object) key.
    IF EXISTS (SELECT 1 FROM cdc.identity_links l WHERE l.link_id = link AND l.object = obj_a AND l.hub_id <> hub_a)
       OR EXISTS (SELECT 1 FROM cdc.identity_links l WHERE l.link_id = link AND l.object = obj_b AND l.hub_id <> hub_b) THEN
        RAISE EXCEPTION 'cdc.link: link % already holds another row of % or %', link, obj_a, obj_b;
    END IF;

    INSERT INTO cdc.identity_links (link_id, object, hub_id, system)
    VALUES (link, obj_a, hub_a, cdc.system_of(obj_a)),
           (link, obj_b, hub_b, cdc.system_of(obj_b))
    ON CONFLICT (object, hub_id) DO NOTHING;
    RETURN link;
END
$$;

-- Records the system's id of a linked row once the system has assigned it. Writes only when
-- the value changes; does nothing for unlinked rows. plpgsql keeps the statement's plan for the
-- session: called by every mapping trigger, a SQL function was planned again on each call.
CREATE OR REPLACE FUNCTION cdc.set_record_id(obj text, hub_id uuid, record_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cdc.identity_links l
       SET record_id = set_record_id.record_id
     WHERE l.object = obj AND l.hub_id = set_record_id.hub_id
       AND set_record_id.record_id IS NOT NULL
       AND l.record_id IS DISTINCT FROM set_record_id.record_id;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Value normalization. Each function is idempotent (f(f(x)) = f(x)): the transforms compare
-- values through these functions in both directions, which is what keeps an echo of our own
-- write from being seen as a change (round-trip stability).
-- ---------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cdc.blank_to_null(value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(btrim(value), '')
$$;

-- NetSuite stores digits with an optional leading '+'; Salesforce keeps whatever users typed.
-- '(415) 555-0100' -> '4155550100', '+49 30 1234' -> '+49301234'.
CREATE OR REPLACE FUNCTION cdc.normalize_phone(phone text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
               WHEN digits = '' THEN NULL
               WHEN btrim(phone) LIKE '+%' THEN '+' || digits
               ELSE digits
           END
      FROM (SELECT regexp_replace(phone, '[^0-9]', '', 'g') AS digits) d
$$;

-- The number a phone value denotes, for comparing values (never written anywhere): what
-- normalize_phone keeps, with a North American number written with its country code
-- ('+1 415-555-0100', '1 415 555 0100') equal to the 10-digit national form NetSuite holds
-- ('4155550100'). Two values with the same key are the same phone: neither side rewrites the other.
CREATE OR REPLACE FUNCTION cdc.phone_key(phone text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p ~ '^\+?1[2-9][0-9]{9}$' THEN right(p, 10) ELSE p END
      FROM (SELECT cdc.normalize_phone(phone) AS p) n
$$;

-- NetSuite rejects a url without a scheme; Salesforce Website is free text. 'acme.com' ->
-- 'https://acme.com'; a url that has a scheme is left as it is.
CREATE OR REPLACE FUNCTION cdc.normalize_url(url text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
               WHEN cdc.blank_to_null(url) IS NULL THEN NULL
               WHEN btrim(url) ~* '^[a-z][a-z0-9+.-]*://' THEN btrim(url)
               ELSE 'https://' || btrim(url)
           END
$$;

-- The resource a url value denotes, for comparing values (never written anywhere): scheme and
-- host are case-insensitive and a bare trailing '/' adds nothing, so 'ACME.com/' and
-- 'https://acme.com' are the same website.
CREATE OR REPLACE FUNCTION cdc.url_key(url text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN m IS NULL THEN u
                ELSE lower(m[1]) || lower(m[2]) || CASE WHEN m[3] = '/' THEN '' ELSE m[3] END
           END
      FROM (SELECT cdc.normalize_url(url) AS u) n,
           LATERAL (SELECT regexp_match(n.u, '^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)(.*)$') AS m) p
$$;

-- NetSuite companyName holds at most 83 characters. Cutting can leave a trailing blank, which
-- NetSuite would strip on its side, so strip it here too or the echo would differ.
CREATE OR REPLACE FUNCTION cdc.ns_company_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT cdc.blank_to_null(left(btrim(name), 83))
$$;

-- Salesforce BillingCountry is free text; NetSuite wants an ISO 3166 alpha-2 code. Known names
-- and aliases map to their code, any other two-letter value passes through as a code, anything
-- else maps to NULL (NetSuite would reject it; extend this list instead).
CREATE OR REPLACE FUNCTION cdc.country_code(country text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE k
               WHEN 'UNITED STATES' THEN 'US' WHEN 'UNITED STATES OF AMERICA' THEN 'US'
               WHEN 'USA' THEN 'US' WHEN 'U S A' THEN 'US' WHEN 'U S' THEN 'US' WHEN 'AMERICA' THEN 'US'
               WHEN 'GERMANY' THEN 'DE' WHEN 'DEUTSCHLAND' THEN 'DE'
               WHEN 'UNITED KINGDOM' THEN 'GB' WHEN 'UK' THEN 'GB' WHEN 'GREAT BRITAIN' THEN 'GB'
               WHEN 'ENGLAND' THEN 'GB'
               WHEN 'CANADA' THEN 'CA' WHEN 'MEXICO' THEN 'MX' WHEN 'FRANCE' THEN 'FR'
               WHEN 'SPAIN' THEN 'ES' WHEN 'ITALY' THEN 'IT' WHEN 'NETHERLANDS' THEN 'NL'
               WHEN 'THE NETHERLANDS' THEN 'NL' WHEN 'HOLLAND' THEN 'NL'
               WHEN 'BELGIUM' THEN 'BE' WHEN 'SWITZERLAND' THEN 'CH' WHEN 'AUSTRIA' THEN 'AT'
               WHEN 'IRELAND' THEN 'IE' WHEN 'SWEDEN' THEN 'SE' WHEN 'NORWAY' THEN 'NO'
               WHEN 'DENMARK' THEN 'DK' WHEN 'FINLAND' THEN 'FI' WHEN 'POLAND' THEN 'PL'
               WHEN 'PORTUGAL' THEN 'PT' WHEN 'AUSTRALIA' THEN 'AU' WHEN 'NEW ZEALAND' THEN 'NZ'
               WHEN 'JAPAN' THEN 'JP' WHEN 'CHINA' THEN 'CN' WHEN 'INDIA' THEN 'IN'
               WHEN 'SINGAPORE' THEN 'SG' WHEN 'BRAZIL' THEN 'BR'
               ELSE CASE WHEN k ~ '^[A-Z]{2}$' THEN k END
           END
      FROM (SELECT upper(btrim(regexp_replace(country, '[.[:space:]]+', ' ', 'g'))) AS k) n
$$;

-- The name Salesforce gets for a NetSuite country code: the canonical English name for known
-- codes, the value itself otherwise. country_code(country_name(x)) = country_code(x) holds for
-- every x, which the round-trip rule relies on.
CREATE OR REPLACE FUNCTION cdc.country_name(code text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE upper(btrim(code))
               WHEN 'US' THEN 'United States' WHEN 'DE' THEN 'Germany' WHEN 'GB' THEN 'United Kingdom'
               WHEN 'CA' THEN 'Canada' WHEN 'MX' THEN 'Mexico' WHEN 'FR' THEN 'France'
               WHEN 'ES' THEN 'Spain' WHEN 'IT' THEN 'Italy' WHEN 'NL' THEN 'Netherlands'
               WHEN 'BE' THEN 'Belgium' WHEN 'CH' THEN 'Switzerland' WHEN 'AT' THEN 'Austria'
               WHEN 'IE' THEN 'Ireland' WHEN 'SE' THEN 'Sweden' WHEN 'NO' THEN 'Norway'
               WHEN 'DK' THEN 'Denmark' WHEN 'FI' THEN 'Finland' WHEN 'PL' THEN 'Poland'
               WHEN 'PT' THEN 'Portugal' WHEN 'AU' THEN 'Australia' WHEN 'NZ' THEN 'New Zealand'
               WHEN 'JP' THEN 'Japan' WHEN 'CN' THEN 'China' WHEN 'IN' THEN 'India'
               WHEN 'SG' THEN 'Singapore' WHEN 'BR' THEN 'Brazil'
               ELSE cdc.blank_to_null(code)
           END
$$;

-- A Salesforce street is multi-line; NetSuite has addr1..addr3. Lines beyond the third are
-- joined into addr3 so nothing is lost. Always returns a 3-element array (NULL for absent).
CREATE OR REPLACE FUNCTION cdc.street_lines(street text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[cdc.blank_to_null(l[1]), cdc.blank_to_null(l[2]),
                 cdc.blank_to_null(array_to_string(l[3:], ', '))]
      FROM (SELECT regexp_split_to_array(coalesce(btrim(street, E' \t\r\n'), ''),
                                         E'[ \t]*\r?\n[ \t]*') AS l) s
$$;

CREATE OR REPLACE FUNCTION cdc.street_from_lines(addr1 text, addr2 text, addr3 text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(concat_ws(E'\n', cdc.blank_to_null(addr1), cdc.blank_to_null(addr2),
                            cdc.blank_to_null(addr3)), '')
$$;

-- ---------------------------------------------------------------------------------------
-- NetSuite address book: the Billing* fields of Salesforce correspond to the entry flagged
-- defaultBilling. Other entries belong to NetSuite users and are never touched.
-- ---------------------------------------------------------------------------------------

-- 0-based position of the default billing entry, NULL when there is none. NetSuite sends the
-- flag as a JSON boolean; a string "true" is accepted too.
CREATE OR REPLACE FUNCTION cdc.ns_default_billing_index(addressbook jsonb) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT (e.ord - 1)::int
      FROM jsonb_array_elements(coalesce(addressbook, '[]')) WITH ORDINALITY AS e(entry, ord)
     WHERE lower(e.entry ->> 'defaultBilling') = 'true'
     ORDER BY e.ord
     LIMIT 1
$$;

-- The default billing address, blank values as NULL.
CREATE OR REPLACE FUNCTION cdc.ns_billing_address(addressbook jsonb,
    OUT addr1 text, OUT addr2 text, OUT addr3 text, OUT city text, OUT state text,
    OUT zip text, OUT country text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT cdc.blank_to_null(a ->> 'addr1'), cdc.blank_to_null(a ->> 'addr2'),
           cdc.blank_to_null(a ->> 'addr3'), cdc.blank_to_null(a ->> 'city'),
           cdc.blank_to_null(a ->> 'state'), cdc.blank_to_null(a ->> 'zip'),
           cdc.blank_to_null(a ->> 'country')
      FROM (SELECT coalesce(addressbook -> cdc.ns_default_billing_index(addressbook)
                            -> 'addressBookAddress', '{}') AS a) b
$$;

-- Sets key to value in an address object; NULL removes the key (NetSuite reads an absent key
-- and null alike, and we never invent an empty string).
CREATE OR REPLACE FUNCTION cdc.jsonb_put(obj jsonb, key text, value text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN obj - key ELSE obj || jsonb_build_object(key, value) END
$$;

-- The address book with the default billing entry carrying the given Salesforce Billing*
-- values. A key is rewritten only when its current value is not already equivalent (same
-- text, or same country code), so a NetSuite-formatted value survives and an unchanged input
-- returns the address book unchanged. Without a billing entry one is appended, unless there is
-- no billing address at all.
CREATE OR REPLACE FUNCTION cdc.ns_merge_billing(addressbook jsonb, street text, city text,
    state text, postalcode text, country text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    book  jsonb := coalesce(addressbook, '[]');
    idx   int := cdc.ns_default_billing_index(book);
    addr  jsonb := coalesce(book -> idx -> 'addressBookAddress', '{}');
    cur   record := cdc.ns_billing_address(book);
    lines text[] := cdc.street_lines(street);
    merged jsonb;
BEGIN
    merged := addr;
    IF ARRAY[cur.addr1, cur.addr2, cur.addr3] IS DISTINCT FROM lines THEN
        merged := cdc.jsonb_put(cdc.jsonb_put(cdc.jsonb_put(merged,
                    'addr1', lines[1]), 'addr2', lines[2]), 'addr3', lines[3]);
    END IF;
    IF cur.city IS DISTINCT FROM cdc.blank_to_null(city) THEN
        merged := cdc.jsonb_put(merged, 'city', cdc.blank_to_null(city));
    END IF;
    IF cur.state IS DISTINCT FROM cdc.blank_to_null(state) THEN
        merged := cdc.jsonb_put(merged, 'state', cdc.blank_to_null(state));
    END IF;
    IF cur.zip IS DISTINCT FROM cdc.blank_to_null(postalcode) THEN
        merged := cdc.jsonb_put(merged, 'zip', cdc.blank_to_null(postalcode));
    END IF;
    IF cdc.country_code(cur.country) IS DISTINCT FROM cdc.country_code(country) THEN
        merged := cdc.jsonb_put(merged, 'country', cdc.country_code(country));
    END IF;

    IF merged = addr THEN
        RETURN book;
    ELSIF idx IS NULL THEN
        RETURN book || jsonb_build_array(jsonb_build_object(
            'defaultBilling', true, 'defaultShipping', false, 'label', 'Billing',
            'addressBookAddress', merged));
    ELSE
        RETURN jsonb_set(book, ARRAY[idx::text, 'addressBookAddress'], merged);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Salesforce account structure
-- ---------------------------------------------------------------------------------------

-- The contact whose email (and phone, as fallback) represents the account in NetSuite: the
-- earliest created non-deleted contact, lowest hub_id on a tie. Contacts the hub created
-- itself have no createddate yet and sort last. Change the rule here; both directions use it.
CREATE OR REPLACE FUNCTION cdc.primary_contact_hub_id(account_hub_id uuid) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT c.hub_id
      FROM public.sf_contacts c
     WHERE c.account_hub_id = primary_contact_hub_id.account_hub_id
       AND NOT c.isdeleted
     ORDER BY c.createddate NULLS LAST, c.hub_id
     LIMIT 1
$$;

-- The Account.Name for a customer (NS->SF; SF->NS uses it to recognize a stand-in name): individuals are named after the person, companies after
-- companyName (Name is required, so fall back to entityId, then a placeholder).
CREATE OR REPLACE FUNCTION cdc.sf_account_name(n public.ns_customers) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN n.isperson
                THEN coalesce(cdc.blank_to_null(concat_ws(' ', cdc.blank_to_null(n.firstname),
                                                          cdc.blank_to_null(n.lastname))),
                              cdc.blank_to_null(n.companyname), cdc.blank_to_null(n.entityid),
                              '[not provided]')
                ELSE coalesce(cdc.blank_to_null(n.companyname), cdc.blank_to_null(n.entityid),
                              '[not provided]')
           END
$$;

-- Inbound contacts carry Salesforce's AccountId; hub-made contacts carry only account_hub_id.
-- Keep the two consistent at any trigger depth so both the transforms (hub side) and the
-- Salesforce writer (AccountId) find the parent.
CREATE OR REPLACE FUNCTION cdc.sf_contacts_resolve_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.accountid IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.accountid IS DISTINCT FROM OLD.accountid
            OR NEW.account_hub_id IS NULL) THEN
        NEW.account_hub_id := coalesce(
            (SELECT a.hub_id FROM public.sf_accounts a WHERE a.id = NEW.accountid),
            NEW.account_hub_id);
    ELSIF NEW.accountid IS NULL AND NEW.account_hub_id IS NOT NULL THEN
        NEW.accountid := (SELECT a.id FROM public.sf_accounts a WHERE a.hub_id = NEW.account_hub_id);
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER cdc_resolve_account BEFORE INSERT OR UPDATE ON public.sf_contacts
    FOR EACH ROW EXECUTE FUNCTION cdc.sf_contacts_resolve_account();

-- The root subsidiary of a NetSuite OneWorld account has internalId 1; customers created from
-- Salesforce go there unless you change this.
CREATE OR REPLACE FUNCTION cdc.ns_default_subsidiary() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '1' $$;
