-- The opportunity pair under the same conflict detection, sync base and audit as the customer
-- tables (transforms/005_sync_tracking.sql, 015_sync_rules.sql). Besides deciding concurrent edits,
-- the sync base is what keeps a stale inbound re-read (the overlap window past
-- Inbound:MaxSeenRecords) from reverting a hub value not yet written to the system.
SELECT cdc.track_sync_table('sf_opportunities', 'salesforce', 'id');
SELECT cdc.track_sync_table('ns_opportunities', 'netsuite',   'internalid');

INSERT INTO cdc.conflict_policies (object, field, policy, priority_system, custom_function) VALUES
    ('sf_opportunities', '*', 'last_write_wins', NULL, NULL),
    ('ns_opportunities', '*', 'last_write_wins', NULL, NULL),
    -- Maintained by the systems themselves, or hub-only: never a conflict.
    ('sf_opportunities', 'systemmodstamp',   'ignore', NULL, NULL),
    ('sf_opportunities', 'lastmodifieddate', 'ignore', NULL, NULL),
    ('sf_opportunities', 'createddate',      'ignore', NULL, NULL),
    ('sf_opportunities', 'isclosed',         'ignore', NULL, NULL),
    ('sf_opportunities', 'iswon',            'ignore', NULL, NULL),
    ('sf_opportunities', 'account_hub_id',   'ignore', NULL, NULL),
    ('ns_opportunities', 'lastmodifieddate', 'ignore', NULL, NULL),
    ('ns_opportunities', 'datecreated',      'ignore', NULL, NULL),
    ('ns_opportunities', 'tranid',           'ignore', NULL, NULL),
    ('ns_opportunities', 'status',           'ignore', NULL, NULL),
    ('ns_opportunities', 'entity_hub_id',    'ignore', NULL, NULL)
ON CONFLICT (object, field) DO UPDATE
   SET policy = EXCLUDED.policy, priority_system = EXCLUDED.priority_system,
       custom_function = EXCLUDED.custom_function;
