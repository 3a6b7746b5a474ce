-- Calendar years published by an operator (`approvals calendar publish`, PUT /v1/admin/calendar/...): each
-- row is one layer's year laid over the calendar file (CALENDAR_PATH, or the built-in one). A later row for
-- the same layer and year replaces an earlier one (a corrected notice); the revision orders them and is the
-- revision of the calendar that includes the row, which a running case compares with its own to take only
-- a newer calendar. Rows are never updated or deleted: they are the record of what was published, by whom.
CREATE TABLE calendar_years (
    revision     bigserial   PRIMARY KEY,
    layer        text        NOT NULL,
    year         integer     NOT NULL,
    schedule     jsonb       NOT NULL,
    published_by text        NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);
