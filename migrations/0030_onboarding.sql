-- Onboarding: connecting systems that already hold data. Both systems are loaded into the hub
-- first, records describing the same customer are matched by rules kept in SQL
-- (transforms/050_matching.sql), doubtful matches wait for review, and only then is anything
-- created on the other side. See docs/TRANSFORMS.md, "Matching and onboarding".

-- One row per inbound connector that is being (or was) onboarded. While any row is not
-- 'settled', the transforms create nothing on the other side for records that are not linked yet
-- (cdc.onboarding_active()).
CREATE TABLE cdc.onboarding (
    connector      text        PRIMARY KEY,
    phase          text        NOT NULL CHECK (phase IN ('loading', 'loaded', 'settled')),
    started_at     timestamptz,
    loaded_at      timestamptz,
    settled_at     timestamptz,
    records_loaded bigint      NOT NULL DEFAULT 0
);

-- What matching decided, one row per (record, candidate).
--   linked    a unique confident match, linked by cdc.onboard_match() (link_id set)
--   review    held for a person: a tie or a weak match. A review is one record (object_a,
--             hub_a) with all its candidates (object_b, hub_b), one row per candidate; the rows
--             of one open review share (object_a, hub_a), and the review's id is the lowest id
--             among them (cdc.match_review). Every record named in an open review, on either
--             side, is held: nothing is created for it on the other side until decided.
--   accepted  a review decided by cdc.match_accept (link_id set); the group's other candidates
--             become 'rejected'
--   rejected  a review decided by cdc.match_reject: the record is created as new on the other side
--   unlinked  a link undone by cdc.match_unlink; the two records stand alone in a new review
-- keys: the match keys that agreed and their weights, e.g. {"name": 0.6, "phone": 0.4}.
-- settled_at: when cdc.onboard_settle() (or a decision after onboarding) merged the linked pair.
CREATE TABLE cdc.match_candidates (
    id         bigserial   PRIMARY KEY,
    object_a   text        NOT NULL,
    hub_a      uuid        NOT NULL,
    object_b   text,
    hub_b      uuid,
    score      numeric,
    keys       jsonb       NOT NULL DEFAULT '{}',
    status     text        NOT NULL CHECK (status IN ('linked', 'review', 'accepted', 'rejected', 'unlinked')),
    link_id    uuid,
    decided_by text,
    decided_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    settled_at timestamptz
);
-- The transforms ask "is this record held?" inside inbound writes: keyed, and only open rows.
CREATE INDEX match_candidates_open_a_idx ON cdc.match_candidates (object_a, hub_a) WHERE status = 'review';
CREATE INDEX match_candidates_open_b_idx ON cdc.match_candidates (object_b, hub_b) WHERE status = 'review';
CREATE INDEX match_candidates_unsettled_a_idx ON cdc.match_candidates (object_a, hub_a)
    WHERE status IN ('linked', 'accepted') AND settled_at IS NULL;
CREATE INDEX match_candidates_unsettled_b_idx ON cdc.match_candidates (object_b, hub_b)
    WHERE status IN ('linked', 'accepted') AND settled_at IS NULL;
CREATE INDEX match_candidates_link_idx ON cdc.match_candidates (link_id);
CREATE INDEX match_candidates_pair_idx ON cdc.match_candidates (hub_a, hub_b);

-- The match keys and their weights: a pair's score is the sum of the weights of the keys whose
-- values agree. Filled (and kept) by transforms/050_matching.sql; edit the weights there.
CREATE TABLE cdc.match_keys (
    key         text    PRIMARY KEY,
    weight      numeric NOT NULL CHECK (weight >= 0),
    description text
);
