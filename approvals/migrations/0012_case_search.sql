-- Case search for office staff (GET /v1/cases, `approvals cases`): the applicant's name (a substring, Chinese
-- included), unified social credit code, title, business key prefix, received and decided dates.
--
-- Why not pg_trgm: the extension is there (the embedded PostgreSQL 18 ships it, as does the compose image), but
-- it extracts no trigram from Chinese text in a database whose character classification is C (the embedded
-- server's initdb --no-locale; measured: show_trgm('阿拉山口综合保税区') is {} there, and also under the builtin
-- C.UTF-8 provider), and even where it does (a libc UTF-8 locale such as the compose image's en_US.utf8), a LIKE
-- pattern of fewer than three characters uses no trigram: most
-- Chinese company and person names are searched by two to four characters. pg_bigm, which indexes bigrams, is
-- not shipped with either server. So the index is ours: the distinct two-character substrings of the text
-- (lower-cased), kept in a generated column and indexed by GIN. Every substring of two characters or more of a
-- value has all its bigrams among the value's, so `applicant_name_bigrams @> search_bigrams(pattern)` finds every
-- candidate through the index, and a plain `strpos` on those rows keeps the true matches. The column (not an
-- index on the expression) keeps the check cheap when a page is read in date order instead, filtering as it
-- goes. Searches shorter than two characters are refused by the API (one character would read much of the table).

CREATE FUNCTION search_bigrams(value text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(
        SELECT DISTINCT substr(lower(value), position, 2)
        FROM generate_series(1, char_length(value) - 1) AS position
    );

COMMENT ON FUNCTION search_bigrams(text) IS
    'The distinct two-character substrings of the lower-cased text: the keys of the case search indexes (0012).';

ALTER TABLE cases
    ADD COLUMN applicant_name text NOT NULL DEFAULT '',
    ADD COLUMN applicant_unit text NOT NULL DEFAULT '',
    ADD COLUMN credit_code    text,
    ADD COLUMN decided_at     timestamptz;

COMMENT ON COLUMN cases.applicant_name IS
    'The applying party''s name from case.started: data.enterprise or data.applying_unit, else the applicant.';
COMMENT ON COLUMN cases.applicant_unit IS 'The applicant principal''s unit, from case.started.';
COMMENT ON COLUMN cases.credit_code IS
    'Unified social credit code from case.started: data.unified_social_credit_code, else the party''s.';
COMMENT ON COLUMN cases.decided_at IS 'When the case was decided: its first case.decided event.';

-- Backfill from the audit log, by the rule approvals/storage/records.py (`applicant_facts`) applies when
-- recording.
UPDATE cases c
SET applicant_name = coalesce(nullif(started.party ->> 'name', ''), started.applicant ->> 'name', ''),
    applicant_unit = coalesce(started.applicant ->> 'unit', ''),
    credit_code = coalesce(nullif(started.data ->> 'unified_social_credit_code', ''),
                           nullif(started.party ->> 'unified_social_credit_code', ''))
FROM (
    SELECT DISTINCT ON (case_id)
        case_id,
        payload -> 'applicant' AS applicant,
        payload -> 'data' AS data,
        CASE WHEN jsonb_typeof(payload -> 'data' -> 'enterprise') = 'object' THEN payload -> 'data' -> 'enterprise'
             WHEN jsonb_typeof(payload -> 'data' -> 'applying_unit') = 'object' THEN payload -> 'data' -> 'applying_unit'
        END AS party
    FROM audit_events
    WHERE type = 'case.started'
    ORDER BY case_id, seq
) started
WHERE started.case_id = c.case_id;

UPDATE cases c
SET decided_at = decided.at
FROM (
    SELECT case_id, min(at) AS at FROM audit_events WHERE type = 'case.decided' GROUP BY case_id
) decided
WHERE decided.case_id = c.case_id;

ALTER TABLE cases
    ADD COLUMN applicant_name_bigrams text[] GENERATED ALWAYS AS (search_bigrams(applicant_name)) STORED,
    ADD COLUMN title_bigrams          text[] GENERATED ALWAYS AS (search_bigrams(title)) STORED;

CREATE INDEX cases_applicant_name_search_idx ON cases USING gin (applicant_name_bigrams);
CREATE INDEX cases_title_search_idx ON cases USING gin (title_bigrams);
CREATE INDEX cases_credit_code_idx ON cases (credit_code) WHERE credit_code IS NOT NULL;
-- text_pattern_ops: `business_key LIKE 'prefix%'` uses it whatever the database's collation; it serves equality
-- too, so it replaces 0001's index on the key.
CREATE INDEX cases_business_key_prefix_idx ON cases (business_key text_pattern_ops);
DROP INDEX cases_business_key_idx;
-- A prefix names a few of the keys, all unique: with the default 100 histogram buckets the planner can tell it no
-- better than one bucket (1 % of the cases) and would rather read every case in received order for the page.
ALTER TABLE cases ALTER COLUMN business_key SET STATISTICS 2000;
-- The orders a page is read in (approvals/storage/queries.py, `CASE_ORDERS`), each with its tie-break: a search
-- that matches many cases (物流, a common word of titles) reads the latest received cases in order and stops at
-- the page instead of sorting every match; one that matches few reads its own index and sorts them; a range of
-- received dates reads just that range, in order. (Received, not last updated, is the default order: a walk in
-- update order cannot stop early for a range of received dates, the two being correlated.)
CREATE INDEX cases_started_order_idx ON cases (started_at, case_id);
CREATE INDEX cases_decided_order_idx ON cases (decided_at DESC NULLS LAST, case_id DESC);
CREATE INDEX cases_applicant_unit_idx ON cases (applicant_unit, updated_at DESC);
