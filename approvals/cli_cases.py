"""``approvals`` commands for people at a terminal: start, cases, case, inbox, every task and case
operation, timeline and history export. Thin over the HTTP API (the rules live in ``approvals.service``).

Every command takes ``--api-url`` [APPROVALS_API_URL] and ``--token`` [APPROVALS_TOKEN] (for the dev
stack: a token from ``.approvals/dev-tokens.json``), prints readable tables, or JSON with ``--json``.

Exit status: 0 done; 2 usage error (bad arguments, invalid request, unknown process/case); 3 denied
(401/403, or refused by the case's rules: the reason code is printed); 4 server error or API unreachable.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import httpx
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from approvals.audit.timeline import TimelineRow
    from approvals.event_wording import Lang

__all__ = ["EXIT_DENIED", "EXIT_SERVER", "EXIT_USAGE", "ApiClient", "ApiError", "register", "timeline_table"]

EXIT_USAGE, EXIT_DENIED, EXIT_SERVER = 2, 3, 4
DEFAULT_API_URL = "http://127.0.0.1:8000"
TIMEOUT_SECONDS = 60.0

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="APPROVALS_API_URL", help="Base URL of the HTTP API.")]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="APPROVALS_TOKEN", help="Bearer token (dev: from .approvals/dev-tokens.json)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
IdemKey = Annotated[
    str | None,
    typer.Option("--idempotency-key", help="Request id: repeating the command with it applies the operation once."),
]
ExpectedVersion = Annotated[
    int | None, typer.Option("--expected-version", help="Refuse if the task changed since you read this version.")
]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Comment recorded with the operation.")]


class ApiError(Exception):
    def __init__(self, exit_code: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.body = body


def exit_code_for(status: int, code: str | None) -> int:
    if status >= 500:
        return EXIT_SERVER
    if status in (401, 403, 409) or (status == 422 and code not in (None, "VALIDATION_ERROR")):
        return EXIT_DENIED
    return EXIT_USAGE


class ApiClient:
    """Synchronous client of the HTTP API; every failure becomes an :class:`ApiError` with an exit code."""

    def __init__(self, api_url: str, token: str | None) -> None:
        if not token:
            raise ApiError(
                EXIT_USAGE,
                "no token: set APPROVALS_TOKEN or pass --token (`approvals dev` writes tokens to "
                ".approvals/dev-tokens.json)",
            )
        self.api_url = api_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_SECONDS
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            response = self.http.request(method, path, json=body, params=query, headers=headers)
        except httpx.TransportError as error:
            raise ApiError(
                EXIT_SERVER,
                f"cannot reach the API at {self.api_url} ({type(error).__name__}: {error}); is `approvals dev` "
                "or `approvals api` running? (APPROVALS_API_URL / --api-url)",
            ) from None
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:500]}
            code = problem.get("code") if isinstance(problem, dict) else None
            detail = problem.get("detail", "") if isinstance(problem, dict) else str(problem)
            fields = problem.get("errors") or [] if isinstance(problem, dict) else []
            lines = [f"{response.status_code} {code or ''}: {detail}".replace(" :", ":")]
            lines += [f"  {e.get('location', '')} {e.get('field')}: {e.get('message')}" for e in fields[1:]]
            raise ApiError(exit_code_for(response.status_code, code), "\n".join(lines), problem)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any, *, idempotency_key: str | None = None) -> Any:
        return self.request("POST", path, body=body, idempotency_key=idempotency_key).json()


def _fail(error: ApiError) -> NoReturn:
    errors.print(f"[bold red]error[/]: {error.message}", highlight=False)
    raise typer.Exit(error.exit_code)


def _client(api_url: str, token: str | None) -> ApiClient:
    try:
        return ApiClient(api_url, token)
    except ApiError as error:
        _fail(error)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return text[:16].replace("T", " ") if len(text) >= 19 and text[4] == "-" and text[10] == "T" else text


# --- tables -------------------------------------------------------------------------------------------


def tasks_table(tasks: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("task", "stage", "status", "holder", "roles", "due", "decision", "v"):
        table.add_column(column)
    for task in tasks:
        holder = task.get("delegate_id") or task.get("claimed_by") or task.get("assignee_id") or ""
        due = _short(task.get("due_at")) + (" OVERDUE" if task.get("overdue") else "")
        table.add_row(
            task["task_id"], task.get("stage_title") or task.get("stage_id"), task["status"], holder,
            ",".join(task.get("candidate_roles") or []), due, task.get("decision") or "", str(task.get("version", "")),
        )  # fmt: skip
    return table


def cases_table(cases: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("case", "title", "status", "stages", "applicant", "due", "updated"):
        table.add_column(column)
    for case in cases:
        table.add_row(
            case["case_id"], case["title"], case["status"], ",".join(case.get("current_stages") or []),
            case["applicant_id"], _short(case.get("due_at")), _short(case.get("updated_at")),
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
        title=f"{title} — times in UTC+8", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, expand=True
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
        when = row.local_time.replace(" ", "\n")  # date over time: a narrow column
        table.add_row(str(row.seq), when, escape(who), what, escape(row.legal_basis))
    return table


def _print_result(result: dict[str, Any], operation: str) -> None:
    line = f"{operation}: done - case {result['case_id']} is {result['status']} (event #{result['last_seq']})"
    task = result.get("task")
    if task:
        holder = task.get("delegate_id") or task.get("claimed_by") or task.get("assignee_id") or "pool"
        line += f"; task {task['task_id']} {task['status']} ({holder}, version {task['version']})"
    console.print(line, highlight=False)


# --- commands -----------------------------------------------------------------------------------------


def _call(
    api_url: str,
    token: str | None,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> httpx.Response:
    """One request with the caller's token; a failure ends the command with its exit status."""
    client = _client(api_url, token)
    try:
        return client.request(method, path, body=body, params=params, idempotency_key=idempotency_key)
    except ApiError as error:
        _fail(error)


def _get(api_url: str, token: str | None, path: str, **params: Any) -> Any:
    return _call(api_url, token, "GET", path, params=params).json()


def _operate(api_url: str, token: str | None, as_json: bool, path: str, body: dict[str, Any], key: str | None) -> None:
    """POSTs one operation (the last segment of ``path``), applied once per idempotency key."""
    result = _call(api_url, token, "POST", path, body=body, idempotency_key=key or uuid.uuid4().hex).json()
    _print_json(result) if as_json else _print_result(result, path.rsplit("/", 1)[-1])


def _print_page(page: dict[str, Any], table: Table) -> None:
    console.print(table)
    if page.get("next_offset") is not None:
        console.print(f"more: --offset {page['next_offset']}")


def _task_path(task_id: str, operation: str) -> str:
    return f"/v1/tasks/{task_id}/{operation}"


def _case_path(case_id: str, operation: str) -> str:
    return f"/v1/cases/{case_id}/{operation}"


def _target_path(target: str, operation: str) -> str:
    return _task_path(target, operation) if "/" in target else _case_path(target, operation)


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _named(command: Callable[..., None], name: str, doc: str) -> Callable[..., None]:
    command.__name__ = command.__qualname__ = name.replace("-", "_")
    command.__doc__ = doc
    return command


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
        _fail(ApiError(EXIT_USAGE, f"cannot read the start request from {file}: {error}"))
    if business_key:
        body["business_key"] = business_key
    result = _call(api_url, token, "POST", f"/v1/cases/{process}", body=body).json()
    if as_json:
        _print_json(result)
    else:
        console.print(f"{'started' if result['created'] else 'already started'}: {result['case_id']}", highlight=False)


def cases(
    process: Annotated[str | None, typer.Option(help="Only this process.")] = None,
    status: Annotated[str | None, typer.Option(help="in_review, awaiting_supplement, approved, rejected, ...")] = None,
    stage: Annotated[str | None, typer.Option(help="Only cases currently at this stage.")] = None,
    business_key: Annotated[str | None, typer.Option("--business-key")] = None,
    applicant: Annotated[str | None, typer.Option(help="Applicant id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List the cases you may read, most recently updated first."""
    page = _get(
        api_url, token, "/v1/cases", process=process, status=status, stage=stage, business_key=business_key,
        applicant_id=applicant, limit=limit, offset=offset,
    )  # fmt: skip
    _print_json(page) if as_json else _print_page(page, cases_table(page["items"], f"cases (offset {offset})"))


def case(
    case_id: Annotated[str, typer.Argument(help="<process>:<business key>")],
    live: Annotated[bool, typer.Option("--live", help="Also show the workflow's live view.")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Show a case: status, stages, tasks, decisions, due dates."""
    detail = _get(api_url, token, f"/v1/cases/{case_id}", live=str(live).lower())
    if as_json:
        _print_json(detail)
        return
    summary = detail.get("case") or {}
    live_view = detail.get("live") or {}
    console.print(f"[bold]{case_id}[/] {summary.get('title') or live_view.get('title', '')}", highlight=False)
    console.print(
        f"status {summary.get('status') or live_view.get('status')}, stages "
        f"{','.join(summary.get('current_stages') or live_view.get('current_stages') or []) or '-'}, "
        f"applicant {summary.get('applicant_id') or live_view.get('applicant_id')}, "
        f"due {_short(summary.get('due_at')) or '-'}, "
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
    page = _get(
        api_url, token, "/v1/inbox", process=process, stage=stage,
        priority=None if priority is None else str(priority).lower(),
        overdue=None if overdue is None else str(overdue).lower(), limit=limit, offset=offset,
    )  # fmt: skip
    _print_json(page) if as_json else _print_page(page, tasks_table(page["items"], "inbox"))


def _claim_command(operation: str, doc: str) -> Callable[..., None]:
    """claim and unclaim: a task and, optionally, the version you read."""

    def command(
        task_id: str, expected_version: ExpectedVersion = None, idempotency_key: IdemKey = None,
        api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: AsJson = False,
    ) -> None:  # fmt: skip
        body = _without_none(expected_version=expected_version)
        _operate(api_url, token, as_json, _task_path(task_id, operation), body, idempotency_key)

    return _named(command, operation, doc)


claim = _claim_command("claim", "Take a pool task for yourself.")
unclaim = _claim_command("unclaim", "Give a claimed task back to the pool.")


def decide(
    task_id: str,
    decision: Annotated[str, typer.Argument(help="approve, reject, approve_with_conditions, return, abstain")],
    comment: Comment = "",
    condition: Annotated[list[str] | None, typer.Option("--condition", help="For approve_with_conditions.")] = None,
    return_to: Annotated[str | None, typer.Option("--return-to", help="For return: the earlier stage id.")] = None,
    expected_version: ExpectedVersion = None,
    idempotency_key: IdemKey = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Decide a task."""
    body = _without_none(
        decision=decision, comment=comment, conditions=condition or None, return_to=return_to,
        expected_version=expected_version,
    )  # fmt: skip
    _operate(api_url, token, as_json, _task_path(task_id, "decide"), body, idempotency_key)


def return_(
    task_id: str,
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why (required).")],
    to: Annotated[str | None, typer.Option("--to", help="Earlier stage id (default: the previous one).")] = None,
    expected_version: ExpectedVersion = None,
    idempotency_key: IdemKey = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """退回: send the case back to an earlier stage."""
    body = _without_none(comment=comment, return_to=to, expected_version=expected_version)
    _operate(api_url, token, as_json, _task_path(task_id, "return"), body, idempotency_key)


def _hand_over_command(operation: str, doc: str) -> Callable[..., None]:
    """transfer and delegate: a task, the user it goes to, a comment."""

    def command(
        task_id: str, to_user: str, comment: Comment = "", expected_version: ExpectedVersion = None,
        idempotency_key: IdemKey = None, api_url: ApiUrl = DEFAULT_API_URL, token: Token = None,
        as_json: AsJson = False,
    ) -> None:  # fmt: skip
        body = _without_none(to_user=to_user, comment=comment, expected_version=expected_version)
        _operate(api_url, token, as_json, _task_path(task_id, operation), body, idempotency_key)

    return _named(command, operation, doc)


transfer = _hand_over_command("transfer", "转交: hand the task to another user.")
delegate = _hand_over_command("delegate", "Let another user act for you (you stay accountable).")


def add_signer(
    task_id: str,
    signer: str,
    position: Annotated[str, typer.Option(help="before or after you.")] = "after",
    comment: Comment = "",
    expected_version: ExpectedVersion = None,
    idempotency_key: IdemKey = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """加签: add a signer before or after you."""
    body = _without_none(signer=signer, position=position, comment=comment, expected_version=expected_version)
    _operate(api_url, token, as_json, _task_path(task_id, "add-signer"), body, idempotency_key)


def urge(
    task_id: str, comment: Comment = "", idempotency_key: IdemKey = None,
    api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """催办: remind the task's holder."""
    _operate(api_url, token, as_json, _task_path(task_id, "urge"), {"comment": comment}, idempotency_key)


def comment(
    target: Annotated[str, typer.Argument(help="A task id, or a case id for a comment on the whole case.")],
    text: str,
    idempotency_key: IdemKey = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Comment on a task or a case."""
    _operate(api_url, token, as_json, _target_path(target, "comment"), {"text": text}, idempotency_key)


def cc(
    target: Annotated[str, typer.Argument(help="A task id or a case id.")],
    observers: Annotated[list[str], typer.Argument(help="User ids to inform.")],
    comment: Comment = "",
    idempotency_key: IdemKey = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """抄送: inform other users."""
    body = {"observers": observers, "comment": comment}
    _operate(api_url, token, as_json, _target_path(target, "cc"), body, idempotency_key)


def _reason_command(operation: str, doc: str, reason_help: str) -> Callable[..., None]:
    """withdraw and extend: a case and the reason."""

    def command(
        case_id: str, reason: str, idempotency_key: IdemKey = None, api_url: ApiUrl = DEFAULT_API_URL,
        token: Token = None, as_json: AsJson = False,
    ) -> None:  # fmt: skip
        _operate(api_url, token, as_json, _case_path(case_id, operation), {"reason": reason}, idempotency_key)

    command.__annotations__["reason"] = Annotated[str, typer.Option("--reason", help=reason_help)]
    return _named(command, operation, doc)


withdraw = _reason_command(
    "withdraw", "撤回: withdraw the application (applicant or the starting service).", "Why the applicant withdraws."
)
extend = _reason_command(
    "extend", "Extend the statutory period once (needs the process's extension role).", "Why the period is extended."
)


def _document(spec: str) -> dict[str, Any]:
    parts = spec.split("|")
    if len(parts) < 3 or not parts[2].isdigit():
        raise typer.BadParameter(f"expected URI|SHA256|SIZE[|NAME], got {spec!r}", param_hint="--document")
    return {"uri": parts[0], "sha256": parts[1], "size": int(parts[2]), "name": parts[3] if len(parts) > 3 else ""}


def supplement(
    case_id: str,
    document: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="URI|SHA256|SIZE[|NAME], by reference; repeatable.")
    ] = None,
    comment: Comment = "",
    idempotency_key: IdemKey = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """补正: supply the requested material (the clock restarts)."""
    body = {"documents": [_document(spec) for spec in document or []], "comment": comment}
    _operate(api_url, token, as_json, _case_path(case_id, "supplement"), body, idempotency_key)


def request_supplement(
    case_id: str,
    item: Annotated[list[str], typer.Option("--item", "-i", help="ITEM[:REASON]; list everything missing at once.")],
    comment: Comment = "",
    idempotency_key: IdemKey = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Ask the applicant for supplementary material (the statutory clock stops)."""
    items = [dict(zip(("item", "reason"), spec.split(":", 1), strict=False)) for spec in item]
    body = {"items": items, "comment": comment}
    _operate(api_url, token, as_json, _case_path(case_id, "request-supplement"), body, idempotency_key)


def timeline(case_id: str, api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: AsJson = False) -> None:
    """What happened, in plain language: who, when (UTC+8), role, legal basis, comment, stage times (`--json`:
    every event's data too)."""
    rows = _get(api_url, token, f"/v1/cases/{case_id}/timeline")
    _print_json(rows) if as_json else console.print(timeline_table(rows, f"timeline of {case_id}"))


def history_export(
    case_id: str,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
) -> None:
    """Export the raw Temporal history (the JSON `temporal workflow show --output json` prints)."""
    text = _call(api_url, token, "GET", f"/v1/cases/{case_id}/history").text
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        errors.print(f"wrote {output} ({len(text)} bytes)", highlight=False)


def whoami(api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: AsJson = False) -> None:
    """The principal your token stands for."""
    me = _get(api_url, token, "/v1/me")
    _print_json(me) if as_json else console.print(
        f"{me['id']} {me['name']} ({me['unit']}) roles: {', '.join(me['roles'])}"
    )


def register(app: typer.Typer) -> None:
    """Adds the case commands to the ``approvals`` CLI."""
    for function, name in (
        (start, "start"), (cases, "cases"), (case, "case"), (inbox, "inbox"), (claim, "claim"), (unclaim, "unclaim"),
        (decide, "decide"), (transfer, "transfer"), (delegate, "delegate"), (add_signer, "add-signer"),
        (return_, "return"), (comment, "comment"), (urge, "urge"), (cc, "cc"), (withdraw, "withdraw"),
        (supplement, "supplement"), (request_supplement, "request-supplement"), (extend, "extend"),
        (timeline, "timeline"), (whoami, "whoami"),
    ):  # fmt: skip
        app.command(name, rich_help_panel="Cases")(function)
    history = typer.Typer(help="Temporal history of a case.", no_args_is_help=True)
    history.command("export")(history_export)
    app.add_typer(history, name="history", rich_help_panel="Cases")

    from approvals.demo import demo

    app.command("demo", rich_help_panel="Cases")(demo)
