"""The ``approvals`` command. Thin: each command reads the settings and calls one function.

Exit status: 0 done, 1 a service is unreachable or failed, 2 a setting is missing or malformed (the
message names the environment variable).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from approvals.cli import audit, calendar, cases, catalogue, definitions, demo, handover, operations, reports
from approvals.cli.output import reported_errors
from approvals.settings import LogFormat, Settings, load_settings

app = typer.Typer(
    name="approvals",
    help="Event-sourced approvals engine of the Alashankou Comprehensive Bonded Zone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings(**overrides: Any) -> Settings:
    with reported_errors():
        return load_settings(**overrides)


def _configure_logging(settings: Settings) -> None:
    from approvals.logging import configure_logging

    configure_logging(settings)


def _configure_tracing(settings: Settings, service: str) -> None:
    """Before connecting: OTLP traces when OTEL_EXPORTER_OTLP_ENDPOINT is set (``approvals.tracing``)."""
    from approvals.tracing import configure_tracing

    configure_tracing(settings, service=service)


@app.command()
def dev(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where Temporal's SQLite file, PostgreSQL's data and logs live [DATA_DIR]."),
    ] = None,
) -> None:
    """Run everything on this machine: Temporal dev server + Web UI, PostgreSQL, worker and API."""
    from approvals.devstack.dev import run_dev

    settings = _settings(**({"data_dir": data_dir} if data_dir is not None else {}))
    if "log_format" not in settings.model_fields_set:
        settings = settings.model_copy(update={"log_format": LogFormat.console})
    _configure_logging(settings)
    _configure_tracing(settings, "approvals-dev")
    with reported_errors():
        code = run_dev(settings)
    raise typer.Exit(code)


@app.command()
def worker(
    apply_migrations: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations before polling.")
    ] = True,
) -> None:
    """Run the Temporal worker against TEMPORAL_ADDRESS and DATABASE_URL until SIGTERM/SIGINT."""
    from worker import run_worker

    settings = _settings()
    _configure_logging(settings)
    _configure_tracing(settings, "approvals-worker")
    with reported_errors():
        settings.require_webhook_signing_secret()
        asyncio.run(run_worker(settings, apply_migrations=apply_migrations))


@app.command()
def api() -> None:
    """Serve the HTTP API on API_HOST:API_PORT against TEMPORAL_ADDRESS and DATABASE_URL."""
    settings = _settings()
    _configure_logging(settings)
    _configure_tracing(settings, "approvals-api")
    with reported_errors():
        settings.require_webhook_signing_secret()
        asyncio.run(_serve_api(settings))


async def _serve_api(settings: Settings) -> None:
    from api.app import ApiServer, create_app
    from approvals import db, temporal
    from worker import stop_on_signals

    # Connected here, not in the app's lifespan, so a bad setting is one line naming it, not a traceback.
    settings.require_database_url()
    with stop_on_signals() as stop:
        client = await temporal.connect(settings)
        pool = await db.create_pool(settings)
        try:
            await ApiServer(create_app(settings, pool=pool, temporal_client=client), settings).serve_until(stop)
        finally:
            await pool.close()


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations as MIGRATION_DATABASE_URL's role (else DATABASE_URL's), granting DATABASE_URL's
    user the engine's privileges (safe to run concurrently; a no-op when up to date)."""
    from approvals.migrate import migrate_database

    settings = _settings()
    _configure_logging(settings)
    with reported_errors():
        applied = asyncio.run(migrate_database(settings))
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@app.command("settings")
def settings_table() -> None:
    """Print every setting (environment variable, default, description) as a Markdown table."""
    typer.echo(settings_markdown())


def settings_markdown() -> str:
    """The README's settings table, generated from :class:`approvals.settings.Settings`."""
    rows = ["| Environment variable | Default | Description |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if default is None:
            shown = "(unset)"
        elif isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        else:
            shown = f"`{getattr(default, 'value', default)}`"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name.upper()}` | {shown} | {description} |")
    return "\n".join(rows)


app.add_typer(audit.app, name="audit")
app.add_typer(calendar.app, name="calendar")
app.add_typer(definitions.app, name="definitions")
app.add_typer(reports.app, name="reports")
cases.register(app)
operations.register(app)
app.command("demo", rich_help_panel="Cases")(demo.demo)
app.command("catalogue")(catalogue.catalogue)
app.command("handover", rich_help_panel="Cases")(handover.handover)
