-- Registered process definitions (`POST /v1/definitions`, `approvals definitions register`) and handovers
-- (`POST /v1/handovers`, `approvals handover`).
--
-- A definition is registered under a name; each distinct content (its SHA-256 over canonical JSON) is a new
-- version, numbered from 1 per name; registering the same content again finds the version it already has.
-- A `generic` case started by name runs the version it started with for its whole life and names it in
-- `case.started`, so a version's row is never changed: retiring one (no new starts) is a row of its own in
-- `process_definition_retirements`. Both tables are append-only, like the audit log.
CREATE TABLE process_definitions (
    name          text        NOT NULL CHECK (name ~ '^[a-z][a-z0-9-]{0,63}$'),
    version       integer     NOT NULL CHECK (version >= 1),
    sha256        text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    definition    jsonb       NOT NULL,
    registered_by text        NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version),
    UNIQUE (name, sha256)
);

CREATE TABLE process_definition_retirements (
    name       text        NOT NULL,
    version    integer     NOT NULL,
    retired_by text        NOT NULL,
    reason     text        NOT NULL,
    retired_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version),
    FOREIGN KEY (name, version) REFERENCES process_definitions (name, version)
);

-- One row per handover request, by its idempotency key: the request and what happened to each task, so a
-- request sent again is answered with the same results instead of moving tasks twice.
CREATE TABLE handovers (
    idempotency_key text        PRIMARY KEY,
    requested_by    text        NOT NULL,
    request         jsonb       NOT NULL,
    request_sha256  text        NOT NULL CHECK (request_sha256 ~ '^[0-9a-f]{64}$'),
    results         jsonb       NOT NULL,
    handed_over_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION definitions_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['process_definitions', 'process_definition_retirements', 'handovers'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW '
                       'EXECUTE FUNCTION definitions_refuse_change()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION definitions_refuse_change()', t || '_no_truncate', t);
    END LOOP;
END
$$;

-- The app role (0008 explains why and how): the API registers, retires, hands over and reads.
DO $$
DECLARE
    app text := nullif(current_setting('approvals.app_role', true), '');
BEGIN
    IF app IS NOT NULL AND app <> current_user THEN
        EXECUTE format('GRANT SELECT, INSERT ON process_definitions, process_definition_retirements, handovers TO %I',
                       app);
    END IF;
END
$$;
