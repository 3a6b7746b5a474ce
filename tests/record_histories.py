"""Records the workflow histories of representative runs (kernel and every process) into ``tests/histories/``.

    .venv/bin/python -m tests.record_histories [NAME ...]   # all cases, or only those named

Starts what the test fixtures start (an embedded PostgreSQL, unless DATABASE_URL names a server; the
Temporal dev server; the engine's worker), drives each case to its end and saves its
history. ``tests/test_replay.py`` replays every saved history against the current workflow code, so a
change that would break running cases (non-determinism) fails the suite. Re-record only when a change
of the workflow is meant to be incompatible, and then version the workflow.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from approvals.devstack.embedded_pg import EmbeddedPostgres
from approvals.devstack.identities import DEV_ADMISSION
from approvals.devstack.roles import provision_database
from approvals.devstack.stack import free_port
from approvals.migrate import migrate
from approvals.processes import PROCESSES
from approvals.settings import load_settings
from schemas.case import (
    AttachmentRef,
    CaseInput,
    CaseView,
    ClaimRequest,
    ConcernedPerson,
    DecideRequest,
    DeclareConflictRequest,
    Finding,
    MissingItem,
    RecallRequest,
    Relationship,
    RequestSupplementRequest,
    SupplementRequest,
)
from schemas.error_tolerance import EXAMPLE_APPLICATION as ERROR_TOLERANCE_APPLICATION
from schemas.power import EXAMPLE_PROPOSAL as POWER_PROPOSAL
from schemas.principal import Principal
from schemas.process import Deadline, Decision, QuorumRule, RoutingMode
from schemas.talent import EXAMPLE_APPLICATION as TALENT_APPLICATION
from tests.cases import (
    ALICE,
    APPLICANT,
    SERVICE,
    decide_until_final,
    definition,
    last_update_task,
    open_tasks,
    person,
    reset_workflow,
    stage,
    start_case,
    view_when,
)
from tests.corpus_cases import TIMED, UNTIMED
from tests.fixtures.documents import CERTIFICATE_PATH, KEY_PATH
from tests.fixtures.postgres import TEST_ROLES
from tests.project_cases import OFFICER, OFFICIAL, REVIEWERS, application, review_all
from tests.project_cases import decide as decide_project
from tests.project_cases import start as start_project
from worker import build_worker
from workflows.error_tolerance import error_tolerance_case_input
from workflows.kernel import ApprovalWorkflow
from workflows.power_adjustment import power_adjustment_case_input
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES
from workflows.talent_policy import talent_policy_case_input

HISTORIES = Path(__file__).parent / "histories"
BIN = Path(sys.executable).parent

EVIDENCE = AttachmentRef(uri="s3://evidence/record.pdf", sha256="e" * 64, size=1024, name="调查笔录")
ROSTERS = DEV_ADMISSION["committee_rosters"]
"""The committees seat the demo's roster, as under `approvals dev`."""

Handle = WorkflowHandle[ApprovalWorkflow, CaseView]


async def decide(
    handle: Handle, actor: Principal, task_id: str, decision: Decision = Decision.approve, **fields: object
) -> None:
    await handle.execute_update(
        ApprovalWorkflow.decide, DecideRequest(actor=actor, task_id=task_id, decision=decision, **fields)
    )  # type: ignore[arg-type]


async def first_open(handle: Handle, stage_id: str | None = None) -> str:
    view = await view_when(handle, lambda v: bool(open_tasks(v, stage_id)))
    return open_tasks(view, stage_id)[0].task_id


async def single_approve(env: WorkflowEnvironment, queue: str) -> Handle:
    client = env.client
    officer = person("officer-1", "one_window")
    handle = await start_case(client, queue, definition(stage("acceptance", candidate_roles=("one_window",))))
    task_id = await first_open(handle)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=officer, task_id=task_id))
    await decide(handle, officer, task_id)
    return handle


async def recall_then_approve(env: WorkflowEnvironment, queue: str) -> Handle:
    """收回: the stage's supervisor takes the claimed task back to the pool; another officer decides."""
    client = env.client
    officer, colleague = person("officer-1", "one_window"), person("officer-2", "one_window")
    supervised = Deadline(working_days=5, remind_before_working_days=0, escalate_to_role="section_chief")
    handle = await start_case(
        client, queue, definition(stage("acceptance", candidate_roles=("one_window",), deadline=supervised))
    )
    task_id = await first_open(handle)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=officer, task_id=task_id))
    recall = RecallRequest(actor=person("chief-1", "section_chief"), task_id=task_id, reason="officer-1 on leave")
    await handle.execute_update(ApprovalWorkflow.recall, recall)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=colleague, task_id=task_id))
    await decide(handle, colleague, task_id)
    return handle


async def recusal_then_approve(env: WorkflowEnvironment, queue: str) -> Handle:
    """回避: the case names a concerned person at start; the officer who claims the acceptance declares a conflict
    and it goes back to the pool; at the vote a member declares one and is withdrawn, the others carry it."""
    officer, colleague = person("officer-1", "one_window"), person("officer-2", "one_window")
    members = [person(f"member-{n}", "committee") for n in range(1, 4)]
    process = definition(
        stage("acceptance", candidate_roles=("one_window",)),
        stage(
            "vote", mode=RoutingMode.quorum, assignees=tuple(m.id for m in members), quorum=QuorumRule(min_attendance=2),
            allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain), deadline=Deadline(working_days=5),
        ),
    )  # fmt: skip
    cousin = ConcernedPerson(user_id="officer-3", relationship=Relationship.close_relative, reason="applicant's cousin")
    handle = await start_case(env.client, queue, process, concerned=[cousin])
    task_id = await first_open(handle)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=officer, task_id=task_id))
    declared = DeclareConflictRequest(actor=officer, task_id=task_id, reason="officer-1 holds shares in the applicant")
    await handle.execute_update(ApprovalWorkflow.declare_conflict, declared)
    await decide(handle, colleague, task_id)
    view = await view_when(handle, lambda v: len(open_tasks(v, "vote")) == 3)
    by_user = {t.assignee_id: t.task_id for t in open_tasks(view, "vote")}
    withdrawn = DeclareConflictRequest(actor=members[2], task_id=by_user["member-3"], reason="advised the applicant")
    await handle.execute_update(ApprovalWorkflow.declare_conflict, withdrawn)
    for member in members[:2]:
        await decide(handle, member, by_user[member.id])
    return handle


async def all_with_reject(env: WorkflowEnvironment, queue: str) -> Handle:
    client = env.client
    handle = await start_case(
        client, queue, definition(stage("joint", mode=RoutingMode.all, assignees=("alice", "bob", "carol")))
    )
    view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
    by_user = {t.assignee_id: t.task_id for t in open_tasks(view)}
    await decide(handle, person("alice", "reviewer"), by_user["alice"])
    await decide(handle, person("bob", "reviewer"), by_user["bob"], Decision.reject, comment="land use not settled")
    return handle


async def quorum_vote(env: WorkflowEnvironment, queue: str) -> Handle:
    client = env.client
    members = [person(f"member-{n}", "committee") for n in range(1, 6)]
    process = definition(
        stage(
            "vote", mode=RoutingMode.quorum, assignees=tuple(m.id for m in members),
            quorum=QuorumRule(threshold_numerator=2, threshold_denominator=3, min_attendance=3),
            allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain), deadline=Deadline(working_days=5),
        )
    )  # fmt: skip
    handle = await start_case(client, queue, process)
    view = await view_when(handle, lambda v: len(open_tasks(v)) == 5)
    by_user = {t.assignee_id: t.task_id for t in open_tasks(view)}
    votes = [Decision.approve, Decision.approve, Decision.approve, Decision.approve, Decision.abstain]
    for member, vote in zip(members, votes, strict=False):
        await decide(handle, member, by_user[member.id], vote)
    return handle


async def supplement_then_approve(env: WorkflowEnvironment, queue: str) -> Handle:
    client = env.client
    from schemas.process import Deadline, licensing_law_period

    alice = person("alice", "reviewer")
    process = definition(  # 补正 comes before acceptance (Art. 32): the review here is the acceptance
        stage("review", assignees=("alice",), may_request_supplement=True, deadline=Deadline(working_days=5)),
        deadline=licensing_law_period(starts_after_stage="review"),
    )
    handle = await start_case(client, queue, process)
    task_id = await first_open(handle)
    await handle.execute_update(
        ApprovalWorkflow.request_supplement,
        RequestSupplementRequest(actor=alice, items=[MissingItem(item="环评批复"), MissingItem(item="land title")]),
    )
    await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="attached"))
    await decide(handle, alice, task_id)
    return handle


async def accept_exclude_extend(env: WorkflowEnvironment, queue: str) -> Handle:
    """Acceptance by the one window (case.accepted, the Art. 42 period starts), an expert review left out of the
    period (Art. 45, told to the applicant), the head's extension (its reason told), then the decision."""
    from schemas.case import ExcludePeriodRequest, ExtendRequest
    from schemas.process import ExcludedPeriodKind, licensing_law_period

    alice, bob, head = person("alice", "reviewer"), person("bob", "reviewer"), person("head-1", "head")
    process = definition(
        stage("acceptance", assignees=("alice",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("bob",), deadline=Deadline(working_days=10)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, alice, await first_open(handle, "acceptance"))
    review = await first_open(handle, "review")
    await handle.execute_update(
        ApprovalWorkflow.exclude_period,
        ExcludePeriodRequest(
            actor=head, kind=ExcludedPeriodKind.expert_review, reason="环评专家评审", expected_working_days=5
        ),
    )
    await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=head, reason="expert review pending"))
    await decide(handle, bob, review)
    return handle


async def decree_673_profile(env: WorkflowEnvironment, queue: str) -> Handle:
    """A project under 核准: the one window accepts choosing Decree 673's deadline profile (case.accepted records
    it), a consultancy's appraisal left out of the period (Art. 9, 10), the head's 40-day extension, the decision."""
    from schemas.case import ExcludePeriodRequest, ExtendRequest
    from schemas.process import ExcludedPeriodKind, decree_673_approval_period, licensing_law_period

    alice, bob, head = person("alice", "reviewer"), person("bob", "reviewer"), person("head-1", "head")
    process = definition(
        stage("acceptance", assignees=("alice",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("bob",), deadline=Deadline(working_days=10)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
        deadline_profiles={"decree-673-approval": decree_673_approval_period(starts_after_stage="acceptance")},
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, alice, await first_open(handle, "acceptance"), deadline_profile="decree-673-approval")
    review = await first_open(handle, "review")
    await handle.execute_update(
        ApprovalWorkflow.exclude_period,
        ExcludePeriodRequest(
            actor=head, kind=ExcludedPeriodKind.appraisal, reason="委托工程咨询机构评估", expected_working_days=10
        ),
    )
    await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=head, reason="征求有关单位意见"))
    await decide(handle, bob, review)
    return handle


async def reject_with_remedies(env: WorkflowEnvironment, queue: str) -> Handle:
    """Art. 38: the one window refuses to accept (不予受理) with its reasons; the refusal is recorded with the
    remedies the definition names (case.remedies_notified) and sent to the applicant."""
    from schemas.process import licensing_law_period
    from schemas.remedies import RECONSIDERATION, SUIT, Remedies

    officer = person("officer-1", "one_window")
    organ = RECONSIDERATION.model_copy(update={"organ": "阿拉山口市人民政府", "organ_en": "Alashankou City Government"})
    process = definition(
        stage("acceptance", assignees=("officer-1",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("alice",)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
        remedies=Remedies(options=(organ, SUIT)),
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, officer, await first_open(handle), Decision.reject, comment="申请事项不属于本机关职权范围")
    return handle


async def return_and_rereview(env: WorkflowEnvironment, queue: str) -> Handle:
    client = env.client
    alice, bob = person("alice", "reviewer"), person("bob", "reviewer")
    handle = await start_case(
        client, queue, definition(stage("acceptance", assignees=("alice",)), stage("review", assignees=("bob",)))
    )
    await decide(handle, alice, await first_open(handle, "acceptance"))
    await decide(handle, bob, await first_open(handle, "review"), Decision.return_, comment="verify the land title")
    await decide(handle, alice, await first_open(handle, "acceptance"))
    await decide(handle, bob, await first_open(handle, "review"))
    return handle


async def reset_mid_case(env: WorkflowEnvironment, queue: str) -> Handle:
    """An operator resets the case to the workflow task that accepted the first decision (patch
    "reset-continues-record"): the new run records ``case.reset`` after the old run's events, then decides."""
    handle = await start_case(
        env.client, queue, definition(stage("review", assignees=("alice",)), stage("sign_off", assignees=("bob",)))
    )
    await decide(handle, ALICE, await first_open(handle))
    await first_open(handle, "sign_off")
    reset_workflow(env, handle.id, "--event-id", str(await last_update_task(handle)))
    latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
    await decide_until_final(latest)
    return latest


async def project_approval_full(env: WorkflowEnvironment, queue: str) -> Handle:
    """补正 at acceptance, a land-use change, one dimension rejected then returned and re-reviewed, approval
    with the departments' conditions merged, and the Art. 18 disclosure."""
    handle = await start_project(env, queue, application(planned_land_use="logistics_warehousing"))
    await view_when(handle, lambda v: bool(open_tasks(v, "acceptance")))
    await handle.execute_update(
        ApprovalWorkflow.request_supplement,
        RequestSupplementRequest(actor=OFFICER, items=[MissingItem(item="用地预审意见", reason="not attached")]),
    )
    await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="attached"))
    await decide_project(handle, "acceptance", OFFICER)
    await review_all(handle, environment=Decision.reject, safety=Decision.approve_with_conditions)
    await decide_project(handle, "land_use_change", REVIEWERS["land_use_change"])
    await decide_project(handle, "decision", OFFICIAL, Decision.return_, return_to="environment")
    await decide_project(handle, "environment", REVIEWERS["environment"])
    await decide_project(handle, "decision", OFFICIAL, Decision.approve_with_conditions, conditions=["noise barrier"])
    return handle


async def project_approval_documents(env: WorkflowEnvironment, queue: str) -> Handle:
    """Patch "documents-issued": the 补正 request, the acceptance and the licence each issue their document
    (补正材料通知书, 受理通知书, 准予行政许可决定书), recorded as ``document.issued`` after the event that made it due."""
    handle = await start_project(env, queue, application())
    await view_when(handle, lambda v: bool(open_tasks(v, "acceptance")))
    await handle.execute_update(
        ApprovalWorkflow.request_supplement,
        RequestSupplementRequest(actor=OFFICER, items=[MissingItem(item="营业执照副本", reason="未附")]),
    )
    await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="已补正"))
    await decide_project(handle, "acceptance", OFFICER)
    await review_all(handle)
    await decide_project(handle, "decision", OFFICIAL, Decision.approve)
    return handle


SETTLED = {"approved", "approved_with_conditions", "rejected", "withdrawn", "under_supervision"}


async def drive_to_decision(env: WorkflowEnvironment, queue: str, process: str, case: CaseInput) -> Handle:
    """Starts a statutory case and approves every task as someone allowed to, with a finding on each
    criterion, until it is decided (a supervised case goes on for years: its history so far is recorded)."""
    handle = await env.client.start_workflow(
        "ApprovalWorkflow" if process == "generic" else PROCESSES[process].workflow,
        case,
        id=PROCESSES[process].workflow_id(case.business_key),
        task_queue=queue,
        result_type=CaseView,
    )
    for _ in range(200):
        view = await handle.query(ApprovalWorkflow.view)
        if view.status.value in SETTLED:
            return handle
        for task in open_tasks(view):
            actor = Principal(id=task.assignee_id or f"{task.candidate_roles[0]}-1", roles=tuple(task.candidate_roles))
            stage = case.definition.stage(task.stage_id)
            evidence = [EVIDENCE] if stage.evidence_required else []
            findings = [Finding(criterion=criterion, holds=True, evidence=evidence) for criterion in task.criteria]
            await handle.execute_update(
                ApprovalWorkflow.decide,
                DecideRequest(
                    actor=actor,
                    task_id=task.task_id,
                    decision=Decision.approve,
                    findings=findings,
                    comment="理由见书面意见 reasons in the written opinion" if stage.reasons_required else "",
                    due_date=(await env.get_current_time()).date() + timedelta(days=30) if stage.sets_date else None,
                ),
            )
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} was not decided: {view}")


def statutory(process: str, build: Callable[..., CaseInput], example: dict[str, object], **seated: Any):
    """A case of a statutory process; ``seated`` carries the committee rosters of a process that votes."""

    async def run(env: WorkflowEnvironment, queue: str) -> Handle:
        case = build(
            business_key=f"H-{uuid.uuid4().hex[:10]}",
            application=PROCESSES[process].request_model.model_fields["application"].annotation.model_validate(example),
            applicant=APPLICANT,
            started_by=SERVICE,
            **seated,
        )
        return await drive_to_decision(env, queue, process, case)

    return run


Recorded = Callable[[WorkflowEnvironment, str], Awaitable[Handle | list[Handle]]]

CASES: dict[str, Recorded] = {
    "kernel-single-approve": single_approve,
    "kernel-all-with-reject": all_with_reject,
    "kernel-quorum-vote": quorum_vote,
    "kernel-supplement-then-approve": supplement_then_approve,
    "kernel-return-and-rereview": return_and_rereview,
    "kernel-recall-then-approve": recall_then_approve,
    "kernel-recusal-then-approve": recusal_then_approve,
    "kernel-accept-exclude-extend": accept_exclude_extend,
    "kernel-reject-with-remedies": reject_with_remedies,
    "kernel-reset-mid-case": reset_mid_case,
    "kernel-decree-673-profile": decree_673_profile,
    "project-approval-full": project_approval_full,
    "project-approval-documents": project_approval_documents,
    "power-adjustment-under-supervision": statutory("power-adjustment", power_adjustment_case_input, POWER_PROPOSAL),
    "error-tolerance-rectification-check": statutory(
        "error-tolerance", error_tolerance_case_input, ERROR_TOLERANCE_APPLICATION, rosters=ROSTERS
    ),
    "talent-policy-under-review": statutory(
        "talent-policy", talent_policy_case_input, TALENT_APPLICATION, rosters=ROSTERS
    ),
    **UNTIMED,
}
"""Recorded on the dev server; ``TIMED`` (``tests.corpus_cases``) on the time-skipping test server."""


async def saved_runs(env: WorkflowEnvironment, handle: WorkflowHandle[Any, CaseView]) -> list[WorkflowHistory]:
    """Every run of the case, first to last: a run that continued as new names the run it continued."""
    runs = [await env.client.get_workflow_handle(handle.id).fetch_history()]
    while continued := runs[0].events[0].workflow_execution_started_event_attributes.continued_execution_run_id:
        runs.insert(0, await env.client.get_workflow_handle(handle.id, run_id=continued).fetch_history())
    return runs


async def save(env: WorkflowEnvironment, name: str, handles: list[WorkflowHandle[Any, CaseView]]) -> None:
    """Writes ``<name>.json`` (``<name>-run<N>.json`` per run of a case that continued as new), and the same
    for each child case as ``<name>-child<N>``."""
    for number, handle in enumerate(handles):
        latest = env.client.get_workflow_handle(handle.id, result_type=CaseView)
        view = await view_when(latest, lambda v: v.status.is_final or v.status.value == "under_supervision")
        if view.status.is_final:
            with env.auto_time_skipping_disabled():  # on the test server: the result, without jumping the clock
                view = await latest.result()
        runs = await saved_runs(env, handle)
        stem = name if number == 0 else f"{name}-child{number}"
        for run_number, history in enumerate(runs, start=1):
            path = HISTORIES / (f"{stem}-run{run_number}.json" if len(runs) > 1 else f"{stem}.json")
            path.write_text(history.to_json() + "\n", encoding="utf-8")
        events = sum(len(history.events) for history in runs)
        print(
            f"{stem}: {view.status.value}, {len(runs)} run(s), {events} history events, {view.last_seq} domain events"
        )


async def time_skipping() -> WorkflowEnvironment:
    """The Java test server, where timers fire as soon as the workflow is idle (reminders, supervision rounds)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(BIN / "temporal-test-server")
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES},
        )
    )
    return env


async def dev_server() -> WorkflowEnvironment:
    """The dev server: the real Temporal server, so the histories are what production writes."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=WAL"],
    )


async def record_on(
    start: Callable[[], Awaitable[WorkflowEnvironment]], cases: dict[str, Recorded], pool: asyncpg.Pool
) -> None:
    if not cases:
        return
    env = await start()
    try:
        settings = load_settings(
            temporal_task_queue=f"histories-{uuid.uuid4().hex[:8]}",
            webhook_timeout_seconds=2,
            document_signing_certificate_path=CERTIFICATE_PATH,  # the organ's certificate, as the tests' workers
            document_signing_key_path=KEY_PATH,
        )
        async with build_worker(env.client, settings, pool=pool, sandboxed=True):  # as the test suite's workers run
            HISTORIES.mkdir(exist_ok=True)
            for name, run in cases.items():
                handles = await run(env, settings.temporal_task_queue)
                await save(env, name, handles if isinstance(handles, list) else [handles])
    finally:
        await env.shutdown()


async def record(database_url: str, only: set[str]) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    try:
        await record_on(dev_server, {n: run for n, run in CASES.items() if not only or n in only}, pool)
        await record_on(time_skipping, {n: run for n, run in TIMED.items() if not only or n in only}, pool)
    finally:
        await pool.close()


async def with_database(server_url: str, only: set[str]) -> None:
    """A database of its own, set up as production's: migrated by the owner role, recorded by a worker
    connected as the app role (``server_url`` connects as a superuser, which creates both)."""
    name = f"approvals_histories_{uuid.uuid4().hex[:8]}"
    try:
        provisioned = await provision_database(server_url, name, TEST_ROLES, password=secrets.token_hex(16))
        await migrate(provisioned.owner_url, app_role=TEST_ROLES.app)
        await record(provisioned.app_url, only)
    finally:
        admin = await asyncpg.connect(server_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    only = set(sys.argv[1:])  # names of the cases to (re-)record; none: all of them
    unknown = only - set(CASES) - set(TIMED)
    if unknown:
        raise SystemExit(f"unknown case names {sorted(unknown)}; known: {sorted({*CASES, *TIMED})}")
    configured = os.environ.get("DATABASE_URL")
    if configured:
        asyncio.run(with_database(configured, only))
        return
    with tempfile.TemporaryDirectory() as directory, EmbeddedPostgres.start(Path(directory), free_port()) as server:
        asyncio.run(with_database(server.url, only))


if __name__ == "__main__":
    main()
