"""The case contract: what starts a case, what reviewers send, what the case view shows."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from schemas.calendar import WorkingCalendar
from schemas.events import GENESIS_HASH, canonical_json
from schemas.principal import Principal
from schemas.process import (
    DECISIONS_NEEDING_COMMENT,
    Decision,
    DefinitionRef,
    ExcludedPeriodKind,
    ProcessDefinition,
)
from schemas.text import CleanModel

BusinessKey = str

DATA_MAX_BYTES = 256 * 1024
"""Largest application data of a case, as canonical JSON: it travels in the start event, which is
recorded with every batch of events and must stay far below Temporal's 2 MB payload limit."""

MAX_CONDITIONS = 20
MAX_FINDINGS = 50
MAX_EVIDENCE = 20
MAX_ATTACHMENTS = 20
ATTACHMENT_MAX_BYTES = 2 * 1024**3
"""Largest document a reference may describe (2 GiB): bigger is a mistake or a dump, not a case document."""

Condition = Annotated[str, Field(min_length=1, max_length=1000)]
UserId = Annotated[str, Field(min_length=1, max_length=128)]


class Relationship(StrEnum):
    """Why a person must recuse themselves (回避) from a case: the grounds of Civil Servants Law Art. 76."""

    person_concerned = "person_concerned"  # 当事人/责任人: the case decides their own liability or interest (Art. 25)
    close_relative = "close_relative"  # 近亲属 of the applicant or of a person concerned
    interest = "interest"  # 利害关系: a direct interest in the outcome
    other = "other"  # 其他可能影响公正执行公务的关系


class ConcernedPerson(CleanModel):
    """A person the case concerns: whatever their role, they may not claim, decide or vote on it, nor be handed
    one of its tasks (回避)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: UserId
    relationship: Relationship
    reason: str = Field(min_length=1, max_length=1000, description="The relationship to the case, in a sentence.")


def _each_person_once(persons: list[ConcernedPerson]) -> list[ConcernedPerson]:
    ids = [person.user_id for person in persons]
    repeated = sorted({user_id for user_id in ids if ids.count(user_id) > 1})
    if repeated:
        raise ValueError(f"concerned lists {repeated} more than once")
    return persons


Concerned = Annotated[list[ConcernedPerson], Field(max_length=100), AfterValidator(_each_person_once)]
"""The persons a case concerns (回避), each once."""


class CaseStatus(StrEnum):
    in_review = "in_review"
    awaiting_supplement = "awaiting_supplement"  # 补正: clock stopped until the applicant answers
    approved = "approved"
    approved_with_conditions = "approved_with_conditions"
    rejected = "rejected"
    withdrawn = "withdrawn"  # 撤回
    under_supervision = "under_supervision"  # 监督: decided, in force, reviewed periodically
    cancelled = "cancelled"  # stopped by an operator through Temporal, not by a decision

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        CaseStatus.approved,
        CaseStatus.approved_with_conditions,
        CaseStatus.rejected,
        CaseStatus.withdrawn,
        CaseStatus.cancelled,
    }
)


class TaskStatus(StrEnum):
    waiting = "waiting"  # blocked until the task it waits for is approved (依次, 加签)
    open = "open"
    claimed = "claimed"
    completed = "completed"
    cancelled = "cancelled"
    expired = "expired"  # a vote not cast by the deadline: the member counts as absent

    @property
    def is_actionable(self) -> bool:
        return self in (TaskStatus.open, TaskStatus.claimed)


class AttachmentRef(CleanModel):
    """Documents travel by reference (Temporal payloads are limited to 2 MB), never inline: where the document
    is (``uri``), its SHA-256 (which ``approvals audit verify`` checks again where the URI can be fetched), its
    size, its name (Chinese or English) and its media type."""

    model_config = ConfigDict(frozen=True)

    uri: str = Field(
        min_length=1,
        max_length=2000,
        pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$",
        description="Where the document is: `s3://…`, `https://…`, `file:///…`; never a `data:` URI (no inline bytes).",
    )
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, le=ATTACHMENT_MAX_BYTES, description="Bytes.")
    name: str = Field("", max_length=300, description="The document's name, e.g. 现场核查照片 or site photo.")
    media_type: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$",
        description="e.g. application/pdf.",
    )

    @field_validator("uri")
    @classmethod
    def _by_reference(cls, uri: str) -> str:
        if uri[:5].lower() == "data:":
            raise ValueError("a data: URI carries the bytes inline; store the document and send where it is")
        return uri

    @model_serializer(mode="wrap")
    def _without_absent_media_type(self, handler: SerializerFunctionWrapHandler):
        """References recorded before media types were kept serialise (and re-seal) exactly as they were. (No
        return annotation: with one, pydantic would describe the serialised form by it, a bare object.)"""
        dumped: dict[str, Any] = handler(self)
        if dumped.get("media_type", "") is None:
            del dumped["media_type"]
        return dumped


Attachments = Annotated[
    list[AttachmentRef],
    Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description=f"Documents by reference (at most {MAX_ATTACHMENTS}), shown in the timeline and exported.",
    ),
]


def attachments_record(attachments: list[AttachmentRef]) -> dict[str, Any]:
    """What an event records of an act's attachments: nothing when it has none, so the acts recorded before
    attachments were accepted re-seal as they were."""
    return {"attachments": [attachment.model_dump(mode="json") for attachment in attachments]} if attachments else {}


class CaseState(BaseModel):
    """The state of a case that outlives a workflow run: the kernel keeps it in one object and continue-as-new
    passes it whole (continue-as-new keeps long supervision bounded).

    Open tasks and running clocks belong to one run and are never carried: a case continues as new only
    between reviews. The serialised shape is the one runs started before this model have carried in (then
    called ``CarriedCase``: ``results`` a list, ``run`` at least 1), so their histories keep replaying; add
    fields only with defaults.
    """

    run: int = Field(0, ge=0, description="Runs before this one (0 in a case's first run).")
    status: CaseStatus = CaseStatus.in_review
    started_at: datetime
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    results: dict[str, StageResult] = Field(default_factory=dict, description="By stage id; a list in JSON.")
    rounds: dict[str, int] = Field(default_factory=dict)
    task_numbers: dict[str, int] = Field(default_factory=dict)
    observers: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    extended: bool = False
    outcome: str | None = None
    supervision_round: int = 0
    next_review_at: datetime | None = None
    pending_supplement: list[MissingItem] = Field(default_factory=list, description="补正 asked for, not yet supplied.")
    status_before_supplement: CaseStatus = CaseStatus.in_review
    statutory_periods: bool = Field(
        False,
        description="The case follows Art. 32 acceptance and 补正, the Art. 42 extension rule and Art. 45 excluded "
        "periods (false: a case started before they were enforced, which keeps its behaviour).",
    )
    accepted_at: datetime | None = Field(None, description="When the statutory period started (受理).")
    deadline_profile: str | None = Field(
        None, description="The deadline profile the acceptance chose (None: the definition's `deadline`)."
    )
    supplements_requested: int = 0
    recused: dict[str, str] = Field(
        default_factory=dict,
        description="Who declared a conflict of interest (回避), with their reason: they take no task of the case.",
    )

    @field_validator("results", mode="before")
    @classmethod
    def _results_by_stage(cls, results: Any) -> Any:
        if isinstance(results, list):
            return {StageResult.model_validate(result).stage_id: result for result in results}
        return results

    @field_serializer("results")
    def _results_as_list(self, results: dict[str, StageResult]) -> list[StageResult]:
        return list(results.values())


class CaseInput(CleanModel):
    model_config = ConfigDict(frozen=True)

    business_key: BusinessKey = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    definition: ProcessDefinition
    title: str = Field(min_length=1, max_length=300)
    applicant: Principal = Field(description="Who applies; may never act on their own case's tasks.")
    started_by: Principal = Field(description="The service or person that started the case.")
    data: dict[str, Any] = Field(default_factory=dict, description="Application data the rules read.")
    priority: bool = False
    callback_url: AnyHttpUrl | None = Field(None, description="POSTed on every status change, signed.")
    calendar: WorkingCalendar | None = Field(
        None, description="Working-day calendar; None: loaded once through an activity at start."
    )
    concerned: Concerned = Field(
        default_factory=list, description="Persons the case concerns, who recuse themselves from it (回避)."
    )
    carried: CaseState | None = Field(None, description="Set by the engine when a case continues as new.")
    registered_definition: DefinitionRef | None = Field(
        None, description="The registered definition (name, version, hash) `definition` is; None: given inline."
    )

    def registered_definition_record(self) -> dict[str, Any]:
        """What ``case.started`` records of the registered definition; nothing for an inline one, so the cases
        started before definitions were registered re-seal as they were."""
        if self.registered_definition is None:
            return {}
        return {"registered_definition": self.registered_definition.model_dump(mode="json")}

    @field_validator("data")
    @classmethod
    def _data_size(cls, data: dict[str, Any]) -> dict[str, Any]:
        size = len(canonical_json(data))
        if size > DATA_MAX_BYTES:
            raise ValueError(
                f"application data is {size} bytes as canonical JSON, over the limit of {DATA_MAX_BYTES} bytes "
                "(256 KB); send documents by reference (uri + sha256), never inline"
            )
        return data


class AdoptCalendarRequest(CleanModel):
    """A newly published calendar year, sent by the engine to every running case (not an operation of a user)."""

    model_config = ConfigDict(frozen=True)

    actor: Principal = Field(description="The admin who published the year.")
    calendar: WorkingCalendar = Field(description="The whole calendar with the year, at its new revision.")
    layer: str = Field(description="The layer whose year was published, e.g. `xinjiang`.")
    year: int


class TaskRequest(CleanModel):
    """Common to every task operation. ``actor`` is set by the API from the bearer token."""

    model_config = ConfigDict(frozen=True)

    actor: Principal
    task_id: str
    expected_version: int | None = Field(
        None, description="Refused with STALE_TASK_VERSION when the task changed since the caller read it."
    )


class ClaimRequest(TaskRequest):
    pass


class UnclaimRequest(TaskRequest):
    pass


class RecallRequest(TaskRequest):
    """The stage's supervisor takes a claimed task back to the pool (the claimant is absent, say)."""

    reason: str = Field(min_length=1, max_length=4000)


class Finding(CleanModel):
    """A reviewer's conclusion on one statutory criterion (e.g. one of Art. 25's five conditions)."""

    model_config = ConfigDict(frozen=True)

    criterion: str = Field(max_length=300)
    holds: bool
    note: str = Field("", max_length=4000)
    evidence: list[AttachmentRef] = Field(default_factory=list, max_length=MAX_EVIDENCE)


APPROVING = (Decision.approve, Decision.approve_with_conditions)
"""The decisions that may set a date (``due_date``)."""


def _only_with(decision: Decision, then: dict[str, Any] | None, otherwise: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = {"if": {"properties": {"decision": {"const": decision.value}}, "required": ["decision"]}}
    return {**rule, **({"then": then} if then else {}), "else": otherwise}


class DecideRequest(TaskRequest):
    # What `_conditions_match` checks, stated in the JSON schema too, so clients (and schemathesis) see it.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                _only_with(
                    Decision.approve_with_conditions,
                    {"required": ["conditions"], "properties": {"conditions": {"minItems": 1}}},
                    {"properties": {"conditions": {"maxItems": 0}}},
                ),
                _only_with(Decision.return_, None, {"properties": {"return_to": {"type": "null"}}}),
                {
                    "if": {
                        "properties": {"decision": {"enum": [d.value for d in APPROVING]}},
                        "required": ["decision"],
                    },
                    "else": {"properties": {"due_date": {"type": "null"}}},
                },
            ]
        }
    )

    decision: Decision
    comment: str = Field("", max_length=4000)
    conditions: list[Condition] = Field(
        default_factory=list, max_length=MAX_CONDITIONS, description="For approve_with_conditions."
    )
    return_to: str | None = Field(None, description="For return: the earlier stage id (default: previous).")
    findings: list[Finding] = Field(default_factory=list, max_length=MAX_FINDINGS)
    due_date: date | None = Field(
        None, description="The date an approving decision sets where its stage asks for one (e.g. 整改期限, Art. 25)."
    )
    deadline_profile: str | None = Field(
        None,
        max_length=64,
        description="Accepting (受理) only: the deadline profile the case follows, one the process declares "
        "(`deadline_profiles`, e.g. `decree-673-approval`); none: the default (Administrative Licensing Law).",
    )
    attachments: Attachments

    @model_validator(mode="after")
    def _conditions_match(self) -> DecideRequest:
        if self.decision is Decision.approve_with_conditions and not self.conditions:
            raise ValueError("approve_with_conditions needs at least one condition")
        if self.decision is not Decision.approve_with_conditions and self.conditions:
            raise ValueError("conditions are only given with approve_with_conditions")
        if self.return_to is not None and self.decision is not Decision.return_:
            raise ValueError("return_to is only given with decision `return`")
        if self.due_date is not None and self.decision not in APPROVING:
            raise ValueError("due_date is only given with approve or approve_with_conditions")
        return self

    @property
    def needs_comment(self) -> bool:
        return self.decision in DECISIONS_NEEDING_COMMENT


class DeclareConflictRequest(TaskRequest):
    """利益冲突声明: the holder or a candidate of a task recuses themselves (回避) from the case."""

    relationship: Relationship = Relationship.interest
    reason: str = Field(min_length=1, max_length=4000, description="The conflict of interest, in a sentence.")


class TransferRequest(TaskRequest):
    to_user: str = Field(min_length=1, max_length=128)
    comment: str = Field("", max_length=4000)


class DelegateRequest(TaskRequest):
    to_user: str = Field(min_length=1, max_length=128)
    comment: str = Field("", max_length=4000)


class AddSignerRequest(TaskRequest):
    signer: str = Field(min_length=1, max_length=128)
    position: Literal["before", "after"]
    comment: str = Field("", max_length=4000)


class UrgeRequest(TaskRequest):
    comment: str = Field("", max_length=4000)


class CommentRequest(CleanModel):
    model_config = ConfigDict(frozen=True)

    actor: Principal
    text: str = Field(min_length=1, max_length=4000)
    task_id: str | None = None
    attachments: Attachments


class CcRequest(CleanModel):
    model_config = ConfigDict(frozen=True)

    actor: Principal
    observers: list[UserId] = Field(min_length=1, max_length=50, description="User ids to inform (抄送).")
    comment: str = Field("", max_length=4000)
    task_id: str | None = None


class WithdrawRequest(CleanModel):
    model_config = ConfigDict(frozen=True)

    actor: Principal
    reason: str = Field(min_length=1, max_length=4000)


class MissingItem(CleanModel):
    model_config = ConfigDict(frozen=True)

    item: str = Field(min_length=1, max_length=300)
    reason: str = Field("", max_length=2000)


class RequestSupplementRequest(CleanModel):
    """补正, before acceptance: everything missing, listed at once (Art. 32); the case waits for the applicant."""

    model_config = ConfigDict(frozen=True)

    actor: Principal
    items: list[MissingItem] = Field(min_length=1, max_length=100)
    comment: str = Field("", max_length=4000)
    supplied_material_defective: str = Field(
        "",
        max_length=4000,
        description="For a second request only: why the material supplied is itself defective (补正 is told once).",
    )
    attachments: Attachments


class SupplementRequest(CleanModel):
    model_config = ConfigDict(frozen=True)

    actor: Principal
    documents: list[AttachmentRef] = Field(default_factory=list, max_length=100)
    comment: str = Field("", max_length=4000)


class ExcludePeriodRequest(CleanModel):
    """Art. 45: time for a hearing, an expert review … is not counted in the period; the applicant is told."""

    model_config = ConfigDict(frozen=True)

    actor: Principal
    kind: ExcludedPeriodKind
    reason: str = Field(min_length=1, max_length=4000)
    expected_working_days: int = Field(ge=1, le=365, description="How long it takes, as told to the applicant.")


class ExtendRequest(CleanModel):
    model_config = ConfigDict(frozen=True)

    actor: Principal
    reason: str = Field(min_length=1, max_length=4000)


DUE_ASSUMED_YEARS = (
    "The years its due date was counted in without an official holiday schedule in every layer of the calendar "
    "(on an assumed one, or Monday to Friday), ascending: the date may move when such a year is published."
)


class TaskView(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    stage_id: str
    stage_title: str
    legal_basis: str
    round: int
    status: TaskStatus
    version: int
    assignee_id: str | None
    candidate_roles: list[str]
    claimed_by: str | None
    delegate_id: str | None
    waiting_for: str | None
    added_by: str | None
    due_at: datetime | None
    overdue: bool
    decision: Decision | None
    decided_by: str | None
    comment: str
    conditions: list[str]
    created_at: datetime
    criteria: list[str] = Field(default_factory=list, description="Statutory criteria a decision must find on.")
    due_assumed_years: list[int] = Field(default_factory=list, description=DUE_ASSUMED_YEARS)


class StageResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage_id: str
    outcome: str = Field(description="approved, approved_with_conditions, rejected, returned, no_quorum")
    round: int
    conditions: list[str] = Field(default_factory=list)
    decided_at: datetime
    tally: dict[str, int] = Field(default_factory=dict, description="Quorum votes: approve/reject/abstain/absent.")


class ClockView(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    label: str
    due_at: datetime | None
    running: bool
    overdue: bool


class CaseView(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    process: str
    business_key: str
    title: str
    status: CaseStatus
    applicant_id: str
    priority: bool
    current_stages: list[str]
    tasks: list[TaskView]
    stage_results: list[StageResult]
    clocks: list[ClockView]
    clock_state: Literal["running", "stopped", "none"]
    pending_supplement: list[MissingItem]
    extended: bool
    outcome: str | None
    conditions: list[str]
    observers: list[str]
    warnings: list[str]
    last_seq: int
    last_hash: str


class OperationResult(BaseModel):
    """What every accepted update returns: the state right after it, already recorded in PostgreSQL."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    status: CaseStatus
    last_seq: int
    task: TaskView | None = None
