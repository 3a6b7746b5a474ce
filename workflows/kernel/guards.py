"""Guards: the checks behind every operation's validator. A refusal is raised before anything enters the
history, with a machine-readable reason code (``deny``). They only read the case; the validators on the
workflow class call them, and the handlers trust them (the SDK does not run validators on replay)."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.case import (
        AddSignerRequest,
        CaseInput,
        CaseState,
        CaseStatus,
        CcRequest,
        ClaimRequest,
        CommentRequest,
        DecideRequest,
        DeclareConflictRequest,
        DelegateRequest,
        ExcludePeriodRequest,
        ExtendRequest,
        RecallRequest,
        RequestSupplementRequest,
        SupplementRequest,
        TaskRequest,
        TaskStatus,
        TransferRequest,
        UnclaimRequest,
        UrgeRequest,
        WithdrawRequest,
    )
    from schemas.principal import Principal
    from schemas.process import Decision, Stage
    from workflows import rules
    from workflows.kernel.clocks import Clocks
    from workflows.kernel.recusal import Recusal
    from workflows.kernel.refusal import deny, local_time
    from workflows.kernel.routing import RoutingPolicy
    from workflows.kernel.stages import EXCLUDED_PERIOD, Stages
    from workflows.kernel.state import Task

OPTIONAL_UPDATE_BUDGET = 1500
"""Temporal accepts 2,000 updates per workflow run: past this many, comments, urges and copies are refused
so that decisions, withdrawal and 补正 always find room."""

HANDOVER_ROLE, UNIT_HEAD_ROLE = "admin", "unit_head"
"""Move the tasks of staff who left or are absent to someone else (a transfer) or back to the pool (a recall):
an admin any task, a unit head a task someone of their own unit holds (the service layer checks the unit: the
case does not know its reviewers' units)."""

URGE_INTERVAL = timedelta(days=1)
"""One urge (催办) per person per task per day is a reminder; more would be noise."""


class Guards:
    def __init__(
        self, case: CaseInput, case_id: str, state: CaseState, stages: Stages, clocks: Clocks, recusal: Recusal
    ) -> None:
        self._case = case
        self._recusal = recusal
        self._definition = case.definition
        self._case_id = case_id
        self._state = state
        self._stages = stages
        self._clocks = clocks
        self.updates_accepted = 0
        self.last_urged: dict[tuple[str, str], datetime] = {}

    # ------------------------------------------------------------------ shared checks

    def _open_case(self) -> None:
        if self._state.status.is_final:
            raise deny("CASE_CLOSED", f"case {self._case_id} is {self._state.status.value}; nothing can change it now")

    def _party(self, user_id: str) -> str | None:
        """What the user is to the case when they are a party to it: its applicant, or the principal that
        started it (a service acting for the applicant could otherwise route the case to itself and approve)."""
        if user_id == self._case.applicant.id:
            return "the applicant"
        if user_id == self._case.started_by.id:
            return "the starter"
        return None

    def _not_party(self, actor: Principal, task: Task | None = None) -> None:
        """Neither a party (applicant, starter) nor a person who must recuse themselves (回避), at the task's
        stage when there is one."""
        party = self._party(actor.id)
        if party is not None:
            raise deny(
                "SEPARATION_OF_DUTIES",
                f"{actor.id} is {party} of case {self._case_id} and may not act as its reviewer",
            )
        stage = self._definition.stage(task.stage_id) if task else None
        self._recusal.check(actor.id, unit=actor.unit, stage=stage)

    def _applicant(self, actor: Principal, what: str) -> None:
        if actor.id not in (self._case.applicant.id, self._case.started_by.id):
            raise deny("NOT_APPLICANT", f"only the applicant {what} case {self._case_id}")

    def _task(self, request: TaskRequest) -> Task:
        """The task named by the request, open, at the expected version, for an actor who is neither a party nor
        bound to recuse themselves."""
        self._open_case()
        task = self._stages.task(request.task_id)
        self._not_party(request.actor, task)
        if request.expected_version is not None and request.expected_version != task.version:
            raise deny(
                "STALE_TASK_VERSION",
                f"task {task.id} is at version {task.version}, not {request.expected_version}: reload it",
            )
        if not task.status.is_actionable:
            raise deny("TASK_NOT_OPEN", f"task {task.id} is {task.status.value}, not open")
        return task

    def _held(self, request: TaskRequest) -> Task:
        task = self._task(request)
        self._holder(task, request.actor)
        return task

    def _holder(self, task: Task, actor: Principal) -> None:
        """The actor may work the task: its delegate, claimant or assignee, or a candidate of a pool task."""
        holder = task.holder
        if holder is not None and actor.id != holder:
            if task.claimed_by and not task.delegate_id and not task.assignee_id:
                raise deny("CLAIMED_BY_OTHER", f"task {task.id} is claimed by {task.claimed_by}")
            raise deny("NOT_ASSIGNEE", f"task {task.id} is assigned to {holder}, not {actor.id}")
        if holder is None and not actor.has_any_role(task.candidate_roles):
            raise deny(
                "NOT_ASSIGNEE",
                f"{actor.id} holds none of the roles {list(task.candidate_roles)} of task {task.id}",
            )

    def _user(self, user_id: str, what: str) -> None:
        party = self._party(user_id)
        if party is not None:
            raise deny("SEPARATION_OF_DUTIES", f"{party} {user_id} cannot be made {what} of case {self._case_id}")
        self._recusal.check(user_id, what=f"be made {what} of")

    def _known_task(self, task_id: str | None) -> None:
        if task_id is not None:
            self._stages.task(task_id)

    def _involved(self, actor: Principal, *, observers_count: bool = True) -> bool:
        """Whether the actor takes part: applicant, starter, a role or assignee of the process, a task holder,
        or (when ``observers_count``) someone copied on the case."""
        definition = self._definition
        roles = {role for stage in definition.stages() for role in stage.candidate_roles}
        roles |= {stage.deadline.escalate_to_role for stage in definition.stages() if stage.deadline}
        if definition.deadline:
            roles |= {definition.deadline.extension_role, definition.deadline.escalate_to_role}
        if definition.supplement_role:
            roles.add(definition.supplement_role)
        users = {self._case.applicant.id, self._case.started_by.id}
        if observers_count:
            users |= set(self._state.observers)
        users |= {user for stage in definition.stages() for user in stage.assignees}
        users |= {
            u
            for task in self._stages.tasks.values()
            for u in (task.assignee_id, task.claimed_by, task.delegate_id)
            if u
        }
        return actor.id in users or actor.has_any_role([r for r in roles if r])

    def _optional_budget(self) -> None:
        if self.updates_accepted >= OPTIONAL_UPDATE_BUDGET:
            raise deny(
                "UPDATE_BUDGET_EXHAUSTED",
                f"case {self._case_id} has taken {self.updates_accepted} operations; comments, urges and copies "
                "are closed so that decisions always get through",
            )

    @staticmethod
    def _handing_over(task: Task, actor: Principal) -> bool:
        """An administrator, or a unit head, moves a task they do not hold (staff who left or are absent:
        ``POST /v1/handovers``); a unit head only a task someone holds. Only who may move it changes: where it may
        go is checked as for any transfer."""
        if actor.id == task.holder:
            return False
        unit_head = actor.has_any_role((UNIT_HEAD_ROLE,)) and task.holder is not None
        return unit_head or actor.has_any_role((HANDOVER_ROLE,))

    def _not_delegate(self, task: Task, actor: Principal) -> None:
        if task.delegate_id == actor.id:
            raise deny(
                "REASSIGN_NOT_ALLOWED", f"{actor.id} acts for {task.assignee_id or task.claimed_by} and may only decide"
            )

    def _reassignable(self, task: Task, actor: Principal, target: str) -> None:
        """Transfer and delegation hand a task on; they must not let one person sign twice or dissolve
        accountability."""
        stage = self._definition.stage(task.stage_id)
        if RoutingPolicy.of(stage).personal:
            raise deny(
                "REASSIGN_NOT_ALLOWED", f"a committee member's vote at {stage.id} is personal: it cannot be handed on"
            )
        self._not_delegate(task, actor)
        others = [self._stages.tasks[t] for t in self._stages.runs[stage.id].task_ids if t != task.id]
        if any(target in (o.holder, o.decided_by) for o in others if o.status is not TaskStatus.cancelled):
            raise deny("DUPLICATE_SIGNER", f"{target} already signs at stage {stage.id}; one person, one signature")

    # ------------------------------------------------------------------ task operations

    def claim(self, request: ClaimRequest) -> None:
        task = self._task(request)
        if task.assignee_id is not None:
            raise deny(
                "NOT_CLAIMABLE", f"task {task.id} is assigned to {task.assignee_id}; only pool tasks are claimed"
            )
        if task.claimed_by is not None:
            raise deny("ALREADY_CLAIMED", f"task {task.id} is already claimed by {task.claimed_by}")
        self._holder(task, request.actor)

    def unclaim(self, request: UnclaimRequest) -> None:
        task = self._task(request)
        if task.claimed_by != request.actor.id:
            raise deny("NOT_CLAIMANT", f"task {task.id} is not claimed by {request.actor.id}")

    def recall(self, request: RecallRequest) -> None:
        """The stage's supervisor (its deadline's escalation role) may take a claimed pool task back to the pool,
        e.g. when the claimant is absent; the claimant gives it back themselves (unclaim)."""
        task = self._task(request)
        if task.claimed_by is None or task.assignee_id is not None:
            raise deny("NOT_CLAIMED", f"task {task.id} is not a claimed pool task; only those go back to the pool")
        stage = self._definition.stage(task.stage_id)
        supervisor = stage.deadline.escalate_to_role if stage.deadline else None
        if self._handing_over(task, request.actor):
            return
        if supervisor is None:
            raise deny("NOT_SUPERVISOR", f"stage {stage.id} names no supervisor (deadline.escalate_to_role)")
        if supervisor not in request.actor.roles:
            raise deny("NOT_SUPERVISOR", f"recalling a task of stage {stage.id} needs its supervisor role {supervisor}")
        if request.actor.id == task.claimed_by:
            raise deny("INVALID_TARGET", f"{request.actor.id} holds task {task.id}: unclaim it instead")

    def declare_conflict(self, request: DeclareConflictRequest) -> None:
        """The task's holder, or a candidate of a pool task, recuses themselves (回避)."""
        task = self._held(request)
        self._recusal.check_declaration(task, request.actor)

    def decide(self, request: DecideRequest) -> None:
        task = self._task(request)
        stage = self._definition.stage(task.stage_id)
        second = RoutingPolicy.of(stage).second_decision
        if second and any(
            self._stages.tasks[other].decided_by == request.actor.id for other in self._stages.runs[stage.id].task_ids
        ):
            code, wording = second
            raise deny(code, f"{request.actor.id} {wording} stage {stage.id}")
        self._holder(task, request.actor)
        if self._state.status is CaseStatus.awaiting_supplement:
            raise deny(
                "CASE_PAUSED",
                "the case waits for supplementary material (补正); decisions resume when the applicant supplies it",
            )
        if request.decision not in stage.allowed_decisions:
            allowed = ", ".join(d.value for d in stage.allowed_decisions)
            raise deny(
                "DECISION_NOT_ALLOWED",
                f"decision {request.decision.value} is not allowed at stage {stage.id} (allowed: {allowed})",
            )
        if request.needs_comment and not request.comment.strip():
            reasons = (
                f"a {request.decision.value} needs a comment giving the reasons (Administrative Licensing Law Art. 38)"
            )
            raise deny("COMMENT_REQUIRED", reasons, field="comment")
        if request.decision in stage.reasons_required and not request.comment.strip():
            reasons = (
                f"a {request.decision.value} at {stage.id} states its reasons in the comment ({stage.legal_basis})"
            )
            raise deny("COMMENT_REQUIRED", reasons, field="comment")
        if request.decision in rules.APPROVING:
            self._approval_not_blocked(stage)
            self._decision_date(stage, request)
        self._deadline_profile(stage, request)
        if request.decision is Decision.return_:
            self._return_target(stage, request.return_to)
        elif stage.criteria:
            self._findings(stage, request)

    def _approval_not_blocked(self, stage: Stage) -> None:
        results = self._state.results
        blocking = [
            s for s in stage.approval_blocked_by if s in results and results[s].outcome == rules.StageOutcome.rejected
        ]
        if blocking:
            raise deny(
                "APPROVAL_BLOCKED",
                f"cannot approve at {stage.id} while {', '.join(blocking)} stands rejected; "
                "reject, or return the case to that stage for re-review",
            )

    def _decision_date(self, stage: Stage, request: DecideRequest) -> None:
        """The date the stage asks an approval to set is given, and later than today (local date)."""
        asked, due = stage.sets_date, request.due_date
        if asked is None and due is not None:
            raise deny("DUE_DATE_NOT_ASKED", f"stage {stage.id} sets no date: leave due_date out", field="due_date")
        if asked is None:
            return
        today = workflow.now().astimezone(self._clocks.calendar.tzinfo).date()
        if due is None or due <= today:
            given = "none is given" if due is None else f"{due} is not after today ({today})"
            raise deny(
                "DUE_DATE_REQUIRED",
                f"approving at {stage.id} sets {asked.title} ({asked.legal_basis}), a date after today: {given}",
                field="due_date",
            )

    def _deadline_profile(self, stage: Stage, request: DecideRequest) -> None:
        """Only the accepting decision (受理) chooses a deadline profile, and one the process declares."""
        chosen, deadline = request.deadline_profile, self._definition.deadline
        if chosen is None:
            return
        choices = sorted(self._definition.deadline_profiles)
        accepting = deadline is not None and deadline.starts_after_stage == stage.id
        if not (accepting and request.decision in rules.APPROVING and chosen in choices):
            where = f"the choices are {choices}, or none for {deadline.legal_basis}" if accepting and deadline else ""
            raise deny(
                "UNKNOWN_DEADLINE_PROFILE",
                f"deadline profile {chosen!r}: {where or 'only the accepting decision (受理) chooses one'}",
                field="deadline_profile",
            )

    def _local(self, at: datetime) -> str:
        return local_time(at, self._clocks.calendar.tzinfo)

    def _findings(self, stage: Stage, request: DecideRequest) -> None:
        """A decision on statutory criteria states a finding on each, once, and on nothing else; where the stage
        requires evidence, each finding cites some."""
        unsupported = [finding.criterion for finding in request.findings if not finding.evidence]
        if stage.evidence_required and unsupported:
            raise deny(
                "FINDINGS_WITHOUT_EVIDENCE",
                f"stage {stage.id} requires evidence references for each finding: none for {unsupported}",
                field="findings",
            )
        given = [finding.criterion for finding in request.findings]
        missing = [criterion for criterion in stage.criteria if criterion not in given]
        unknown = [criterion for criterion in given if criterion not in stage.criteria]
        repeated = sorted({criterion for criterion in given if given.count(criterion) > 1})
        failing = [finding.criterion for finding in request.findings if not finding.holds]
        if request.decision in rules.APPROVING and failing and not (missing or unknown or repeated):
            raise deny(
                "FINDINGS_CONTRADICT_APPROVAL",
                f"stage {stage.id} cannot approve while criteria {failing} do not hold: reject, or correct them",
            )
        if missing or unknown or repeated:
            problems = (
                f"no finding on {missing}" if missing else "",
                f"unknown criteria {unknown}" if unknown else "",
                f"more than one finding on {repeated}" if repeated else "",
            )
            raise deny(
                "FINDINGS_INCOMPLETE",
                f"stage {stage.id} decides on the criteria {list(stage.criteria)}: "
                + "; ".join(part for part in problems if part),
            )

    def _return_target(self, stage: Stage, target: str | None) -> None:
        targets = self._stages.return_targets(stage)
        if target is None and targets:
            return
        if target not in targets:
            raise deny(
                "INVALID_RETURN_TARGET",
                f"stage {stage.id} can return to {targets or 'no earlier stage'}, not {target!r}",
            )

    def transfer(self, request: TransferRequest) -> None:
        task = self._task(request)
        if not self._handing_over(task, request.actor):
            self._holder(task, request.actor)
        self._user(request.to_user, "the reviewer")
        if request.to_user == task.holder:
            raise deny("INVALID_TARGET", f"task {task.id} is already with {request.to_user}")
        self._reassignable(task, request.actor, request.to_user)

    def delegate(self, request: DelegateRequest) -> None:
        task = self._task(request)
        if task.delegate_id is not None:
            raise deny("ALREADY_DELEGATED", f"task {task.id} is already delegated to {task.delegate_id}")
        self._holder(task, request.actor)
        self._user(request.to_user, "a delegate")
        if request.to_user == request.actor.id:
            raise deny("INVALID_TARGET", "a task cannot be delegated to its own holder")
        self._reassignable(task, request.actor, request.to_user)

    def add_signer(self, request: AddSignerRequest) -> None:
        task = self._held(request)
        stage = self._definition.stage(task.stage_id)
        if not RoutingPolicy.of(stage).accepts_added_signers:
            raise deny("ADD_SIGNER_NOT_ALLOWED", f"signers cannot be added to a {stage.mode.value} stage")
        self._user(request.signer, "a signer")
        if task.delegate_id == request.actor.id:
            raise deny("REASSIGN_NOT_ALLOWED", f"{request.actor.id} acts for another and may only decide")
        tasks = self._stages.tasks
        holders = {
            tasks[t].holder for t in self._stages.runs[stage.id].task_ids if tasks[t].status is not TaskStatus.cancelled
        }
        if request.signer in holders or request.signer == request.actor.id:
            raise deny("DUPLICATE_SIGNER", f"{request.signer} already signs at stage {stage.id}")

    def urge(self, request: UrgeRequest) -> None:
        self._open_case()
        task = self._stages.tasks.get(request.task_id)
        if task is None or not task.status.is_actionable:
            raise deny("TASK_NOT_OPEN", f"case {self._case_id} has no open task {request.task_id}")
        if not self._involved(request.actor):
            raise deny("NOT_INVOLVED", f"{request.actor.id} takes no part in case {self._case_id}")
        self._optional_budget()
        last = self.last_urged.get((task.id, request.actor.id))
        if last is not None and workflow.now() - last < URGE_INTERVAL:
            raise deny("URGED_RECENTLY", f"{request.actor.id} urged task {task.id} at {self._local(last)}; once a day")

    def comment(self, request: CommentRequest) -> None:
        self._known_task(request.task_id)
        if not self._involved(request.actor):
            raise deny("NOT_INVOLVED", f"{request.actor.id} takes no part in case {self._case_id}")
        self._optional_budget()

    def cc(self, request: CcRequest) -> None:
        self._known_task(request.task_id)
        self._not_party(request.actor)
        if not self._involved(request.actor, observers_count=False):
            raise deny("NOT_INVOLVED", f"{request.actor.id} may not copy others on case {self._case_id}")
        self._optional_budget()

    # ------------------------------------------------------------------ case operations

    def withdraw(self, request: WithdrawRequest) -> None:
        self._open_case()
        self._applicant(request.actor, "may withdraw")

    def request_supplement(self, request: RequestSupplementRequest) -> None:
        self._open_case()
        self._not_party(request.actor)
        if self._state.status is CaseStatus.awaiting_supplement:
            raise deny(
                "SUPPLEMENT_ALREADY_PENDING",
                "a request for supplementary material is already pending; everything missing is listed at once",
            )
        role = self._definition.supplement_role
        may = role is not None and role in request.actor.roles
        for task in self._stages.tasks.values():
            stage = self._definition.stage(task.stage_id)
            if task.status.is_actionable and stage.may_request_supplement:
                try:
                    self._holder(task, request.actor)
                    may = True
                except ApplicationError:
                    pass
        if not may:
            raise deny(
                "NOT_ALLOWED",
                f"{request.actor.id} may not request supplementary material: it needs an open task at a stage "
                f"that allows it{f' or the role {role}' if role else ''}",
            )
        self._before_acceptance(request)

    def _before_acceptance(self, request: RequestSupplementRequest) -> None:
        """Art. 32: 补正 is told before acceptance, once and all at once."""
        state = self._state
        if not state.statutory_periods:
            return
        if state.accepted_at is not None:
            raise deny(
                "SUPPLEMENT_AFTER_ACCEPTANCE",
                f"case {self._case_id} was accepted at {self._local(state.accepted_at)}: 补正 comes before acceptance "
                "(Administrative Licensing Law Art. 32); time for a hearing or expert review is an excluded period "
                "(exclude-period, Art. 45)",
            )
        if state.supplements_requested and not request.supplied_material_defective.strip():
            raise deny(
                "SUPPLEMENT_ALREADY_USED",
                "补正 is told once and all at once (Art. 32); ask again only when the material supplied is itself "
                "defective, saying why in supplied_material_defective",
            )

    def supplement(self, request: SupplementRequest) -> None:
        self._open_case()
        self._applicant(request.actor, "supplies material for")
        if self._state.status is not CaseStatus.awaiting_supplement:
            raise deny("NO_SUPPLEMENT_PENDING", f"case {self._case_id} is not waiting for supplementary material")
        if not request.documents and not request.comment.strip():
            raise deny("NOTHING_SUPPLIED", "supply the material asked for: documents, or a comment, or both")

    def extend(self, request: ExtendRequest) -> None:
        self._open_case()
        deadline = self._definition.period(self._state.deadline_profile)
        if deadline is None or not deadline.extension_working_days or deadline.extension_role is None:
            raise deny("NO_EXTENSION", f"process {self._definition.process} has no extendable deadline")
        if deadline.extension_role not in request.actor.roles:
            raise deny("NOT_ALLOWED", f"extending the period needs the role {deadline.extension_role}")
        if self._state.extended:
            raise deny("EXTENSION_USED", "the period has already been extended once")
        self._period_running()

    def _period_running(self) -> None:
        """The statutory period has started and, in a case under the statutory rules, has not expired: an
        extension or an excluded period comes before the period ends."""
        period = self._clocks.get("case")
        if period is None:
            raise deny("CLOCK_NOT_STARTED", "the statutory period has not started yet")
        if self._state.statutory_periods and period.running and workflow.now() >= period.due_at:
            raise deny(
                "PERIOD_EXPIRED",
                f"the statutory period ended at {self._local(period.due_at)}: it can no longer be extended or "
                "interrupted (Administrative Licensing Law Art. 42)",
            )

    def exclude_period(self, request: ExcludePeriodRequest) -> None:
        self._open_case()
        self._not_party(request.actor)
        profile = self._definition.period(self._state.deadline_profile)
        if profile is None or request.kind not in profile.excluded_kinds:
            declared = [kind.value for kind in profile.excluded_kinds] if profile else []
            raise deny(
                "NOT_EXCLUDABLE",
                f"process {self._definition.process} does not leave {request.kind.value} out of its period "
                f"(declared: {declared})",
            )
        if profile.excluded_period_role not in request.actor.roles:
            raise deny("NOT_ALLOWED", f"excluding time from the period needs the role {profile.excluded_period_role}")
        if EXCLUDED_PERIOD in self._clocks:
            raise deny("PERIOD_ALREADY_EXCLUDED", "an excluded period is running; the deadlines already stand still")
        longest = profile.excluded_max_working_days
        if longest is not None and request.expected_working_days > longest:
            raise deny(
                "EXCLUDED_TOO_LONG",
                f"{profile.excluded_legal_basis} leaves at most {longest} working days out of the period, "
                f"not {request.expected_working_days}",
                field="expected_working_days",
            )
        self._period_running()
