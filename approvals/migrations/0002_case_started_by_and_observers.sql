-- Who started each case and who was copied on it (抄送), as columns of the `cases` projection, so that
-- "may this user read the case" and "which cases may this user list" are indexed reads instead of scans
-- of `audit_events` for `case.started` and `case.cc` rows.

ALTER TABLE cases
    ADD COLUMN started_by text,
    ADD COLUMN observers  text[] NOT NULL DEFAULT '{}';

COMMENT ON COLUMN cases.started_by IS
    'Principal id of the actor of the case.started event (the service or officer that started the case).';
COMMENT ON COLUMN cases.observers IS
    'Users copied on the case (case.cc), each once, in the order they were first copied.';

-- Backfill the rows written before these columns existed, from the audit log they were projected from.
UPDATE cases c
SET started_by = started.actor_id
FROM (
    SELECT DISTINCT ON (case_id) case_id, actor_id
    FROM audit_events
    WHERE type = 'case.started'
    ORDER BY case_id, seq
) started
WHERE started.case_id = c.case_id;

UPDATE cases c
SET observers = copied.observers
FROM (
    SELECT case_id, array_agg(observer ORDER BY seq, ord) AS observers
    FROM (
        -- Each observer once, at the first case.cc that named them (the workflow's order).
        SELECT DISTINCT ON (e.case_id, o.observer) e.case_id, o.observer, e.seq, o.ord
        FROM audit_events e
        CROSS JOIN LATERAL jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(e.payload -> 'observers') = 'array' THEN e.payload -> 'observers'
                 ELSE '[]'::jsonb END
        ) WITH ORDINALITY AS o(observer, ord)
        WHERE e.type = 'case.cc'
        ORDER BY e.case_id, o.observer, e.seq, o.ord
    ) first_named
    GROUP BY case_id
) copied
WHERE copied.case_id = c.case_id;

-- The recording activity writes the case row in the same transaction as the case's events, so every case
-- row has its case.started event and the column can be NOT NULL. Should a database hold a case row without
-- one (written by hand), the constraint is left off rather than failing the upgrade or inventing a starter.
DO $$
DECLARE
    missing bigint;
BEGIN
    SELECT count(*) INTO missing FROM cases WHERE started_by IS NULL;
    IF missing = 0 THEN
        ALTER TABLE cases ALTER COLUMN started_by SET NOT NULL;
    ELSE
        RAISE WARNING 'cases.started_by left nullable: % case row(s) have no case.started event in audit_events',
            missing;
    END IF;
END
$$;

CREATE INDEX cases_started_by_idx ON cases (started_by, updated_at DESC);
CREATE INDEX cases_observers_idx ON cases USING gin (observers);
