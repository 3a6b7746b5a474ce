"""Process definitions as data: stages, routing modes, deadlines, conditions.

A generic approval is nothing but one of these definitions; the statutory processes build theirs in code
from the application they receive, then hand them to the same kernel.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from schemas.events import canonical_json
from schemas.remedies import Remedies
from schemas.text import CleanModel

DEFINITION_MAX_BYTES = 64 * 1024
"""Largest process definition, as canonical JSON. The definition travels in the workflow's input and in the
case.started event, which the recording carries more than once in one Temporal payload (limited to 2 MB):
a definition of a few megabytes was accepted and its case then never ran."""


class RoutingMode(StrEnum):
    single = "single"
    all = "all"  # 会签: every assignee must approve
    any = "any"  # 或签: the first decision wins, the other tasks are cancelled
    sequential = "sequential"  # 依次: one after the other, in the declared order
    quorum = "quorum"  # committee vote with a threshold and a minimum attendance


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    approve_with_conditions = "approve_with_conditions"
    return_ = "return"  # 退回: back to an earlier stage
    abstain = "abstain"  # quorum votes only


DECISIONS_NEEDING_COMMENT = frozenset({Decision.reject, Decision.return_})
"""Nobody may reject or return without saying why."""


class OnReject(StrEnum):
    end_case = "end_case"
    """A rejection at this stage ends the case as rejected (a veto)."""
    continue_ = "continue"
    """The rejection is recorded as this stage's outcome and the process goes on (e.g. one of five
    review dimensions); a later stage decides with all outcomes in view."""


class QuorumRule(CleanModel):
    """A committee vote: approvals >= ceil(threshold * members present), with enough members present.

    A member is present when they voted, abstentions included (they count toward attendance but are
    neither for nor against).
    """

    model_config = ConfigDict(frozen=True)

    threshold_numerator: int = Field(2, ge=1)
    threshold_denominator: int = Field(3, ge=1)
    min_attendance: int | None = Field(
        None, ge=1, description="Members who must vote for the vote to count; None: a majority of the members."
    )

    @model_validator(mode="after")
    def _fraction(self) -> QuorumRule:
        if self.threshold_numerator > self.threshold_denominator:
            raise ValueError("threshold_numerator must not exceed threshold_denominator")
        return self


class Condition(CleanModel):
    """Includes a stage only when a pure rule holds for the case data.

    ``rule`` names a function registered in ``workflows.rules.CONDITION_RULES``; ``path`` + ``equals``
    compares one field of the case data (dotted path), for definitions written as data.
    """

    model_config = ConfigDict(frozen=True)

    rule: str | None = None
    path: str | None = None
    equals: Any = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        if (self.rule is None) == (self.path is None):
            raise ValueError("give exactly one of `rule` or `path`")
        return self


class Deadline(CleanModel):
    model_config = ConfigDict(frozen=True)

    working_days: int = Field(ge=1, le=365)
    remind_before_working_days: int = Field(
        1, ge=0, le=365, description="0: no reminder. Bounded: the reminder is counted back day by day."
    )
    escalate_to_role: str | None = Field(None, description="Supervisor role told at the due time.")


StageId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class DecisionDate(CleanModel):
    """A date the deciding official sets with an approving decision (``DecideRequest.due_date``), later than the
    day of the decision, e.g. the deadline by which Art. 25's rectification counts as prompt."""

    model_config = ConfigDict(frozen=True)

    title: str = Field(min_length=1, max_length=200, description="What the date is, e.g. 整改期限.")
    legal_basis: str = Field(min_length=1)


class Stage(CleanModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["stage"] = "stage"
    id: StageId
    title: str = Field(min_length=1, description="Shown to reviewers; may carry the Chinese term.")
    legal_basis: str = Field(min_length=1, description="Article the stage rests on, e.g. `Art. 10`.")
    mode: RoutingMode = RoutingMode.single
    candidate_roles: tuple[str, ...] = ()
    assignees: tuple[str, ...] = Field((), description="Named user ids, in order for `sequential`.")
    allowed_decisions: tuple[Decision, ...] = (Decision.approve, Decision.reject, Decision.return_)
    deadline: Deadline | None = None
    quorum: QuorumRule | None = None
    on_reject: OnReject = OnReject.end_case
    approval_blocked_by: tuple[str, ...] = Field(
        (), description="Stage ids: approving here is refused while any of them stands rejected."
    )
    may_request_supplement: bool = Field(False, description="Its reviewers may ask for 补正 material.")
    criteria: tuple[str, ...] = Field(
        (),
        description="Statutory criteria every approve/reject here must give a finding on (e.g. Art. 25's five "
        "conditions), each with its evidence references.",
    )
    evidence_required: bool = Field(
        False, description="Every finding here cites at least one evidence reference (Art. 25's investigation)."
    )
    reasons_required: tuple[Decision, ...] = Field(
        (),
        description="Decisions that must state their reasons in the comment here, besides reject and return "
        "(e.g. Art. 25's exemption and reduction).",
    )
    sets_date: DecisionDate | None = Field(
        None, description="A date the approving decisions here must set (e.g. Art. 25's rectification deadline)."
    )
    when: Condition | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Stage:
        if not self.candidate_roles and not self.assignees:
            raise ValueError(f"stage {self.id}: give candidate_roles or assignees")
        if self.mode in (RoutingMode.all, RoutingMode.sequential, RoutingMode.quorum) and not self.assignees:
            raise ValueError(f"stage {self.id}: mode {self.mode} needs named assignees (one task each)")
        if self.mode is RoutingMode.single and len(self.assignees) > 1:
            raise ValueError(f"stage {self.id}: mode single takes at most one assignee (use any, all or sequential)")
        if (self.mode is RoutingMode.quorum) != (self.quorum is not None):
            raise ValueError(f"stage {self.id}: a `quorum` rule is required exactly when mode is quorum")
        if self.mode is RoutingMode.quorum:
            if not {Decision.approve, Decision.reject} <= set(self.allowed_decisions):
                raise ValueError(f"stage {self.id}: a vote needs approve and reject among allowed_decisions")
        elif Decision.abstain in self.allowed_decisions:
            raise ValueError(f"stage {self.id}: abstain is only a vote (mode quorum)")
        if len(set(self.criteria)) != len(self.criteria):
            raise ValueError(f"stage {self.id}: a criterion is listed twice")
        return self


class Parallel(CleanModel):
    """Branches that run at the same time and join: the step ends when every branch has ended."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["parallel"] = "parallel"
    id: StageId
    title: str
    branches: tuple[tuple[Stage, ...], ...] = Field(min_length=2)


Step = Annotated[Stage | Parallel, Field(discriminator="kind")]


class ExcludedPeriodKind(StrEnum):
    """What Administrative Licensing Law Art. 45 leaves out of the period: the time it takes is not counted."""

    hearing = "hearing"
    tendering = "tendering"
    auction = "auction"
    inspection = "inspection"
    testing = "testing"
    quarantine = "quarantine"
    appraisal = "appraisal"
    expert_review = "expert_review"


EXCLUDED_PERIOD_NAMES: dict[str, str] = {
    ExcludedPeriodKind.hearing: "听证",
    ExcludedPeriodKind.tendering: "招标",
    ExcludedPeriodKind.auction: "拍卖",
    ExcludedPeriodKind.inspection: "检验",
    ExcludedPeriodKind.testing: "检测",
    ExcludedPeriodKind.quarantine: "检疫",
    ExcludedPeriodKind.appraisal: "鉴定",
    ExcludedPeriodKind.expert_review: "专家评审",
}
"""Each kind in the law's words, for timelines and the documents that tell the applicant (特别程序期间告知书)."""


class CaseDeadline(CleanModel):
    """The deadline profile of the whole case: the statutory period (e.g. 20 working days from acceptance),
    its one extension and who grants it, the kinds of time excluded from it, and the acceptance window that
    precedes it, each with its legal basis. ``licensing_law_period()`` is the Administrative Licensing Law's."""

    model_config = ConfigDict(frozen=True)

    working_days: int = Field(ge=1, le=365)
    starts_after_stage: str | None = Field(
        None, description="The acceptance stage (受理): the period starts when it accepts. None: from the start."
    )
    extension_working_days: int = Field(0, ge=0, le=365)
    extension_role: str | None = Field(None, description="Who may approve the one extension (e.g. the head).")
    legal_basis: str = "Administrative Licensing Law Art. 42"
    remind_before_working_days: int = Field(
        2, ge=0, le=365, description="0: no reminder. Bounded: the reminder is counted back day by day."
    )
    escalate_to_role: str | None = None
    extension_legal_basis: str = "Administrative Licensing Law Art. 42"
    excluded_kinds: tuple[ExcludedPeriodKind, ...] = Field(
        (), description="Time that is not counted in the period (Art. 45), started by `excluded_period_role`."
    )
    excluded_period_role: str | None = Field(None, description="Who may start an excluded period.")
    excluded_legal_basis: str = "Administrative Licensing Law Art. 45"
    excluded_max_working_days: int | None = Field(
        None, ge=1, le=365, description="The longest excluded period the profile allows (None: as told, Art. 45)."
    )
    acceptance_working_days: int = Field(
        0,
        ge=0,
        le=365,
        description="Art. 32: the acceptance stage accepts, refuses or asks for 补正 within this many working days "
        "of receipt, or the application counts as accepted from receipt. 0: no such window.",
    )
    acceptance_legal_basis: str = "Administrative Licensing Law Art. 32"


def licensing_law_period(**fields: Any) -> CaseDeadline:
    """The Administrative Licensing Law's profile: 20 working days from acceptance (Art. 42), extendable once
    by 10 with the head's approval, the Art. 45 kinds of time not counted, 5 working days to accept (Art. 32)."""
    defaults: dict[str, Any] = {
        "working_days": 20,
        "extension_working_days": 10,
        "extension_role": "head",
        "excluded_kinds": tuple(ExcludedPeriodKind),
        "excluded_period_role": "head",
        "acceptance_working_days": 5,
    }
    return CaseDeadline(**{**defaults, **fields})


DECREE_673 = "国务院令第673号《企业投资项目核准和备案管理条例》"


def decree_673_approval_period(**fields: Any) -> CaseDeadline:
    """核准 of an enterprise investment project under State Council Decree 673: the 核准机关 decides within 20
    working days of accepting the application (Art. 10); when the project is complex or others must be consulted,
    the organ's principal head (主要负责人) may extend that by at most 40 working days (Art. 10); the time a
    consultancy (中介服务机构) commissioned by the organ takes to appraise the project is not counted (Art. 10),
    and that appraisal takes at most 30 working days save for complex projects (Art. 9). Acceptance itself (受理,
    补正) still follows the Administrative Licensing Law Art. 32, as the default profile does."""
    defaults: dict[str, Any] = {
        "working_days": 20,
        "legal_basis": f"{DECREE_673} Art. 10",
        "extension_working_days": 40,
        "extension_role": "head",
        "extension_legal_basis": f"{DECREE_673} Art. 10",
        "excluded_kinds": (ExcludedPeriodKind.appraisal, ExcludedPeriodKind.expert_review),
        "excluded_period_role": "head",
        "excluded_legal_basis": f"{DECREE_673} Art. 9, Art. 10",
        "excluded_max_working_days": 30,
        "acceptance_working_days": 5,
    }
    return CaseDeadline(**{**defaults, **fields})


class Supervision(CleanModel):
    """After an approving decision, periodic reviews for as long as the decision is in force (Art. 3: guide,
    supervise and dynamically adjust; annual reviews of talent policies). A review that finds adjustment
    needed (outcome rejected) opens the adjustment process as a child case."""

    model_config = ConfigDict(frozen=True)

    every_days: int = Field(ge=1, le=3660, description="Calendar days from one review to the next.")
    review: Stage
    adjustment: ProcessDefinition | None = Field(None, description="Started as a child case when a review rejects.")
    max_rounds: int | None = Field(None, ge=1, description="None: until the case is withdrawn.")
    rounds_per_run: int = Field(
        10, ge=1, le=1000, description="Reviews per workflow run; the case then continues as new (bounded history)."
    )
    legal_basis: str = "Art. 3"

    @model_validator(mode="after")
    def _review_never_ends_the_case(self) -> Supervision:
        if self.review.on_reject is not OnReject.continue_:
            raise ValueError("supervision.review: on_reject must be `continue` (a rejection means adjust)")
        if Decision.return_ in self.review.allowed_decisions:
            raise ValueError("supervision.review: a periodic review has no earlier stage to return to")
        return self


class ProcessDefinition(CleanModel):
    model_config = ConfigDict(frozen=True)

    process: str = Field(pattern=r"^[a-z][a-z0-9-]{0,63}$", description="e.g. `project-approval`.")
    title: str
    legal_basis: str
    steps: tuple[Step, ...] = Field(min_length=1)
    deadline: CaseDeadline | None = None
    deadline_profiles: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")], CaseDeadline] = Field(
        default_factory=dict,
        description="Other deadline profiles the accepting decision (受理) may choose for the case instead of "
        "`deadline` (DecideRequest.deadline_profile), by name, e.g. Decree 673's for a project under 核准.",
    )
    supplement_role: str | None = Field(
        None, description="Besides stage reviewers allowed to, this role may request 补正 at any time."
    )
    supervision: Supervision | None = None
    remedies: Remedies = Field(
        default_factory=Remedies,
        description="Art. 38: the remedies (periods, organs) every refusal tells the applicant, with its reasons.",
    )

    @model_validator(mode="after")
    def _size(self) -> ProcessDefinition:
        size = len(canonical_json(self.model_dump(mode="json")))
        if size > DEFINITION_MAX_BYTES:
            raise ValueError(
                f"the process definition is {size} bytes as canonical JSON, over the limit of "
                f"{DEFINITION_MAX_BYTES} bytes (64 KB); titles and legal bases are short texts"
            )
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> ProcessDefinition:
        seen: set[str] = set()
        for stage in self.stages():
            if stage.id in seen:
                raise ValueError(f"stage id {stage.id!r} is used twice")
            seen.add(stage.id)
        for stage in self.stages():
            unknown = set(stage.approval_blocked_by) - seen
            if unknown:
                raise ValueError(f"stage {stage.id}: approval_blocked_by names unknown stages {sorted(unknown)}")
        if self.deadline and self.deadline.starts_after_stage and self.deadline.starts_after_stage not in seen:
            raise ValueError(f"deadline.starts_after_stage names unknown stage {self.deadline.starts_after_stage!r}")
        acceptance = self.deadline.starts_after_stage if self.deadline else None
        chosen_elsewhere = sorted(
            name for name, profile in self.deadline_profiles.items() if profile.starts_after_stage != acceptance
        )
        if self.deadline_profiles and (acceptance is None or chosen_elsewhere):
            raise ValueError(
                "deadline_profiles are chosen at acceptance: `deadline` names the acceptance stage "
                f"(starts_after_stage) and every profile starts after it too (not: {chosen_elsewhere})"
            )
        return self

    def period(self, chosen: str | None) -> CaseDeadline | None:
        """The deadline profile in force: the one the acceptance chose, else ``deadline``."""
        return self.deadline_profiles[chosen] if chosen else self.deadline

    def stages(self) -> list[Stage]:
        """Every stage, in declaration order (branches flattened)."""
        found: list[Stage] = []
        for step in self.steps:
            if isinstance(step, Stage):
                found.append(step)
            else:
                found.extend(stage for branch in step.branches for stage in branch)
        if self.supervision:
            found.append(self.supervision.review)
        return found

    def stage(self, stage_id: str) -> Stage:
        for stage in self.stages():
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)


DEFINITION_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"


class DefinitionRef(CleanModel):
    """Which registered definition a case runs (``POST /v1/definitions``): its name, version and content hash."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=DEFINITION_NAME_PATTERN)
    version: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the definition's canonical JSON.")


Supervision.model_rebuild()
