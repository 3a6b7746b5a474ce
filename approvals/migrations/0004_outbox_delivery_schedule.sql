-- The outbox is delivered by a dispatcher in each worker process instead of inside a notify activity:
-- recording writes a case's notifications in the same transaction as the events that caused them, and the
-- dispatcher claims due rows (SKIP LOCKED, under a lease, so several workers never post the same row at
-- once), posts each once per attempt and schedules the next attempt with backoff on failure.
-- `position` keeps the order rows were queued in (one transaction gives them all the same created_at), so a
-- case's notifications go out in the order its events happened.
ALTER TABLE outbox
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN claimed_until   timestamptz,
    ADD COLUMN position        bigint GENERATED ALWAYS AS IDENTITY;

CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, position) WHERE status = 'pending';
