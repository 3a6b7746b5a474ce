-- The facts the Committee's reports count (GET /v1/reports/summary; Art. 29), one row per case.
--
-- Why a projection of its own: the summary counts acceptances, refusals to accept, extensions, 补正, Art. 45
-- pauses, the statutory due time at the decision and the deciding unit, which the `cases` row does not keep;
-- folding them from `audit_events` at report time reads every event of every case (about twenty per case:
-- two million rows for a year of 100,000 cases), far from the one second a report may take. So a trigger on
-- `audit_events` keeps them as each event is inserted, in the recording transaction: an event stored twice is
-- inserted once (ON CONFLICT DO NOTHING), so every count is counted once. The same function backfills the
-- events recorded before this migration, in their order. Working days are not counted here: the calendar is
-- data that may be published later, so the report counts them at read time (approvals/reports/).
--
-- `unit` is the deciding unit: the unit of whoever last decided a task of the case (the one that decided its
-- final stage once the case is decided). `stage_id` is the stage the case last entered. `period_due_at` is the
-- statutory period's due time as last recorded before the decision (started, extended, moved by a calendar,
-- named again after 补正 or an excluded period; 'infinity' while an excluded period holds it still). A case reset
-- (`case.reset`, an operator's `temporal workflow reset`) makes the row again from the events it leaves in force,
-- as the point-in-time fold does (schemas.events.in_force): the old run's events from the reset point on stay in
-- the log, superseded, and the new run records its own after the reset.
CREATE TABLE case_report_facts (
    case_id                text        PRIMARY KEY,
    process                text        NOT NULL,
    received_at            timestamptz,
    accepted_at            timestamptz,
    refused_to_accept      boolean     NOT NULL DEFAULT false,
    decided_at             timestamptz,
    decision               text        CHECK (decision IN ('granted', 'refused')),
    withdrawn_at           timestamptz,
    supervision_started_at timestamptz,
    supervision_ended_at   timestamptz,
    period_due_at          timestamptz,
    extensions             integer     NOT NULL DEFAULT 0,
    supplements            integer     NOT NULL DEFAULT 0,
    excluded_periods       integer     NOT NULL DEFAULT 0,
    error_tolerance        text,
    talent_decision        text,
    catalogue_publications integer     NOT NULL DEFAULT 0,
    catalogue_functions    integer     NOT NULL DEFAULT 0,
    unit                   text        NOT NULL DEFAULT '',
    stage_id               text        NOT NULL DEFAULT ''
);

-- Every report reads the cases received in a period; the few with an outcome of their own (Art. 25, talent,
-- catalogue) are read again on their own.
CREATE INDEX case_report_facts_received_idx ON case_report_facts (received_at);
CREATE INDEX case_report_facts_outcomes_idx ON case_report_facts (received_at)
    WHERE error_tolerance IS NOT NULL OR talent_decision IS NOT NULL OR catalogue_publications > 0;
-- The denied attempts of a period, by reason (0001 indexed them by case and by actor only).
CREATE INDEX denied_attempts_at_idx ON denied_attempts (at);

CREATE FUNCTION report_facts_apply(e audit_events) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb := e.payload;
    prior audit_events;
BEGIN
    IF e.type = 'case.reset' THEN
        DELETE FROM case_report_facts WHERE case_id = e.case_id;
        FOR prior IN
            SELECT * FROM audit_events a
            WHERE a.case_id = e.case_id AND a.seq < e.seq AND a.type <> 'case.reset'
              AND NOT EXISTS (
                  SELECT 1 FROM audit_events r
                  WHERE r.case_id = a.case_id AND r.type = 'case.reset' AND r.seq <= e.seq
                    AND a.seq BETWEEN (r.payload ->> 'superseded_from')::integer
                                  AND least((r.payload ->> 'superseded_to')::integer, r.seq - 1))
            ORDER BY a.seq
        LOOP
            PERFORM report_facts_apply(prior);
        END LOOP;
        RETURN;
    END IF;
    INSERT INTO case_report_facts (case_id, process) VALUES (e.case_id, split_part(e.case_id, ':', 1))
    ON CONFLICT (case_id) DO NOTHING;
    CASE e.type
    WHEN 'case.started' THEN
        UPDATE case_report_facts SET received_at = coalesce(received_at, e.at) WHERE case_id = e.case_id;
    WHEN 'case.accepted' THEN
        UPDATE case_report_facts SET accepted_at = coalesce(accepted_at, (p ->> 'accepted_at')::timestamptz, e.at)
        WHERE case_id = e.case_id;
    WHEN 'case.remedies_notified' THEN
        UPDATE case_report_facts SET refused_to_accept = true
        WHERE case_id = e.case_id AND p -> 'concerns' ->> 'kind' = 'refusal_to_accept';
    WHEN 'case.decided', 'case.rejected' THEN
        UPDATE case_report_facts
        SET decided_at = e.at,
            decision = CASE WHEN e.type = 'case.decided' AND p ->> 'outcome' IN ('approved', 'approved_with_conditions')
                            THEN 'granted' ELSE 'refused' END
        WHERE case_id = e.case_id AND decided_at IS NULL;
    WHEN 'case.withdrawn', 'case.cancelled' THEN
        -- A case withdrawn (or cancelled by an operator) while under supervision is no longer supervised.
        UPDATE case_report_facts
        SET withdrawn_at = CASE WHEN e.type = 'case.withdrawn' THEN coalesce(withdrawn_at, e.at) ELSE withdrawn_at END,
            supervision_ended_at = CASE WHEN supervision_started_at IS NOT NULL
                                        THEN coalesce(supervision_ended_at, e.at) END
        WHERE case_id = e.case_id;
    WHEN 'supervision.started' THEN
        UPDATE case_report_facts SET supervision_started_at = coalesce(supervision_started_at, e.at),
                                     supervision_ended_at = NULL
        WHERE case_id = e.case_id;
    WHEN 'supervision.ended' THEN
        UPDATE case_report_facts SET supervision_ended_at = e.at WHERE case_id = e.case_id;
    WHEN 'clock.started' THEN
        UPDATE case_report_facts SET period_due_at = (p ->> 'due_at')::timestamptz
        WHERE case_id = e.case_id AND decided_at IS NULL AND p ->> 'clock' = 'case' AND p ? 'due_at';
    WHEN 'case.extended' THEN
        UPDATE case_report_facts
        SET extensions = extensions + 1,
            period_due_at = CASE WHEN decided_at IS NULL AND p ? 'due_at' THEN (p ->> 'due_at')::timestamptz
                                 ELSE period_due_at END
        WHERE case_id = e.case_id;
    WHEN 'case.supplement_requested' THEN
        UPDATE case_report_facts SET supplements = supplements + 1 WHERE case_id = e.case_id;
    WHEN 'clock.paused' THEN
        -- While the period stands still (Art. 45) a decision is in time whenever it comes.
        UPDATE case_report_facts
        SET excluded_periods = excluded_periods + 1,
            period_due_at = CASE WHEN decided_at IS NULL AND jsonb_typeof(p -> 'working_days_left') = 'object'
                                      AND p -> 'working_days_left' ? 'case'
                                 THEN 'infinity'::timestamptz ELSE period_due_at END
        WHERE case_id = e.case_id;
    WHEN 'clock.resumed', 'case.supplemented' THEN
        UPDATE case_report_facts SET period_due_at = (p -> 'due_at' ->> 'case')::timestamptz
        WHERE case_id = e.case_id AND decided_at IS NULL AND jsonb_typeof(p -> 'due_at') = 'object'
          AND p -> 'due_at' ? 'case';
    WHEN 'case.deadlines_recomputed' THEN
        UPDATE case_report_facts
        SET period_due_at = (SELECT (move ->> 'due_at')::timestamptz
                             FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p -> 'moved') = 'array'
                                                            THEN p -> 'moved' ELSE '[]'::jsonb END) AS move
                             WHERE move ->> 'clock' = 'case' LIMIT 1)
        WHERE case_id = e.case_id AND decided_at IS NULL
          AND jsonb_path_exists(p, '$.moved[*] ? (@.clock == "case")');
    WHEN 'error_tolerance.determined' THEN
        UPDATE case_report_facts SET error_tolerance = p ->> 'determination' WHERE case_id = e.case_id;
    WHEN 'case.notified' THEN
        UPDATE case_report_facts SET talent_decision = p ->> 'decision'
        WHERE case_id = e.case_id AND process = 'talent-policy' AND p ? 'decision';
    WHEN 'case.published' THEN
        UPDATE case_report_facts
        SET catalogue_publications = catalogue_publications + 1,
            catalogue_functions = catalogue_functions
                + CASE WHEN jsonb_typeof(p -> 'subject' -> 'items') = 'array'
                       THEN jsonb_array_length(p -> 'subject' -> 'items') ELSE 0 END
        WHERE case_id = e.case_id AND process = 'power-adjustment';
    WHEN 'stage.started' THEN
        UPDATE case_report_facts SET stage_id = coalesce(e.stage_id, '') WHERE case_id = e.case_id;
    WHEN 'task.decided' THEN
        UPDATE case_report_facts SET unit = e.actor_unit
        WHERE case_id = e.case_id AND decided_at IS NULL AND e.actor_id <> 'system';
    ELSE
        NULL;
    END CASE;
END
$$;

CREATE FUNCTION audit_events_report_facts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_facts_apply(NEW);
    RETURN NULL;
END
$$;

-- Only the events the facts read: every other insert (most of them: claims, comments, timers) skips it.
CREATE TRIGGER audit_events_report_facts
    AFTER INSERT ON audit_events
    FOR EACH ROW
    WHEN (NEW.type IN ('case.reset', 'case.started', 'case.accepted', 'case.remedies_notified', 'case.decided', 'case.rejected',
                       'case.withdrawn', 'case.cancelled', 'supervision.started', 'supervision.ended', 'clock.started', 'case.extended',
                       'case.supplement_requested', 'clock.paused', 'clock.resumed', 'case.supplemented',
                       'case.deadlines_recomputed', 'error_tolerance.determined', 'case.notified', 'case.published',
                       'stage.started', 'task.decided'))
    EXECUTE FUNCTION audit_events_report_facts();

-- The events recorded before, case by case in their order.
DO $$
DECLARE
    e audit_events;
BEGIN
    FOR e IN SELECT * FROM audit_events ORDER BY case_id, seq LOOP
        PERFORM report_facts_apply(e);
    END LOOP;
END
$$;

-- The app role (0008 explains why and how): the trigger writes as the role that records (and deletes a row to make
-- it again at a reset); the API reads.
DO $$
DECLARE
    app text := nullif(current_setting('approvals.app_role', true), '');
BEGIN
    IF app IS NOT NULL AND app <> current_user THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON case_report_facts TO %I', app);
    END IF;
END
$$;
