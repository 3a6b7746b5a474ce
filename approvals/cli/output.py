"""What the ``approvals`` commands print: tables, JSON, and one readable line for an expected failure."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from approvals.event_wording import ZONE, Lang, local, local_due, parse_time
from approvals.settings import SettingsError

if TYPE_CHECKING:
    from approvals.audit.timeline import TimelineRow

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def _startup_error(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turns the engine's expected start-up failures into one readable line and an exit status."""
    from api.app import ApiStartError
    from approvals.devstack.dev import DevStackError
    from approvals.migrate import MigrationError
    from approvals.temporal import TemporalUnreachableError

    try:
        yield
    except SettingsError as error:
        raise _startup_error(str(error), 2) from None
    except TemporalUnreachableError as error:
        # The SDK's core runtime forwards its logs into Python from its own threads; after a failed connect
        # one of them may still run while the interpreter finalizes and abort it (`PyGILState_Release`,
        # SIGABRT instead of this status). Nothing is open on this path, so leave without finalizing.
        typer.echo(f"error: {error}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    except (ConnectionError, ApiStartError, DevStackError, MigrationError) as error:
        raise _startup_error(str(error), 1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def shown_time(value: Any, *, due: bool = False, labelled: bool = False) -> str:
    """A time the API gives (ISO 8601 with its offset) in the zone's local time; a due time as "end of <day>".
    Bare for a column whose header names the zone (``ZONE``), ``labelled`` where it stands alone."""
    moment = parse_time(value)
    if moment is None:
        return ""
    return local_due(moment, labelled=labelled) if due else local(moment, labelled=labelled)


def tasks_table(tasks: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("task", "stage", "status", "holder", "roles", f"due ({ZONE})", "decision", "v"):
        table.add_column(column)
    for task in tasks:
        holder = task.get("delegate_id") or task.get("claimed_by") or task.get("assignee_id") or ""
        due = shown_time(task.get("due_at"), due=True) + (" OVERDUE" if task.get("overdue") else "")
        if years := task.get("due_assumed_years"):  # the due date may move when these years are published
            due += f" (holidays of {', '.join(map(str, years))} assumed)"
        table.add_row(
            task["task_id"], task.get("stage_title") or task.get("stage_id"), task["status"], holder,
            ",".join(task.get("candidate_roles") or []), due, task.get("decision") or "", str(task.get("version", "")),
        )  # fmt: skip
    return table


def cases_table(cases: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("case", "title", "status", "stages", "applicant", f"due ({ZONE})", f"updated ({ZONE})"):
        table.add_column(column)
    for case in cases:
        table.add_row(
            case["case_id"], case["title"], case["status"], ",".join(case.get("current_stages") or []),
            case["applicant_id"], shown_time(case.get("due_at"), due=True), shown_time(case.get("updated_at")),
        )  # fmt: skip
    return table


def timeline_table(rows: Sequence[TimelineRow | Mapping[str, Any]], title: str, lang: Lang = "en") -> Table:
    """The one readable timeline (``approvals timeline``, ``approvals audit timeline``, ``approvals demo``).

    A row an event: its number; when, in UTC+8; who, with their roles; what happened in plain language, the
    comment under it, and for a completed stage how long it took against its working-day deadline (red when
    late); the legal basis. Readable in 80 columns; the payloads are left to ``--json``.
    """
    from approvals.audit.timeline import TimelineRow

    table = Table(
        title=f"{title} — times in {ZONE}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, expand=True
    )
    table.add_column("#", style="dim", no_wrap=True, justify="right")
    table.add_column("when", no_wrap=True)
    table.add_column("who", style="cyan", ratio=2, overflow="fold")
    table.add_column("what", ratio=5, overflow="fold")
    table.add_column("basis", style="magenta", ratio=2, overflow="fold")
    for item in rows:
        row = item if isinstance(item, TimelineRow) else TimelineRow.model_validate(item)
        who = row.actor_name or row.actor_id
        what, took, actor = (row.action, f" after {row.stage_time}", f"{who} ")
        if lang == "zh":
            what, took, actor = (row.action_zh, f"，用时{row.stage_time_zh}", who)
        what = what.removesuffix(took) if row.stage_time else what
        what = escape(what.removeprefix(actor))  # the actor stands in its own column
        if row.clock == "stopped":
            what = f"[bold yellow]⏸ {what}[/bold yellow]"
        elif row.clock == "resumed":
            what = f"[bold green]▶ {what}[/bold green]"
        if row.comment:
            what += f"\n[italic]“{escape(row.comment)}”[/italic]"
        if row.stage_time:
            took = f"用时{escape(row.stage_time_zh or '')}" if lang == "zh" else f"took {escape(row.stage_time)}"
            what += f"\n[red]{took}[/red]" if row.on_time is False else f"\n{took}"
        if row.roles:
            who += f" ({', '.join(row.roles)})"
        when = shown_time(row.at).replace(" ", "\n")  # date over time: a narrow column
        table.add_row(str(row.seq), when, escape(who), what, escape(row.legal_basis))
    return table


def print_page(page: dict[str, Any], table: Table) -> None:
    console.print(table)
    if page.get("next_offset") is not None:
        console.print(f"more: --offset {page['next_offset']}")
