"""The registry of processes a client can start: URL name -> workflow and how to build its input.

Every process workflow takes one ``CaseInput``; what differs is the request body a client sends and how
the process turns it into stages (the statutory processes validate their application and derive their
stages from it with pure rules). The API and the CLI start cases only through this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import AnyHttpUrl, ConfigDict, Field, model_validator

from schemas.case import CaseInput, Concerned
from schemas.committee import CommitteeRoster
from schemas.error_tolerance import ErrorToleranceApplication
from schemas.power import PowerCatalogueProposal
from schemas.principal import Principal
from schemas.process import DEFINITION_NAME_PATTERN, ProcessDefinition
from schemas.project import ProjectApplication
from schemas.talent import TalentPolicyApplication
from schemas.text import CleanModel
from workflows.error_tolerance import ErrorToleranceWorkflow, error_tolerance_case_input
from workflows.kernel import ApprovalWorkflow
from workflows.power_adjustment import PowerAdjustmentWorkflow, power_adjustment_case_input
from workflows.project_approval import ProjectApprovalWorkflow, project_case_input
from workflows.rules import definition_problems
from workflows.talent_policy import TalentPolicyWorkflow, talent_policy_case_input


class StartRequest(CleanModel):
    """What a service sends to start a case of any process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    business_key: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="The caller's own key; a repeat with the same key returns the same case.",
    )
    title: str = Field(min_length=1, max_length=300)
    applicant: Principal
    callback_url: AnyHttpUrl | None = None
    concerned: Concerned = Field(
        default_factory=list,
        description="Persons with a relationship to the case (e.g. a close relative of the applicant), who recuse "
        "themselves (回避): they may not claim, decide or vote on it, nor be handed one of its tasks.",
    )


class GenericStartRequest(StartRequest):
    """A generic approval runs a process definition given as data: a new simple approval needs no code. Either
    a registered one by name (``definition_name``, optionally ``definition_version``; ``POST /v1/definitions``)
    or, where FREEFORM_DEFINITIONS allows, the caller's own (``definition``)."""

    definition: ProcessDefinition | None = Field(None, description="A definition of the caller's own (free-form).")
    definition_name: str | None = Field(
        None, pattern=DEFINITION_NAME_PATTERN, description="A registered definition: its latest version in force."
    )
    definition_version: int | None = Field(None, ge=1, description="Pins that version of definition_name.")
    data: dict[str, Any] = Field(default_factory=dict)
    priority: bool = False

    @model_validator(mode="after")
    def _runnable(self) -> GenericStartRequest:
        if (self.definition is None) == (self.definition_name is None):
            raise ValueError("give either definition (free-form) or definition_name (registered), not both")
        if self.definition_version is not None and self.definition_name is None:
            raise ValueError("definition_version is only given with definition_name")
        problems = definition_problems(self.definition) if self.definition else []
        if problems:
            raise ValueError("the process definition cannot run: " + "; ".join(problems))
        return self


class ProjectApprovalStartRequest(StartRequest):
    """An enterprise's application for a construction project in the zone (Art. 10)."""

    application: ProjectApplication


class PowerAdjustmentStartRequest(StartRequest):
    """The Committee's proposed catalogue of management and service functions (Art. 3, Art. 4)."""

    application: PowerCatalogueProposal


class ErrorToleranceStartRequest(StartRequest):
    """A unit's request for exemption or reduced liability after a reform fell short (Art. 25 容错)."""

    application: ErrorToleranceApplication


class TalentPolicyStartRequest(StartRequest):
    """A one-case-one-policy proposal for an urgently needed talent (Art. 22, pay forms of Art. 7)."""

    application: TalentPolicyApplication


@dataclass(frozen=True)
class ProcessEntry:
    name: str
    title: str
    workflow: type
    request_model: type[StartRequest]
    to_case_input: Callable[[Any, Principal, dict[str, CommitteeRoster]], CaseInput]
    """Builds the case from the validated request, the starter and the organ's committee rosters."""

    def workflow_id(self, business_key: str) -> str:
        """Deterministic, so a repeated start finds the running case instead of starting a second one."""
        return f"{self.name}:{business_key}"


def _generic_case(request: GenericStartRequest, started_by: Principal, _: dict[str, CommitteeRoster]) -> CaseInput:
    if request.definition is None:
        raise ValueError(f"definition {request.definition_name!r} was not resolved")  # the service resolves it
    return CaseInput(
        business_key=request.business_key,
        definition=request.definition.model_copy(update={"process": "generic"}),
        title=request.title,
        applicant=request.applicant,
        started_by=started_by,
        data=request.data,
        priority=request.priority,
        callback_url=request.callback_url,
        concerned=request.concerned,
    )


def _from_application(
    build: Callable[..., CaseInput], *, seats_committee: bool = False
) -> Callable[[Any, Principal, dict[str, CommitteeRoster]], CaseInput]:
    """A statutory process builds its case (stages, priority, data) from the validated application; one whose
    committee votes seats it from the rosters (``seats_committee``)."""

    def to_case_input(request: Any, started_by: Principal, rosters: dict[str, CommitteeRoster]) -> CaseInput:
        return build(
            **({"rosters": rosters} if seats_committee else {}),
            business_key=request.business_key,
            application=request.application,
            title=request.title,
            applicant=request.applicant,
            started_by=started_by,
            callback_url=request.callback_url,
            concerned=request.concerned,
        )

    return to_case_input


PROCESSES: dict[str, ProcessEntry] = {}


def register(entry: ProcessEntry) -> ProcessEntry:
    if entry.name in PROCESSES:
        raise ValueError(f"process {entry.name!r} is registered twice")
    PROCESSES[entry.name] = entry
    return entry


register(
    ProcessEntry(
        name="generic",
        title="Generic approval (definition supplied by the caller)",
        workflow=ApprovalWorkflow,
        request_model=GenericStartRequest,
        to_case_input=_generic_case,
    )
)
register(
    ProcessEntry(
        name="project-approval",
        title="建设项目审查 Construction project approval (Art. 10)",
        workflow=ProjectApprovalWorkflow,
        request_model=ProjectApprovalStartRequest,
        to_case_input=_from_application(project_case_input),
    )
)
register(
    ProcessEntry(
        name="power-adjustment",
        title="职能目录 Delegated powers: catalogue, approval, publication, supervision (Art. 3, Art. 4)",
        workflow=PowerAdjustmentWorkflow,
        request_model=PowerAdjustmentStartRequest,
        to_case_input=_from_application(power_adjustment_case_input),
    )
)
register(
    ProcessEntry(
        name="error-tolerance",
        title="容错免责 Error tolerance: exemption or reduced liability (Art. 25)",
        workflow=ErrorToleranceWorkflow,
        request_model=ErrorToleranceStartRequest,
        to_case_input=_from_application(error_tolerance_case_input, seats_committee=True),
    )
)
register(
    ProcessEntry(
        name="talent-policy",
        title="一事一议 一人一策 Talent policy (Art. 22, Art. 7)",
        workflow=TalentPolicyWorkflow,
        request_model=TalentPolicyStartRequest,
        to_case_input=_from_application(talent_policy_case_input, seats_committee=True),
    )
)
