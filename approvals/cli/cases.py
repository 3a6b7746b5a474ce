"""``approvals`` commands that start and read cases: start, cases, case, inbox, timeline, history export,
whoami. Thin over the HTTP API (the rules live in ``approvals.service``); the operations on tasks and cases
are generated from the registry in ``approvals.cli.operations``.

Every command takes ``--api-url`` [APPROVALS_API_URL] and ``--token`` [APPROVALS_TOKEN] (for the dev
stack: a token from ``.approvals/dev-tokens.json``), prints readable tables, or JSON with ``--json``.
Exit status: see ``approvals.cli.client``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from approvals.cli.client import DEFAULT_API_URL, EXIT_USAGE, ApiError, ApiUrl, AsJson, Token, call, fail, get
from approvals.cli.output import (
    cases_table,
    console,
    errors,
    print_json,
    print_page,
    shown_time,
    tasks_table,
    timeline_table,
)


def start(
    process: Annotated[str, typer.Argument(help="Registered process, e.g. generic, project-approval.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="JSON start request (`-` reads stdin).", allow_dash=True)],
    business_key: Annotated[
        str | None, typer.Option("--business-key", help="Overrides the file's business_key.")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Start a case (a repeat with the same business key and payload returns the same case)."""
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        body = json.loads(text)
    except (OSError, ValueError) as error:
        fail(ApiError(EXIT_USAGE, f"cannot read the start request from {file}: {error}"))
    if business_key:
        body["business_key"] = business_key
    result = call(api_url, token, "POST", f"/v1/cases/{process}", body=body).json()
    if as_json:
        print_json(result)
    else:
        console.print(f"{'started' if result['created'] else 'already started'}: {result['case_id']}", highlight=False)


def cases(
    process: Annotated[str | None, typer.Option(help="Only this process.")] = None,
    status: Annotated[str | None, typer.Option(help="in_review, awaiting_supplement, approved, rejected, ...")] = None,
    stage: Annotated[str | None, typer.Option(help="Only cases currently at this stage.")] = None,
    business_key: Annotated[str | None, typer.Option("--business-key", help="Exactly this business key.")] = None,
    key_prefix: Annotated[str | None, typer.Option("--key-prefix", help="Business keys starting with it.")] = None,
    applicant: Annotated[str | None, typer.Option(help="Applicant id.")] = None,
    name: Annotated[str | None, typer.Option(help="Part of the applicant's name (2+ characters, 中文 too).")] = None,
    credit_code: Annotated[str | None, typer.Option("--credit-code", help="Unified social credit code.")] = None,
    title: Annotated[str | None, typer.Option(help="Part of the title (2+ characters).")] = None,
    unit: Annotated[str | None, typer.Option(help="The applicant's unit.")] = None,
    received_from: Annotated[
        str | None, typer.Option("--received-from", help="Local date (UTC+8), YYYY-MM-DD.")
    ] = None,
    received_to: Annotated[str | None, typer.Option("--received-to", help="Local date, inclusive.")] = None,
    decided_from: Annotated[str | None, typer.Option("--decided-from", help="Local date.")] = None,
    decided_to: Annotated[str | None, typer.Option("--decided-to", help="Local date, inclusive.")] = None,
    sort: Annotated[
        str, typer.Option(help="-started_at (default), started_at, -updated_at, -decided_at, business_key ...")
    ] = "-started_at",
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Search the cases you may read (every filter given must hold); latest received first by default."""
    page = get(
        api_url, token, "/v1/cases", process=process, status=status, stage=stage, business_key=business_key,
        business_key_prefix=key_prefix, applicant_id=applicant, applicant_name=name, credit_code=credit_code,
        title=title, unit=unit, received_from=received_from, received_to=received_to, decided_from=decided_from,
        decided_to=decided_to, sort=sort, limit=limit, offset=offset,
    )  # fmt: skip
    print_json(page) if as_json else print_page(page, cases_table(page["items"], f"cases (offset {offset})"))


def case(
    case_id: Annotated[str, typer.Argument(help="<process>:<business key>")],
    live: Annotated[bool, typer.Option("--live", help="Also show the workflow's live view.")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Show a case: status, stages, tasks, decisions, due dates."""
    detail = get(api_url, token, f"/v1/cases/{case_id}", live=str(live).lower())
    if as_json:
        print_json(detail)
        return
    summary = detail.get("case") or {}
    live_view = detail.get("live") or {}
    console.print(f"[bold]{case_id}[/] {summary.get('title') or live_view.get('title', '')}", highlight=False)
    console.print(
        f"status {summary.get('status') or live_view.get('status')}, stages "
        f"{','.join(summary.get('current_stages') or live_view.get('current_stages') or []) or '-'}, "
        f"applicant {summary.get('applicant_id') or live_view.get('applicant_id')}, "
        f"due {shown_time(summary.get('due_at'), due=True, labelled=True) or '-'}, "
        f"outcome {summary.get('outcome') or '-'}",
        highlight=False,
    )
    console.print(tasks_table(detail.get("tasks") or live_view.get("tasks") or [], "tasks"))


def inbox(
    process: Annotated[str | None, typer.Option()] = None,
    stage: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[
        bool | None, typer.Option("--priority/--no-priority", help="Only (non-)priority cases.")
    ] = None,
    overdue: Annotated[bool | None, typer.Option("--overdue/--not-overdue")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Open tasks for you or your roles, by due date."""
    page = get(
        api_url, token, "/v1/inbox", process=process, stage=stage,
        priority=None if priority is None else str(priority).lower(),
        overdue=None if overdue is None else str(overdue).lower(), limit=limit, offset=offset,
    )  # fmt: skip
    print_json(page) if as_json else print_page(page, tasks_table(page["items"], "inbox"))


def timeline(case_id: str, api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: AsJson = False) -> None:
    """What happened, in plain language: who, when (UTC+8), role, legal basis, comment, stage times (`--json`:
    every event's data too)."""
    rows = get(api_url, token, f"/v1/cases/{case_id}/timeline")
    print_json(rows) if as_json else console.print(timeline_table(rows, f"timeline of {case_id}"))


def history_export(
    case_id: str,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Export the raw Temporal history (the JSON `temporal workflow show --output json` prints)."""
    text = call(api_url, token, "GET", f"/v1/cases/{case_id}/history").text
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        errors.print(f"wrote {output} ({len(text)} bytes)", highlight=False)


def whoami(api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: AsJson = False) -> None:
    """The principal your token stands for."""
    me = get(api_url, token, "/v1/me")
    print_json(me) if as_json else console.print(
        f"{me['id']} {me['name']} ({me['unit']}) roles: {', '.join(me['roles'])}"
    )


def register(app: typer.Typer) -> None:
    """Adds the commands that start and read cases to the ``approvals`` CLI."""
    for function, name in (
        (start, "start"), (cases, "cases"), (case, "case"), (inbox, "inbox"), (timeline, "timeline"),
        (whoami, "whoami"),
    ):  # fmt: skip
        app.command(name, rich_help_panel="Cases")(function)
    history = typer.Typer(help="Temporal history of a case.", no_args_is_help=True)
    history.command("export")(history_export)
    app.add_typer(history, name="history", rich_help_panel="Cases")
