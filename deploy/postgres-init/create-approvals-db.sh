#!/bin/sh
# Creates (or updates) the engine's two roles and its database in the PostgreSQL of docker-compose.yml.
#
# Run by the one-shot `approvals-db` service on every `docker compose up`, connected as the server's
# superuser (PGHOST/PGUSER/PGPASSWORD from the environment). Idempotent:
#   - the owner role APPROVALS_DB_USER (default `approvals`) owns the database and, through the migrations
#     it runs (`migrate` service, MIGRATION_DATABASE_URL), every table in it;
#   - the app role APPROVALS_APP_DB_USER (default `approvals_app`) is what worker and api connect as
#     (DATABASE_URL); it owns nothing, and migration 0006 grants it exactly what the engine needs
#     (INSERT and SELECT on audit_events, never UPDATE, DELETE or TRUNCATE);
#   - both are created when missing, made ordinary roles (no superuser, no role or database creation, no
#     replication, no row-security bypass: a superuser could `SET session_replication_role = replica` and
#     so switch the audit log's append-only trigger off) and get their password from the environment on
#     each run (so rotating a password is: change .env, `docker compose up -d`);
#   - database APPROVALS_DB_NAME (default `approvals`), owned by the owner role, is created when missing;
#     existing data is never touched.
# Temporal's own databases (temporal, temporal_visibility) are created by the `temporal-schema` service.
set -eu

: "${APPROVALS_DB_PASSWORD:?APPROVALS_DB_PASSWORD is required}"
: "${APPROVALS_APP_DB_PASSWORD:?APPROVALS_APP_DB_PASSWORD is required}"
: "${APPROVALS_DB_USER:=approvals}"
: "${APPROVALS_APP_DB_USER:=approvals_app}"
: "${APPROVALS_DB_NAME:=approvals}"

if [ "$APPROVALS_DB_USER" = "$APPROVALS_APP_DB_USER" ]; then
    echo "APPROVALS_DB_USER and APPROVALS_APP_DB_USER are both ${APPROVALS_DB_USER}: the app role must not be the owner" >&2
    exit 1
fi

tries=0
until pg_isready --quiet; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "PostgreSQL at ${PGHOST:-?}:${PGPORT:-5432} did not become ready in 120 s" >&2
        exit 1
    fi
    sleep 2
done

# psql variables (:'name' is quoted as a literal, :"name" as an identifier) keep the passwords and the
# names out of the SQL text; \gexec runs each generated statement.
psql --no-psqlrc --set ON_ERROR_STOP=1 --dbname postgres \
    --set owner_pw="$APPROVALS_DB_PASSWORD" --set owner="$APPROVALS_DB_USER" \
    --set app_pw="$APPROVALS_APP_DB_PASSWORD" --set app="$APPROVALS_APP_DB_USER" \
    --set db="$APPROVALS_DB_NAME" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'owner_pw';
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT ALL ON DATABASE :"db" TO :"owner";
SQL

echo "database ${APPROVALS_DB_NAME} owned by ${APPROVALS_DB_USER}, app role ${APPROVALS_APP_DB_USER}: ready"
