-- Slots CdcSync created. A slot recorded here but missing from pg_replication_slots was dropped
-- behind our back: the WAL between the last checkpoint and now is gone, and the worker must
-- refuse to start (and point to resync) instead of silently creating a new slot over the gap.
CREATE TABLE IF NOT EXISTS cdc.slots (
    slot        text PRIMARY KEY,
    publication text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_lsn pg_lsn
);
