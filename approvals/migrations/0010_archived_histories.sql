-- The Temporal history of every closed workflow run, kept by the engine (approvals/audit/archive.py).
--
-- Why: Temporal deletes a closed run's history once the namespace's retention has passed (24 h on the dev
-- server, 30 days in the compose file), and a government record must be verifiable and replayable for years.
-- The worker's archiver copies each run that closed (completed, failed, terminated, continued as new, ...)
-- here; verification, export and replay read a run from here when Temporal no longer has it.
--
-- `history` is the run's history as `temporal workflow show --output json` prints it
-- (`WorkflowHistory.to_json()`, UTF-8), the form the replayer and the bundles read; `sha256` is its digest,
-- checked whenever it is read back. `task_queue` and `closed_at` let each archiver pass ask Temporal's
-- visibility only for runs that closed since its last pass.
--
-- Append-only like audit_events: a run's history never changes once it closed, so a row is written once
-- (the archiver inserts with ON CONFLICT DO NOTHING) and never updated or deleted (self-contained trigger
-- function, as in 0007). The app role gets INSERT and SELECT only.
CREATE TABLE archived_histories (
    workflow_id     text        NOT NULL,
    run_id          text        NOT NULL,
    task_queue      text        NOT NULL,
    close_status    text        NOT NULL,
    closed_at       timestamptz NOT NULL,
    continued_from  text,
    history_events  integer     NOT NULL CHECK (history_events > 0),
    history         bytea       NOT NULL,
    sha256          text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    archived_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, run_id)
);
CREATE INDEX archived_histories_queue_closed_idx ON archived_histories (task_queue, closed_at);

CREATE FUNCTION archived_histories_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER archived_histories_append_only
    BEFORE UPDATE OR DELETE ON archived_histories
    FOR EACH ROW EXECUTE FUNCTION archived_histories_refuse_change();
CREATE TRIGGER archived_histories_no_truncate
    BEFORE TRUNCATE ON archived_histories
    FOR EACH STATEMENT EXECUTE FUNCTION archived_histories_refuse_change();

-- The app role (0008 explains why and how): the worker's archiver inserts, verification and export read.
DO $$
DECLARE
    app text := nullif(current_setting('approvals.app_role', true), '');
BEGIN
    IF app IS NOT NULL AND app <> current_user THEN
        EXECUTE format('GRANT SELECT, INSERT ON archived_histories TO %I', app);
    END IF;
END
$$;
