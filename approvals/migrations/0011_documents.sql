-- Official documents (公文) a case issues: their register, their numbers and their signed PDFs.
--
-- document_counters: one row per organ, series (代字) and year holding the last number given. A number is
-- taken by locking that row FOR UPDATE and inserting the register row in the same transaction, so numbers
-- are gapless and never reused: a rolled-back issue gives its number back with its row (a SEQUENCE is not
-- transactional and would leave a gap).
--
-- documents: the register, one row per document, its number unique per organ, series and year, keyed by
-- the issue's idempotency key (<workflow id>/<seq of the event that made it due>) so a retried activity
-- finds its document. document_files: the signed PDF, stored once with its SHA-256 (the digest the
-- workflow records in `document.issued`). Both are append-only, like audit_events.
CREATE TABLE document_counters (
    organ       text    NOT NULL,
    series      text    NOT NULL,
    year        integer NOT NULL,
    last_number integer NOT NULL CHECK (last_number >= 0),
    PRIMARY KEY (organ, series, year)
);

CREATE TABLE documents (
    document_id     text    PRIMARY KEY,
    idempotency_key text    NOT NULL UNIQUE,
    case_id         text    NOT NULL,
    kind            text    NOT NULL,
    title           text    NOT NULL,
    organ           text    NOT NULL,
    series          text    NOT NULL,
    year            integer NOT NULL,
    sequence        integer NOT NULL CHECK (sequence >= 1),
    number          text    NOT NULL,
    legal_basis     text    NOT NULL,
    issued_on       date    NOT NULL,
    registered_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organ, series, year, sequence)
);
CREATE INDEX documents_case_idx ON documents (case_id, registered_at);

CREATE TABLE document_files (
    document_id text        PRIMARY KEY REFERENCES documents (document_id),
    pdf         bytea       NOT NULL,
    sha256      text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    stored_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION documents_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER documents_append_only
    BEFORE UPDATE OR DELETE ON documents
    FOR EACH ROW EXECUTE FUNCTION documents_refuse_change();
CREATE TRIGGER documents_no_truncate
    BEFORE TRUNCATE ON documents
    FOR EACH STATEMENT EXECUTE FUNCTION documents_refuse_change();
CREATE TRIGGER document_files_append_only
    BEFORE UPDATE OR DELETE ON document_files
    FOR EACH ROW EXECUTE FUNCTION documents_refuse_change();
CREATE TRIGGER document_files_no_truncate
    BEFORE TRUNCATE ON document_files
    FOR EACH STATEMENT EXECUTE FUNCTION documents_refuse_change();

-- The app role (0008 explains why and how): the worker numbers, registers and stores; the API and the audit read.
DO $$
DECLARE
    app text := nullif(current_setting('approvals.app_role', true), '');
BEGIN
    IF app IS NOT NULL AND app <> current_user THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON document_counters TO %I', app);
        EXECUTE format('GRANT SELECT, INSERT ON documents, document_files TO %I', app);
    END IF;
END
$$;
