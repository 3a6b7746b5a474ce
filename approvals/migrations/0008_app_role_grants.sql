-- Least privilege: the worker and the API connect as an app role, not as the role that owns the schema.
--
-- Why: the append-only trigger on audit_events stops only a role that can neither disable it nor go around
-- it. An owner may `ALTER TABLE audit_events DISABLE TRIGGER ...`, a superuser may also
-- `SET session_replication_role = replica` (triggers off for the session); either lets the process that
-- holds the credentials rewrite or delete recorded events. So the schema's owner runs the migrations only
-- (MIGRATION_DATABASE_URL), and the processes that serve cases get exactly what approvals/storage/ and
-- approvals/service.py do, below; audit_events gets INSERT and SELECT, never UPDATE, DELETE or TRUNCATE.
--
-- The app role is DATABASE_URL's user, passed by approvals/migrate.py as the setting approvals.app_role
-- (the deployment creates it, with its password, before migrating: docs/deploy.md). When the migrations
-- run as that same role (one role for everything, as before this migration) there is nothing to grant.
-- A migration that adds a table grants the app role its privileges on it the same way.
DO $$
DECLARE
    app text := nullif(current_setting('approvals.app_role', true), '');
BEGIN
    IF app IS NULL OR app = current_user THEN
        RAISE NOTICE 'no separate app role: the engine connects as the role that owns the schema';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
        RAISE EXCEPTION 'app role "%" (the user of DATABASE_URL) does not exist: create it, LOGIN with a password, before migrating (docs/deploy.md)', app;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'app role "%" is a superuser or bypasses row security: it could switch the audit trigger off; give the engine an ordinary role', app;
    END IF;
    IF pg_has_role(app, current_user, 'USAGE') THEN
        RAISE EXCEPTION 'app role "%" is a member of the owner role "%": it could alter the tables; give the engine a role of its own', app, current_user;
    END IF;

    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), app);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app);
    -- The audit log: appended to (records.py), read back (queries.py, audit); never changed.
    EXECUTE format('GRANT SELECT, INSERT ON audit_events TO %I', app);
    -- The projections, upserted in the recording transaction and read by the inbox, case list and may_read.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON cases, tasks TO %I', app);
    -- Rewritten by the trigger on tasks (0005), which runs with the privileges of the role writing tasks.
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON inbox_entries TO %I', app);
    -- Queued by recording, claimed and marked delivered or failed by the dispatcher (outbox.py).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON outbox TO %I', app);
    -- Refused actions, recorded and listed by the API (service.py); the id comes from the serial's sequence.
    EXECUTE format('GRANT SELECT, INSERT ON denied_attempts TO %I', app);
    EXECUTE format('GRANT USAGE ON SEQUENCE denied_attempts_id_seq TO %I', app);
    -- Published calendar years (0006): stored by the admin API, read by load_calendar; never changed.
    EXECUTE format('GRANT SELECT, INSERT ON calendar_years TO %I', app);
    EXECUTE format('GRANT USAGE ON SEQUENCE calendar_years_revision_seq TO %I', app);
    -- Checkpoints (0007): sealed by the workers and read by exports; append-only like the log.
    EXECUTE format('GRANT SELECT, INSERT ON audit_checkpoints, audit_checkpoint_leaves TO %I', app);
    -- `approvals worker` checks at start-up that no migration is pending (it applies none as the app role).
    EXECUTE format('GRANT SELECT ON schema_migrations TO %I', app);

    -- PostgreSQL before 15 lets every role create tables in schema public; such a table would be the app
    -- role's own, which harms no record, but it is more than the engine needs.
    IF has_schema_privilege(app, 'public', 'CREATE') THEN
        RAISE WARNING 'app role "%" may create tables in schema public: REVOKE CREATE ON SCHEMA public FROM PUBLIC', app;
    END IF;
END
$$;
