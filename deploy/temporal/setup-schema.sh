#!/bin/sh
# Creates Temporal's two databases and brings their schemas up to the version of this admin-tools image.
#
# Run by the one-shot `temporal-schema` service (temporalio/admin-tools) before the server starts, on
# every `docker compose up`. Safe to re-run, and this is also how a Temporal upgrade gets its schema
# changes (raise TEMPORAL_VERSION, `docker compose up -d`):
#   - `create` ignores a database that already exists;
#   - `setup-schema -v 0.0` only creates the schema_version tables and skips the version reset when
#     the schema is already past 0.0;
#   - `update-schema` applies only the versioned steps above the recorded version.
# The commands and schema directories are those of Temporal's own compose setup for PostgreSQL.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
: "${DB_PORT:=5432}"
: "${DBNAME:=temporal}"
: "${VISIBILITY_DBNAME:=temporal_visibility}"
SCHEMA_ROOT="${TEMPORAL_HOME:-/etc/temporal}/schema/postgresql/v12"

tries=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "PostgreSQL at $POSTGRES_SEEDS:$DB_PORT unreachable after 60 tries" >&2
        exit 1
    fi
    sleep 2
done

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for pair in "$DBNAME:temporal" "$VISIBILITY_DBNAME:visibility"; do
    db="${pair%%:*}"
    dir="${pair#*:}"
    echo "schema of database $db ($dir)"
    sql_tool --db "$db" create
    sql_tool --db "$db" setup-schema -v 0.0
    sql_tool --db "$db" update-schema -d "$SCHEMA_ROOT/$dir/versioned"
done

echo "Temporal schemas are up to date"
