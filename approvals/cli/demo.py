"""``approvals demo``: against a running ``approvals dev``, one complete case of each registered process.

Every role acts in turn with its dev token (from ``<DATA_DIR>/dev-tokens.json``), over the HTTP API like
any client; one refused action is shown (and recorded as a denied attempt); each case's timeline is
printed at the end. The generic case follows a script that shows the kernel's operations (claim, 补正,
urge, comment, parallel review, approval with conditions); every other process is started from a sample
application and driven to its end by giving each open task to a dev principal who may work it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from approvals.cli.client import EXIT_SERVER, EXIT_USAGE, ApiClient, ApiError
from approvals.cli.output import timeline_table
from schemas.error_tolerance import EXAMPLE_APPLICATION as ERROR_TOLERANCE_APPLICATION
from schemas.power import EXAMPLE_PROPOSAL as POWER_PROPOSAL
from schemas.project import EXAMPLE_APPLICATION
from schemas.talent import EXAMPLE_APPLICATION as TALENT_APPLICATION

console = Console()

WAIT_SECONDS = 30.0
SETTLED_STATUSES = {"approved", "approved_with_conditions", "rejected", "withdrawn", "cancelled", "under_supervision"}
"""Where a demo case ends: decided, or decided and now under periodic supervision (which runs for years)."""
DEMO_APPLICANT = {
    "id": "ent-applicant",
    "name": "新疆示例物流有限公司 经办人",
    "unit": "新疆示例物流有限公司",
    "roles": ["applicant"],
}


class DemoError(RuntimeError):
    pass


class Cast:
    """The dev principals and an API client per principal."""

    def __init__(self, api_url: str, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.clients = {entry["id"]: ApiClient(api_url, entry["token"]) for entry in entries if entry.get("token")}
        self.roles = {entry["id"]: list(entry.get("roles", [])) for entry in entries}

    def with_role(self, role: str) -> str:
        for user_id, roles in self.roles.items():
            if role in roles and user_id in self.clients:
                return user_id
        raise DemoError(f"no dev principal with the role {role!r} in the tokens file")

    def __getitem__(self, user_id: str) -> ApiClient:
        if user_id not in self.clients:
            raise DemoError(f"no dev token for {user_id!r} in the tokens file")
        return self.clients[user_id]


def _say(user_id: str, roles: list[str], what: str, result: str = "") -> None:
    console.print(
        f"  [cyan]{user_id}[/] [dim]({','.join(roles)})[/] {what}" + (f" -> {result}" if result else ""),
        highlight=False,
    )


def act(cast: Cast, user_id: str, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    result: dict[str, Any] = cast[user_id].post(path, body, idempotency_key=uuid.uuid4().hex)
    _say(user_id, cast.roles[user_id], what, f"case {result['status']}")
    return result


def show_denial(cast: Cast, user_id: str, path: str, body: dict[str, Any], what: str) -> None:
    try:
        cast[user_id].post(path, body, idempotency_key=uuid.uuid4().hex)
    except ApiError as error:
        _say(user_id, cast.roles[user_id], what, f"[bold red]refused[/] {error.message}")
        return
    raise DemoError(f"{what} by {user_id} was expected to be refused but was accepted")


def wait_for_task(cast: Cast, user_id: str, case_id: str, stage: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        page = cast[user_id].get("/v1/inbox", stage=stage, limit=200)
        for task in page["items"]:
            if task["case_id"] == case_id:
                return task  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise DemoError(f"no {stage} task of {case_id} reached {user_id}'s inbox within {WAIT_SECONDS:g}s")


def wait_for_status(cast: Cast, reader: str, case_id: str) -> str:
    """Waits until the case's projection shows it settled, as :func:`drive` saw it in the live view.

    A process with supervision (power-adjustment, talent-policy) ends its review as ``under_supervision``
    and stays so for years; waiting for a final status there would always time out.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    status = ""
    while time.monotonic() < deadline:
        case = cast[reader].get(f"/v1/cases/{case_id}").get("case") or {}
        status = case.get("status", "")
        if status in SETTLED_STATUSES:
            return status
        time.sleep(0.2)
    raise DemoError(f"case {case_id} is still {status or 'starting'} after {WAIT_SECONDS:g}s")


def start(cast: Cast, process: str, body: dict[str, Any]) -> str:
    service = cast.with_role("service")
    started = cast[service].post(f"/v1/cases/{process}", body)
    _say(service, cast.roles[service], f"starts {process} case {body['business_key']!r}", started["case_id"])
    return str(started["case_id"])


# --- the generic case ---------------------------------------------------------------------------------

GENERIC_DEFINITION: dict[str, Any] = {
    "process": "generic",
    "title": "户外广告设置许可 Outdoor advertising permit (demo)",
    "legal_basis": "Administrative Licensing Law Art. 29",
    "steps": [
        {
            "kind": "stage", "id": "acceptance", "title": "受理 Acceptance",
            "legal_basis": "Administrative Licensing Law Art. 32", "candidate_roles": ["one_window"],
            "may_request_supplement": True, "deadline": {"working_days": 5},
        },
        {
            "kind": "parallel", "id": "reviews", "title": "会审 Joint review",
            "branches": [
                [{
                    "kind": "stage", "id": "planning", "title": "规划审查 Planning review", "legal_basis": "Art. 10",
                    "assignees": ["reviewer-planning"],
                    "deadline": {"working_days": 5, "escalate_to_role": "supervisor"},
                }],
                [{
                    "kind": "stage", "id": "safety", "title": "安全审查 Safety review", "legal_basis": "Art. 10",
                    "candidate_roles": ["reviewer_safety"],
                }],
            ],
        },
        {
            "kind": "stage", "id": "decision", "title": "审批决定 Decision", "legal_basis": "Art. 10",
            "candidate_roles": ["head"],
            "allowed_decisions": ["approve", "approve_with_conditions", "reject", "return"],
        },
    ],
    # 补正 comes before acceptance (Art. 32): the 20 working days start when the acceptance stage accepts.
    "deadline": {
        "working_days": 20, "starts_after_stage": "acceptance", "acceptance_working_days": 5,
        "extension_working_days": 10, "extension_role": "head",
    },
}  # fmt: skip


def generic_request(business_key: str) -> dict[str, Any]:
    return {
        "business_key": business_key,
        "title": "阿拉山口口岸大道户外广告牌 Billboard on Port Avenue",
        "applicant": DEMO_APPLICANT,
        "definition": GENERIC_DEFINITION,
        "data": {"site": "Port Avenue 7", "area_m2": 24},
    }


def run_generic(cast: Cast) -> str:
    case_id = start(cast, "generic", generic_request(f"DEMO-{uuid.uuid4().hex[:8]}"))
    officer, service = cast.with_role("one_window"), cast.with_role("service")
    acceptance = wait_for_task(cast, officer, case_id, "acceptance")["task_id"]
    show_denial(
        cast, cast.with_role("reviewer_safety"), f"/v1/tasks/{acceptance}/claim", {},
        "tries to claim the acceptance task (not a one-window officer)",
    )  # fmt: skip
    act(cast, officer, f"/v1/tasks/{acceptance}/claim", {}, "claims the acceptance task")
    act(
        cast, officer, f"/v1/cases/{case_id}/request-supplement",
        {"items": [{"item": "设置位置平面图 site plan", "reason": "not signed"}], "comment": "请补正"},
        "asks for supplementary material before accepting (补正, the clock stops)",
    )  # fmt: skip
    act(
        cast, service, f"/v1/cases/{case_id}/supplement",
        {"documents": [{"uri": "s3://portal/demo/site-plan.pdf", "sha256": "c" * 64, "size": 48213, "name": "plan"}]},
        "supplies the signed site plan for the applicant (the acceptance clock starts again, whole)",
    )  # fmt: skip
    act(
        cast,
        officer,
        f"/v1/tasks/{acceptance}/decide",
        {"decision": "approve", "comment": "材料齐全"},
        "accepts the application",
    )

    planner = "reviewer-planning"
    planning = wait_for_task(cast, planner, case_id, "planning")["task_id"]
    safety_reviewer = cast.with_role("reviewer_safety")
    safety = wait_for_task(cast, safety_reviewer, case_id, "safety")["task_id"]
    act(cast, planner, f"/v1/tasks/{planning}/comment", {"text": "符合控制性详细规划"}, "comments")
    act(cast, planner, f"/v1/tasks/{planning}/decide", {"decision": "approve"}, "approves the planning review")
    supervisor = cast.with_role("supervisor")
    act(cast, supervisor, f"/v1/tasks/{safety}/urge", {"comment": "请尽快办理"}, "urges the safety review (催办)")
    act(cast, safety_reviewer, f"/v1/tasks/{safety}/claim", {}, "claims the safety review")
    act(cast, safety_reviewer, f"/v1/tasks/{safety}/decide", {"decision": "approve"}, "approves the safety review")

    head = cast.with_role("head")
    decision = wait_for_task(cast, head, case_id, "decision")["task_id"]
    act(cast, head, f"/v1/tasks/{decision}/claim", {}, "claims the decision")
    act(
        cast, head, f"/v1/tasks/{decision}/decide",
        {"decision": "approve_with_conditions", "conditions": ["广告牌夜间照明不得晚于23:00"], "comment": "同意"},
        "approves with a condition",
    )  # fmt: skip
    return case_id


# --- any other process: a sample application, then every open task to someone who may work it ----------


def project_request(business_key: str) -> dict[str, Any]:
    return {
        "business_key": business_key,
        "title": "进口铜精矿保税加工项目 Imported copper concentrate bonded processing (demo)",
        "applicant": DEMO_APPLICANT,
        "application": {
            **EXAMPLE_APPLICATION,
            "enterprise": {
                "name": "新疆示例物流有限公司",
                "unified_social_credit_code": "91350100M000100Y43",
                "contact": {"name": "马林", "phone": "+86 909 555 0101", "email": "ma.lin@example.com"},
            },
            "project_name": "进口铜精矿保税加工生产线",
        },
    }


def application_request(title: str, application: dict[str, Any], applicant: dict[str, Any] = DEMO_APPLICANT):
    def request(business_key: str) -> dict[str, Any]:
        return {"business_key": business_key, "title": title, "applicant": applicant, "application": application}

    return request


SAMPLE_REQUESTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "project-approval": project_request,
    "power-adjustment": application_request(
        "阿拉山口综保区管委会管理和服务职能目录 Function catalogue (demo)",
        POWER_PROPOSAL,
        {"id": "organ-head", "name": "管委会主任 冯主任 (organ head)", "unit": "管委会", "roles": ["head"]},
    ),
    "error-tolerance": application_request("容错申请 铁路货物保税转关一次申报试点 (demo)", ERROR_TOLERANCE_APPLICATION),
    "talent-policy": application_request("一人一策 首席冶金工程师 (demo)", TALENT_APPLICATION),
}
"""Start requests of the processes the demo drives generically; add one when a process is registered."""


def _who_may_work(cast: Cast, task: dict[str, Any]) -> str | None:
    holder = task.get("delegate_id") or task.get("claimed_by") or task.get("assignee_id")
    if holder:
        return holder if holder in cast.clients else None
    for role in task.get("candidate_roles") or []:
        try:
            return cast.with_role(role)
        except DemoError:
            continue
    return None


DEMO_EVIDENCE = {"uri": "s3://demo/evidence/record.pdf", "sha256": "e" * 64, "size": 1024, "name": "核查材料"}

AS_THE_STAGE_ASKS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "DECISION_NOT_ALLOWED": (
        "with a condition",
        lambda: {"decision": "approve_with_conditions", "conditions": ["按审查意见整改"]},
    ),
    "DUE_DATE_REQUIRED": (  # e.g. Art. 25's rectification deadline
        "setting a date 30 days on",
        lambda: {"due_date": (date.today() + timedelta(days=30)).isoformat()},
    ),
}
"""How the demo approves again when a stage refuses a plain approval: the code, what is added."""


def approve(cast: Cast, user_id: str, path: str, stage_title: str, findings: list[dict[str, Any]]) -> None:
    """Approves with reasons and the findings; where the stage asks for more, approves again as it asks."""
    body: dict[str, Any] = {"decision": "approve", "comment": "同意", "findings": findings}
    what = f"approves {stage_title}" + (" (a finding on each statutory criterion)" if findings else "")
    for _ in range(len(AS_THE_STAGE_ASKS) + 1):
        try:
            act(cast, user_id, path, body, what)
            return
        except ApiError as error:
            code = error.body.get("code") if error.body else None
            if code not in AS_THE_STAGE_ASKS:
                raise
            added, changes = AS_THE_STAGE_ASKS[code]
            body = {**body, **changes()}
            what = f"approves {stage_title} {added}"
    raise DemoError(f"{stage_title}: no approval the stage accepts")


def drive(cast: Cast, case_id: str) -> None:
    """Gives every open task to a dev principal who may work it and approves, until the case ends."""
    reader = cast.with_role("admin")
    deadline = time.monotonic() + WAIT_SECONDS * 4
    done: set[str] = set()
    while time.monotonic() < deadline:
        view = cast[reader].get(f"/v1/cases/{case_id}", live="true").get("live") or {}
        if view.get("status") in SETTLED_STATUSES:
            return
        open_tasks = [
            t for t in view.get("tasks", []) if t["status"] in ("open", "claimed") and t["task_id"] not in done
        ]
        if not open_tasks:
            time.sleep(0.2)
            continue
        for task in open_tasks:
            user_id = _who_may_work(cast, task)
            if user_id is None:
                raise DemoError(f"no dev principal may work task {task['task_id']} (roles {task['candidate_roles']})")
            path = f"/v1/tasks/{task['task_id']}"
            if task["status"] == "open" and not task.get("assignee_id"):
                act(cast, user_id, f"{path}/claim", {}, f"claims {task['stage_title']}")
            findings = [
                {"criterion": c, "holds": True, "note": "核查属实", "evidence": [DEMO_EVIDENCE]}
                for c in task.get("criteria") or []
            ]
            approve(cast, user_id, f"{path}/decide", task["stage_title"], findings)
            done.add(task["task_id"])
    raise DemoError(f"case {case_id} did not end within {WAIT_SECONDS * 4:g}s")


def print_timeline(cast: Cast, case_id: str) -> None:
    auditor = cast.with_role("auditor")
    rows = cast[auditor].get(f"/v1/cases/{case_id}/timeline")
    console.print(timeline_table(rows, f"timeline of {case_id} (read by {auditor})"))
    for document in cast[auditor].get(f"/v1/cases/{case_id}/documents"):
        console.print(
            f"  document {document['number']} {document['title']} (GET /v1/cases/{case_id}/documents/"
            f"{document['document_id']}, SHA-256 {document['sha256']})",
            highlight=False,
        )
    denied = cast[auditor].get(f"/v1/cases/{case_id}/denied-attempts")
    for attempt in denied:
        console.print(
            f"  denied attempt recorded: {attempt['actor_id']} {attempt['operation']} {attempt['task_id'] or ''} "
            f"-> {attempt['reason_code']} ({attempt['message']})",
            highlight=False,
        )


def run_demo(api_url: str, tokens_path: Path) -> None:
    try:
        entries = json.loads(tokens_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DemoError(
            f"cannot read the dev tokens {tokens_path} ({error}); run `approvals dev` first (it writes them), "
            "or pass --tokens"
        ) from None
    cast = Cast(api_url, entries)
    processes = [p["name"] for p in cast[cast.with_role("admin")].get("/v1/processes")]
    console.rule("generic")
    case_id = run_generic(cast)
    status = wait_for_status(cast, cast.with_role("service"), case_id)
    console.print(f"[bold]{case_id}: {status}[/]", highlight=False)
    print_timeline(cast, case_id)
    for process in processes:
        if process == "generic":
            continue
        console.rule(process)
        sample = SAMPLE_REQUESTS.get(process)
        if sample is None:
            console.print(f"no sample start request for {process}: add one to approvals/cli/demo.py SAMPLE_REQUESTS")
            continue
        case_id = start(cast, process, sample(f"DEMO-{uuid.uuid4().hex[:8]}"))
        drive(cast, case_id)
        status = wait_for_status(cast, cast.with_role("service"), case_id)
        console.print(f"[bold]{case_id}: {status}[/]", highlight=False)
        print_timeline(cast, case_id)


def demo(
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            envvar="APPROVALS_API_URL",
            help="The API of the running `approvals dev`.",
            show_default="http://API_HOST:API_PORT, i.e. http://127.0.0.1:8000 unless those are set",
        ),
    ] = None,
    tokens: Annotated[
        Path | None,
        typer.Option(
            "--tokens",
            help="The dev tokens file `approvals dev` wrote.",
            show_default="AUTH_TOKENS_FILE, else <DATA_DIR>/dev-tokens.json, i.e. .approvals/dev-tokens.json",
        ),
    ] = None,
) -> None:
    """Run one complete case of each registered process against a running `approvals dev`.

    Reads the same environment as `approvals dev`, so a stack moved to other ports or another data
    directory is found when the same variables are set: APPROVALS_API_URL (or API_HOST and API_PORT) for
    the API, AUTH_TOKENS_FILE (or DATA_DIR) for the tokens; `approvals dev --data-dir D` pairs with
    DATA_DIR=D here.
    """
    from approvals.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        console.print(f"error: {error}")
        raise typer.Exit(EXIT_USAGE) from None
    url = api_url or f"http://{settings.api_host}:{settings.api_port}"
    path = tokens or settings.auth_tokens_file or settings.data_dir / "dev-tokens.json"
    try:
        run_demo(url, path)
    except ApiError as error:
        console.print(f"[bold red]error[/]: {error.message}", highlight=False)
        raise typer.Exit(error.exit_code) from None
    except DemoError as error:
        console.print(f"[bold red]error[/]: {error}", highlight=False)
        raise typer.Exit(EXIT_SERVER) from None
