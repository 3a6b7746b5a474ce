-- Who can see which live task, in due order: one row per (holder, task) for every task waiting for
-- someone, so the inbox reads a page of a principal's tasks in due order from an index instead of
-- fetching every task of their roles and sorting them.
--
-- Why: a task reaches an inbox four ways (assigned, claimed, delegated, or open to one of the roles), and
-- `candidate_roles` is an array, which a btree cannot index element by element. The indexes of 0003 can
-- find a principal's tasks (a BitmapOr) but not in due order, so a reviewer whose roles hold thousands of
-- open tasks paid for reading and sorting all of them (20-50 ms for a rare process filter or
-- priority=true at 100,000 open tasks); walking tasks_open_due_idx in due order instead is fast only when
-- the principal's tasks are frequent among all open tasks. Here each holder's live tasks are contiguous
-- in (holder, due_at, task_id) order, so the inbox (activities/queries.py) reads at most one page
-- (offset + limit entries) per holder, merges the holders' pages and fetches only the page's tasks.
--
-- holder is 'user:<principal id>' for the assignee, the claimer and the delegate of an open or claimed
-- task, and 'role:<role>' for each candidate role of an open task (a claimed task belongs to its claimer)
-- - exactly the inbox's visibility rule. The filter columns the inbox offers (process, stage, priority,
-- overdue) are copied so that filtering happens in the index, before any task row is read.
--
-- The rows are maintained by a trigger on `tasks`, in the same transaction as the projection's upsert
-- (activities/storage.py), so they can never disagree with the tasks they index.
CREATE TABLE inbox_entries (
    holder    text        NOT NULL,
    task_id   text        NOT NULL,
    due_at    timestamptz,
    process   text        NOT NULL,
    stage_id  text        NOT NULL,
    priority  boolean     NOT NULL,
    overdue   boolean     NOT NULL,
    PRIMARY KEY (task_id, holder)
);

-- Every change of a live task rewrites its rows, so the table churns while staying small (about one row
-- per live task and holder): vacuum it early, which keeps its visibility map current and the inbox's scans
-- index-only.
ALTER TABLE inbox_entries SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02,
                               autovacuum_analyze_scale_factor = 0.05);

-- The inbox's page: a holder's tasks by due time (none last, as ORDER BY due_at NULLS LAST), then task id;
-- the filters are read from the index (an index-only scan while the visibility map is current).
CREATE INDEX inbox_entries_holder_due_idx ON inbox_entries (holder, due_at, task_id)
    INCLUDE (process, stage_id, priority, overdue);
-- A process filter rare among a large role's tasks (most processes are): that process's tasks in due order.
CREATE INDEX inbox_entries_holder_process_due_idx ON inbox_entries (holder, process, due_at, task_id)
    INCLUDE (stage_id, priority, overdue);

CREATE FUNCTION tasks_sync_inbox_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM inbox_entries WHERE task_id = OLD.task_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status IN ('open', 'claimed') THEN
        INSERT INTO inbox_entries (holder, task_id, due_at, process, stage_id, priority, overdue)
        SELECT DISTINCT holder, NEW.task_id, NEW.due_at, NEW.process, NEW.stage_id, NEW.priority, NEW.overdue
        FROM unnest(
            ARRAY['user:' || NEW.assignee_id, 'user:' || NEW.claimed_by, 'user:' || NEW.delegate_id]
            || CASE WHEN NEW.status = 'open'
                    THEN ARRAY(SELECT 'role:' || role FROM unnest(NEW.candidate_roles) AS role)
                    ELSE '{}'::text[] END
        ) AS holder
        WHERE holder IS NOT NULL;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_inbox_entries_insert_delete
    AFTER INSERT OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_sync_inbox_entries();

-- Updates that change nothing the inbox reads (version, updated_at, decision of a finished task ...) skip it.
CREATE TRIGGER tasks_inbox_entries_update
    AFTER UPDATE ON tasks
    FOR EACH ROW
    WHEN ((OLD.task_id, OLD.status, OLD.assignee_id, OLD.claimed_by, OLD.delegate_id, OLD.candidate_roles,
           OLD.due_at, OLD.process, OLD.stage_id, OLD.priority, OLD.overdue)
          IS DISTINCT FROM
          (NEW.task_id, NEW.status, NEW.assignee_id, NEW.claimed_by, NEW.delegate_id, NEW.candidate_roles,
           NEW.due_at, NEW.process, NEW.stage_id, NEW.priority, NEW.overdue))
    EXECUTE FUNCTION tasks_sync_inbox_entries();

CREATE FUNCTION tasks_truncate_inbox_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE inbox_entries;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_inbox_entries_truncate
    AFTER TRUNCATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_truncate_inbox_entries();

-- The live tasks already recorded.
INSERT INTO inbox_entries (holder, task_id, due_at, process, stage_id, priority, overdue)
SELECT DISTINCT holder, task_id, due_at, process, stage_id, priority, overdue
FROM tasks,
     unnest(ARRAY['user:' || assignee_id, 'user:' || claimed_by, 'user:' || delegate_id]
            || CASE WHEN status = 'open'
                    THEN ARRAY(SELECT 'role:' || role FROM unnest(candidate_roles) AS role)
                    ELSE '{}'::text[] END) AS holder
WHERE status IN ('open', 'claimed') AND holder IS NOT NULL;
