-- The years a task's due date was counted in without an official holiday schedule (on an assumed one, or
-- Monday to Friday), ascending; empty when every year counted was official.
--
-- Why: a deadline that crosses into a year the calendar does not know officially may move when that year is
-- published, and the reviewer working the task is the one who must know. The case records the assumption
-- as a `case.calendar_assumption` event; the inbox row carries the years, written with the task's projection
-- (approvals/storage/records.py). Rows written before this migration read as no assumption until their task
-- is next recorded. A new column of `tasks` needs no grant: 0008 granted the app role the table.
ALTER TABLE tasks ADD COLUMN due_assumed_years integer[] NOT NULL DEFAULT '{}';
