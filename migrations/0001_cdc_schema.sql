-- Pipeline state of CdcSync, kept in the hub next to the data it describes so that a
-- connector's batch write and its progress can commit in one transaction.
-- Run once by DbUp (which also keeps its journal in this schema), inside a transaction.

CREATE SCHEMA IF NOT EXISTS cdc;

-- The commit LSN each connector has fully applied. The replication slot is acknowledged only
-- up to the lowest of these, so a row here is what makes "nothing lost" survive a crash.
CREATE TABLE cdc.checkpoints (
    connector  text        PRIMARY KEY,
    lsn        pg_lsn      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Where each inbound connector resumes reading its source system (an opaque token per object:
-- a SystemModstamp, a NetSuite lastModifiedDate, a sequence number...).
CREATE TABLE cdc.inbound_cursors (
    connector  text        NOT NULL,
    object     text        NOT NULL,
    cursor     text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector, object)
);

-- Which hub rows are the same real-world record in different systems. Rows sharing a link_id
-- are one record; at most one row per staging table (object) per link. Transforms find their
-- counterpart through this table, never by matching names, so renames and duplicates in one
-- system cannot cross-wire records.
CREATE TABLE cdc.identity_links (
    link_id    uuid        NOT NULL,
    object     text        NOT NULL,              -- staging table name, e.g. 'sf_accounts'
    hub_id     uuid        NOT NULL,              -- hub_id of the row in that table
    system     text        NOT NULL,              -- 'salesforce', 'netsuite', ...
    record_id  text,                              -- the system's own id once it is known
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (object, hub_id),
    UNIQUE (link_id, object)
);
-- Inbound connectors and operators look records up by the id the source system reports.
CREATE INDEX identity_links_system_record_idx ON cdc.identity_links (system, record_id);

-- Records a target rejected (or a transform raised on). Repeated failures of the same record
-- bump attempts on the one open row instead of piling up, hence the partial unique index.
CREATE TABLE cdc.dead_letters (
    id         bigserial   PRIMARY KEY,
    connector  text        NOT NULL,
    object     text        NOT NULL,
    record_key text        NOT NULL,
    payload    jsonb       NOT NULL,
    error      text        NOT NULL,
    attempts   int         NOT NULL DEFAULT 1,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    commit_lsn pg_lsn,
    status     text        NOT NULL DEFAULT 'open'
               CHECK (status IN ('open', 'retried', 'discarded'))
);
CREATE UNIQUE INDEX dead_letters_open_record_uq
    ON cdc.dead_letters (connector, object, record_key) WHERE status = 'open';
CREATE INDEX dead_letters_status_last_seen_idx ON cdc.dead_letters (status, last_seen);

-- Concurrent changes decided by policy; 'open' rows wait for manual review.
CREATE TABLE cdc.conflicts (
    id              bigserial   PRIMARY KEY,
    connector       text        NOT NULL,
    object          text        NOT NULL,
    record_key      text        NOT NULL,
    policy          text        NOT NULL,
    hub_values      jsonb,
    incoming_values jsonb,
    decision        text,
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     text
);
CREATE INDEX conflicts_status_idx ON cdc.conflicts (status);
CREATE INDEX conflicts_record_idx ON cdc.conflicts (object, record_key);

-- One row per change applied to a system, in either direction, for "what happened to X".
CREATE TABLE cdc.audit_log (
    id         bigserial   PRIMARY KEY,
    connector  text        NOT NULL,
    direction  text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    object     text        NOT NULL,
    record_key text        NOT NULL,
    operation  text        NOT NULL,
    commit_lsn pg_lsn,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_connector_applied_idx ON cdc.audit_log (connector, applied_at);
CREATE INDEX audit_log_record_idx ON cdc.audit_log (object, record_key);
