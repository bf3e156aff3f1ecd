-- The operator console (docs/operations.md, "Console"): its users, the worker's rolling history
-- of connector status that draws the lag chart, and operator actions in the audit trail.

-- People who may sign in to the console. password_hash is ASP.NET Core Identity's
-- PasswordHasher format (PBKDF2, salted, versioned); the password itself is never stored.
--   viewer    looks at everything
--   reviewer  also decides conflicts and onboarding matches
--   operator  also retries and discards dead letters
CREATE TABLE cdc.console_users (
    name          text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role          text        NOT NULL CHECK (role IN ('viewer', 'reviewer', 'operator')),
    password_hash text        NOT NULL,
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_sign_in  timestamptz
);

-- Each connector's lag and rate as the leading worker recorded them with its status (every few
-- seconds), kept about an hour: the console's chart, also when the console runs without a worker.
-- api_used/api_allowed: the system's daily API allowance as it last reported it (NULL: none).
CREATE TABLE cdc.status_history (
    connector         text             NOT NULL,
    recorded_at       timestamptz      NOT NULL DEFAULT now(),
    lag_bytes         bigint           NOT NULL,
    lag_seconds       double precision NOT NULL,
    events_per_second double precision NOT NULL,
    api_used          bigint,
    api_allowed       bigint,
    PRIMARY KEY (connector, recorded_at)
);
CREATE INDEX status_history_recorded_idx ON cdc.status_history (recorded_at);

-- A person's action (a conflict decided, a dead letter retried) is an audit row like a change:
-- direction 'operator', the person in actor, what they did in operation and changes.
ALTER TABLE cdc.audit_log ADD COLUMN actor text;
ALTER TABLE cdc.audit_log DROP CONSTRAINT IF EXISTS audit_log_direction_check;
ALTER TABLE cdc.audit_log ADD CONSTRAINT audit_log_direction_check
    CHECK (direction IN ('inbound', 'outbound', 'operator'));

-- A record (a dead letter's payload, a staging row) with the values of sensitive fields
-- (cdc.sensitive_fields, matched case-insensitively at any depth) replaced by '***', NULL kept
-- NULL: what the console shows, masked as the audit trail is.
CREATE FUNCTION cdc.mask_record(p_object text, p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bare text := regexp_replace(p_object, '^.*\.', '');
BEGIN
    IF jsonb_typeof(p_value) = 'object' THEN
        RETURN (SELECT coalesce(jsonb_object_agg(f.key,
                    CASE WHEN f.value <> 'null'::jsonb
                              AND EXISTS (SELECT 1 FROM cdc.sensitive_fields s
                                           WHERE lower(s.field) = lower(f.key) AND s.object IN (p_object, bare, '*'))
                         THEN '"***"'::jsonb
                         ELSE cdc.mask_record(p_object, f.value) END), '{}'::jsonb)
                  FROM jsonb_each(p_value) f);
    ELSIF jsonb_typeof(p_value) = 'array' THEN
        RETURN (SELECT coalesce(jsonb_agg(cdc.mask_record(p_object, e.value) ORDER BY e.n), '[]'::jsonb)
                  FROM jsonb_array_elements(p_value) WITH ORDINALITY e(value, n));
    END IF;
    RETURN p_value;
END
$$;

-- The console's cookie keys (ASP.NET Core Data Protection XML), shared by every worker and
-- standalone console on this hub, so a sign-in outlives a restart and works on each of them.
CREATE TABLE cdc.console_keys (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    xml        text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
