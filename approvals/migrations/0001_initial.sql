-- Initial schema: the append-only audit log, the projections the inbox reads, the notification outbox
-- and the record of refused actions.

-- Every domain event, hash-chained per case. Rows are only ever inserted: the trigger below refuses
-- UPDATE, DELETE and TRUNCATE, so a change needs a deliberate `ALTER TABLE ... DISABLE TRIGGER` that
-- itself shows up in the server log, and the hash chain exposes it anyway.
CREATE TABLE audit_events (
    case_id      text        NOT NULL,
    seq          integer     NOT NULL CHECK (seq >= 1),
    type         text        NOT NULL,
    actor_id     text        NOT NULL,
    actor_name   text        NOT NULL DEFAULT '',
    actor_roles  text[]      NOT NULL DEFAULT '{}',
    actor_unit   text        NOT NULL DEFAULT '',
    at           timestamptz NOT NULL,
    legal_basis  text        NOT NULL,
    stage_id     text,
    task_id      text,
    payload      jsonb       NOT NULL DEFAULT '{}',
    prev_hash    text        NOT NULL,
    hash         text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, seq)
);
COMMENT ON COLUMN audit_events.actor_name IS
    'Part of the hashed content (the actor principal), so the chain can be verified from the table alone.';

CREATE INDEX audit_events_task_idx ON audit_events (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX audit_events_actor_at_idx ON audit_events (actor_id, at);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'audit_events is append-only: TRUNCATE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % of case % seq % refused', TG_OP, OLD.case_id, OLD.seq
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Current state of each case, rebuilt from events; last_seq keeps a late write from rolling it back.
CREATE TABLE cases (
    case_id         text        PRIMARY KEY,
    process         text        NOT NULL,
    business_key    text        NOT NULL,
    title           text        NOT NULL,
    status          text        NOT NULL,
    current_stages  text[]      NOT NULL DEFAULT '{}',
    applicant_id    text        NOT NULL,
    priority        boolean     NOT NULL DEFAULT false,
    clock_state     text        NOT NULL DEFAULT 'none',
    due_at          timestamptz,
    outcome         text,
    started_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    summary         jsonb       NOT NULL DEFAULT '{}',
    last_seq        integer     NOT NULL
);

CREATE INDEX cases_process_status_idx ON cases (process, status, updated_at DESC);
CREATE INDEX cases_status_idx ON cases (status, updated_at DESC);
CREATE INDEX cases_business_key_idx ON cases (business_key);
CREATE INDEX cases_applicant_idx ON cases (applicant_id, updated_at DESC);

-- Current state of each task: what the inbox reads.
CREATE TABLE tasks (
    task_id          text        PRIMARY KEY,
    case_id          text        NOT NULL,
    process          text        NOT NULL,
    stage_id         text        NOT NULL,
    stage_title      text        NOT NULL,
    legal_basis      text        NOT NULL,
    status           text        NOT NULL,
    assignee_id      text,
    candidate_roles  text[]      NOT NULL DEFAULT '{}',
    claimed_by       text,
    delegate_id      text,
    priority         boolean     NOT NULL DEFAULT false,
    due_at           timestamptz,
    overdue          boolean     NOT NULL DEFAULT false,
    decision         text,
    version          integer     NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_seq         integer     NOT NULL
);

-- One index per way a task reaches an inbox, so the inbox's OR of them can be a BitmapOr.
CREATE INDEX tasks_candidate_roles_idx ON tasks USING gin (candidate_roles);
CREATE INDEX tasks_assignee_idx ON tasks (assignee_id, status, due_at);
CREATE INDEX tasks_claimed_by_idx ON tasks (claimed_by);
CREATE INDEX tasks_delegate_idx ON tasks (delegate_id);
CREATE INDEX tasks_open_due_idx ON tasks (due_at, task_id) WHERE status IN ('open', 'claimed');
CREATE INDEX tasks_case_idx ON tasks (case_id);

-- One row per notification; the idempotency key makes a retried send a no-op once delivered.
CREATE TABLE outbox (
    idempotency_key  text        PRIMARY KEY,
    case_id          text        NOT NULL,
    channel          text        NOT NULL,
    kind             text        NOT NULL,
    recipient        text        NOT NULL,
    subject          text        NOT NULL DEFAULT '',
    data             jsonb       NOT NULL DEFAULT '{}',
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);

CREATE INDEX outbox_undelivered_idx ON outbox (created_at) WHERE status <> 'delivered';
CREATE INDEX outbox_case_idx ON outbox (case_id);

-- Actions the workflow's validators refused never enter Temporal history; the API records them here.
CREATE TABLE denied_attempts (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_id     text        NOT NULL,
    actor_roles  text[]      NOT NULL DEFAULT '{}',
    case_id      text,
    task_id      text,
    operation    text        NOT NULL,
    reason_code  text        NOT NULL,
    message      text        NOT NULL DEFAULT '',
    request      jsonb       NOT NULL DEFAULT '{}'
);

CREATE INDEX denied_attempts_case_idx ON denied_attempts (case_id, at);
CREATE INDEX denied_attempts_actor_idx ON denied_attempts (actor_id, at);
