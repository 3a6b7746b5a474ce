#!/bin/sh
# Creates (or updates) the engine's own role and database in the PostgreSQL of docker-compose.yml.
#
# Run by the one-shot `approvals-db` service on every `docker compose up`, connected as the server's
# superuser (PGHOST/PGUSER/PGPASSWORD from the environment). Idempotent:
#   - role `approvals` is created when missing, and its password is set to APPROVALS_DB_PASSWORD each
#     run (so rotating the password is: change .env, `docker compose up -d`);
#   - database `approvals`, owned by that role, is created when missing; existing data is never touched.
# Temporal's own databases (temporal, temporal_visibility) are created by the `temporal-schema` service.
set -eu

: "${APPROVALS_DB_PASSWORD:?APPROVALS_DB_PASSWORD is required}"
: "${APPROVALS_DB_USER:=approvals}"
: "${APPROVALS_DB_NAME:=approvals}"

tries=0
until pg_isready --quiet; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "PostgreSQL at ${PGHOST:-?}:${PGPORT:-5432} did not become ready in 120 s" >&2
        exit 1
    fi
    sleep 2
done

# psql variables (:'name' is quoted as a literal, :"name" as an identifier) keep the password and the
# names out of the SQL text; \gexec runs each generated statement.
psql --no-psqlrc --set ON_ERROR_STOP=1 --dbname postgres \
    --set pw="$APPROVALS_DB_PASSWORD" --set role="$APPROVALS_DB_USER" --set db="$APPROVALS_DB_NAME" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT ALL ON DATABASE :"db" TO :"role";
SQL

echo "database ${APPROVALS_DB_NAME} owned by ${APPROVALS_DB_USER} is ready"
