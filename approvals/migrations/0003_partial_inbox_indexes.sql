-- Partial indexes for the live inbox. Tasks are never deleted, so almost every row of `tasks` is a
-- finished one (completed, cancelled, expired); the inbox reads only tasks waiting for someone, and its
-- OR of "assigned / claimed / delegated to me, or open to one of my roles" becomes a BitmapOr over these
-- small indexes instead of indexes of every task ever created. activities/queries.py's inbox query
-- states the predicates literally (`status IN ('open', 'claimed')`, `status = 'open'`), so that a
-- generic plan of the prepared statement can prove them too.
CREATE INDEX tasks_inbox_assignee_idx ON tasks (assignee_id, due_at) WHERE status IN ('open', 'claimed');
CREATE INDEX tasks_inbox_claimed_by_idx ON tasks (claimed_by, due_at) WHERE status IN ('open', 'claimed');
CREATE INDEX tasks_inbox_delegate_idx ON tasks (delegate_id, due_at) WHERE status IN ('open', 'claimed');
CREATE INDEX tasks_inbox_candidate_roles_idx ON tasks USING gin (candidate_roles) WHERE status = 'open';

-- The non-partial indexes of 0001 on the same columns (tasks_assignee_idx, tasks_claimed_by_idx,
-- tasks_delegate_idx, tasks_candidate_roles_idx) stay: they are not only the inbox's. "Which cases may
-- this user read" (approvals/service.py's may_read, activities/queries.py's list_cases) counts every task
-- the user holds or held, finished ones included, and a reader's case list finds them through these.
