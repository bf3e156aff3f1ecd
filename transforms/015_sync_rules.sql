-- Which staging tables are under conflict detection and audit, how their conflicts are decided,
-- and which fields the audit trail masks. Rules stay in SQL like the mapping: edit this file and
-- `cdcsync migrate` (re-run whenever it changes, so every statement is idempotent). Policies are
-- documented in docs/CONFLICTS.md.

SELECT cdc.track_sync_table('sf_accounts',  'salesforce', 'id');
SELECT cdc.track_sync_table('sf_contacts',  'salesforce', 'id');
SELECT cdc.track_sync_table('ns_customers', 'netsuite',   'internalid');

-- The shipped example runs unattended: last write wins (by the systems' own modified stamps)
-- everywhere. Per-field rules go next to these, e.g. NetSuite owning the billing city:
--   ('sf_accounts', 'billingcity', 'source_priority', 'netsuite', NULL)
-- or manual review of a field:
--   ('ns_customers', 'email', 'manual', NULL, NULL)
INSERT INTO cdc.conflict_policies (object, field, policy, priority_system, custom_function) VALUES
    ('sf_accounts',  '*', 'last_write_wins', NULL, NULL),
    ('sf_contacts',  '*', 'last_write_wins', NULL, NULL),
    ('ns_customers', '*', 'last_write_wins', NULL, NULL),
    -- Maintained by the systems themselves, or hub-only: never a conflict.
    ('sf_accounts',  'systemmodstamp',   'ignore', NULL, NULL),
    ('sf_accounts',  'lastmodifieddate', 'ignore', NULL, NULL),
    ('sf_accounts',  'createddate',      'ignore', NULL, NULL),
    ('sf_contacts',  'systemmodstamp',   'ignore', NULL, NULL),
    ('sf_contacts',  'lastmodifieddate', 'ignore', NULL, NULL),
    ('sf_contacts',  'createddate',      'ignore', NULL, NULL),
    ('sf_contacts',  'account_hub_id',   'ignore', NULL, NULL),
    ('ns_customers', 'lastmodifieddate', 'ignore', NULL, NULL),
    ('ns_customers', 'datecreated',      'ignore', NULL, NULL)
ON CONFLICT (object, field) DO UPDATE
   SET policy = EXCLUDED.policy, priority_system = EXCLUDED.priority_system,
       custom_function = EXCLUDED.custom_function;

-- Masked in cdc.audit_log ('***'): personal contact data.
INSERT INTO cdc.sensitive_fields (object, field) VALUES
    ('*', 'email')
ON CONFLICT DO NOTHING;
