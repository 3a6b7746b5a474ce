"""The operation registry: every reviewer and applicant operation, declared once.

An entry names the operation as clients do (URL segment, CLI command), the request model, where it applies
(a task, a case, or both), the Workflow Update it runs (by method reference, so a renamed handler fails at
import, not at run time), the events it records, which request fields its event must repeat (the audit
cross-check), and the words people read (HTTP summary, CLI help). The service layer, the HTTP routes, the
CLI commands and the audit are generated from this list; the console reads it too.

Adding an operation is one entry here, its request model in ``schemas.case`` and its handler (a Workflow
Update with a validator) in the kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from approvals.event_folding import (
    SYSTEM_FOLDS,
    Fold,
    case_ended,
    claimed,
    conflict_declared,
    copied,
    decided,
    delegated,
    extended,
    period_excluded,
    released,
    signer_added,
    supplement_requested,
    supplemented,
    transferred,
    unchanged,
)
from approvals.event_wording import (
    SYSTEM_WORDING,
    Lang,
    Wording,
    WordingContext,
    listed,
    local_due,
    parse_time,
    part,
    said,
    term,
    who,
)
from schemas.case import (
    AddSignerRequest,
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
    TransferRequest,
    UnclaimRequest,
    UrgeRequest,
    WithdrawRequest,
)
from schemas.events import DomainEvent, EventType
from workflows.kernel import KernelWorkflow


class Scope(StrEnum):
    """What an operation acts on: ``POST /v1/tasks/{task_id}/<name>`` or ``POST /v1/cases/{case_id}/<name>``."""

    task = "task"
    case = "case"


@dataclass(frozen=True)
class Operation:
    name: str
    """URL segment and CLI command, e.g. ``add-signer``."""
    request_model: type[BaseModel]
    scopes: tuple[Scope, ...]
    update: Callable[..., Any]
    """The kernel's Workflow Update method, e.g. ``KernelWorkflow.add_signer``."""
    events: tuple[EventType, ...]
    """The events an accepted request records, the one naming the requester first."""
    summary: str
    """One line for the OpenAPI summary, the CLI help and the console (English; Chinese terms kept)."""
    summary_zh: str
    agrees: tuple[tuple[str, str], ...] = ()
    """(request field, payload field of the first event) pairs the audit cross-check compares."""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    """Request fields the operation sets itself (``return`` is ``decide`` with ``decision=return``)."""
    wording: Mapping[EventType, Wording] = field(default_factory=dict)
    """How the timeline words the events it records, in English and Chinese (``approvals.event_wording``); an
    event another entry (or the system table) already words is not worded again."""
    folds: Mapping[EventType, Fold] = field(default_factory=dict)
    """How the events it records change the case's point-in-time state (``approvals.event_folding``;
    ``unchanged`` for none), likewise once per event type."""

    @property
    def update_name(self) -> str:
        """The Workflow Update's name: the handler's name (the kernel never renames its updates)."""
        return self.update.__name__

    @property
    def recorded_event(self) -> EventType:
        return self.events[0]

    @property
    def body_fields_excluded(self) -> tuple[str, ...]:
        """Fields the client does not send: the actor (from the token), the task (from the path), the fixed ones."""
        return ("actor", "task_id", *self.fixed)

    def applies_to(self, scope: Scope) -> bool:
        return scope in self.scopes


def _decided(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p = event.payload
    conditions, decision = listed(p.get("conditions"), lang, "; "), term(p.get("decision"), lang)
    due, profile = p.get("due_date"), p.get("deadline_profile")
    if lang == "zh":
        text = f"{who(event)}审批意见{part('：{}', decision)}{part('（附条件：{}）', conditions)}"
        text += part("，确定期限至{}", due) + part("，适用期限规则{}", profile)
        return text + part("，退回至环节{}", p.get("return_to")) + part("，受{}委托办理", p.get("on_behalf_of"))
    text = f"{who(event)} decided{part(': {}', decision)}{part(' (conditions: {})', conditions)}"
    text += part(", setting the date {}", due) + part(", under the deadline profile {}", profile)
    return text + part(", back to stage {}", p.get("return_to")) + part(", on behalf of {}", p.get("on_behalf_of"))


def _conflict_declared(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p = event.payload
    relationship, reason, to = term(p.get("relationship"), lang), p.get("reason"), p.get("to")
    roles, voted = listed(p.get("candidate_roles"), lang), p.get("withdrawn_from_vote")
    if lang == "zh":
        then = "退出表决" if voted else part("任务交{}办理", to) or f"任务退回任务池{part('（{}）', roles)}"
        return f"{who(event)}申请回避{part('（{}）', relationship)}{part('：{}', reason)}；{then}，本人不再办理本案"
    then = "withdraws from the vote" if voted else part("the task goes to {}", to)
    then = then or f"the task goes to the pool{part(' of {}', roles)}"
    text = f"{who(event)} declared a conflict of interest (回避{part(', {}', relationship)}){part(': {}', reason)}"
    return f"{text}; {then}, off the case"


def _signer_added(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    signer, position = said(event.payload.get("signer"), lang), event.payload.get("position")
    if lang == "zh":
        return f"{who(event)}{term(position, lang) or '加签'}：增加签批人{signer}"
    return f"{who(event)} added signer {signer} {part('{} ', position) or 'to '}this task"


def _copied(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    observers = said(listed(event.payload.get("observers"), lang), lang)
    return (
        f"{who(event)}将办件抄送{observers}" if lang == "zh" else f"{who(event)} copied the case to {observers} (抄送)"
    )


def _supplement_requested(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    items = said(listed([item.get("item") for item in event.payload.get("items") or []], lang, "; "), lang)
    if lang == "zh":
        return f"{who(event)}一次性告知补正材料：{items}——审批期限暂停计算"
    return f"{who(event)} requested supplementary material (补正): {items} — the clock stops"


def _supplemented(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    count = len(event.payload.get("documents") or [])
    if lang == "zh":
        return f"{who(event)}提交补正材料（{count}份）——审批期限恢复计算"
    return f"{who(event)} supplied the material ({count} document(s)) — the clock runs again"


def _extended(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    days, due = event.payload.get("working_days"), parse_time(event.payload.get("due_at"))
    until = local_due(due, lang) if due else None
    if lang == "zh":
        return f"{who(event)}延期：法定期限延长{part('{}个工作日', days)}{part('，至{}', until)}"
    return f"{who(event)} extended the statutory period{part(' by {} working days', days)}{part(' to {}', until)}"


def _period_excluded(event: DomainEvent, context: WordingContext, lang: Lang) -> str:
    p, resumes = event.payload, parse_time(event.payload.get("resumes_at"))
    days, kind = p.get("expected_working_days"), term(p.get("kind"), lang)
    until = local_due(resumes, lang) if resumes else None
    if lang == "zh":
        time = f"{kind or '不计入期限的时间'}所需{part('{}个工作日', days) or '时间'}"
        return f"{who(event)}决定{time}不计入法定期限，期限暂停{part('至{}', until)}"
    time = f"{part('{} working days of ', days)}{kind or 'excluded time'}"
    return f"{who(event)} left {time} out of the period: paused{part(' until {}', until)}"


TASK = (Scope.task,)
CASE = (Scope.case,)
TASK_OR_CASE = (Scope.task, Scope.case)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "claim", ClaimRequest, TASK, KernelWorkflow.claim, (EventType.task_claimed,),
        "签收: take a pool task (open to a role) for yourself.", "签收：领取角色待办",
        wording={EventType.task_claimed: Wording("{who} claimed the task", "{who}签收了任务")},
        folds={EventType.task_claimed: claimed},
    ),
    Operation(
        "unclaim", UnclaimRequest, TASK, KernelWorkflow.unclaim, (EventType.task_unclaimed,),
        "Give a claimed task back to the pool.", "退回任务池",
        wording={EventType.task_unclaimed: Wording(
            "{who} released the task back to the pool", "{who}取消签收，任务退回任务池"
        )},
        folds={EventType.task_unclaimed: released},
    ),
    Operation(
        "recall", RecallRequest, TASK, KernelWorkflow.recall, (EventType.task_recalled,),
        "收回: the stage's supervisor takes a claimed task back to the pool (e.g. the claimant is absent).",
        "收回：环节督办人将已签收的待办收回任务池",
        agrees=(("reason", "reason"),),
        wording={EventType.task_recalled: Wording(
            "{who} recalled the task from {from} to the pool", "{who}将任务从{from}处收回任务池", comment=True
        )},
        folds={EventType.task_recalled: released},
    ),
    Operation(
        "declare-conflict", DeclareConflictRequest, TASK, KernelWorkflow.declare_conflict,
        (EventType.task_conflict_declared,),
        "回避: declare a conflict of interest on a task; it goes on without you and you take no task of the case.",
        "回避：声明利益冲突，任务交由他人办理，本人不再办理本案",
        agrees=(("relationship", "relationship"), ("reason", "reason")),
        wording={EventType.task_conflict_declared: Wording.of(_conflict_declared)},
        folds={EventType.task_conflict_declared: conflict_declared},
    ),
    Operation(
        "decide", DecideRequest, TASK, KernelWorkflow.decide, (EventType.task_decided,),
        "审批: approve, reject, approve_with_conditions, return (with return_to) or abstain (votes).",
        "审批：同意、不同意、附条件同意、退回或弃权",
        agrees=(("decision", "decision"), ("comment", "comment"), ("conditions", "conditions")),
        wording={EventType.task_decided: Wording.of(_decided, comment=True)},
        folds={EventType.task_decided: decided},
    ),
    Operation(
        "return", DecideRequest, TASK, KernelWorkflow.decide, (EventType.task_decided,),
        "退回: send the case back to an earlier stage (a decision `return`; a comment is required).",
        "退回：退回到此前环节重新审查",
        agrees=(("decision", "decision"), ("comment", "comment")),
        # conditions and a date go with approving decisions only, a deadline profile with accepting ones
        fixed={"decision": "return", "conditions": [], "due_date": None, "deadline_profile": None},
    ),
    Operation(
        "transfer", TransferRequest, TASK, KernelWorkflow.transfer, (EventType.task_transferred,),
        "转办: hand the task to another user.", "转办：将待办交给他人办理",
        agrees=(("to_user", "to"), ("comment", "comment")),
        wording={EventType.task_transferred: Wording(
            "{who} transferred the task from {from} to {to}", "{who}将任务由{from}转办给{to}", comment=True
        )},
        folds={EventType.task_transferred: transferred},
    ),
    Operation(
        "delegate", DelegateRequest, TASK, KernelWorkflow.delegate, (EventType.task_delegated,),
        "委托: let another user act for you; you stay accountable.", "委托：由他人代为办理，本人仍负责",
        agrees=(("to_user", "delegate"), ("comment", "comment")),
        wording={EventType.task_delegated: Wording(
            "{who} delegated the task to {delegate} (stays accountable)", "{who}委托{delegate}代为办理（本人仍负责）",
            comment=True,
        )},
        folds={EventType.task_delegated: delegated},
    ),
    Operation(
        "add-signer", AddSignerRequest, TASK, KernelWorkflow.add_signer,
        (EventType.task_signer_added, EventType.task_created),
        "加签: add a signer before or after you.", "加签：在本人之前或之后增加签批人",
        agrees=(("signer", "signer"), ("position", "position"), ("comment", "comment")),
        wording={EventType.task_signer_added: Wording.of(_signer_added, comment=True)},
        folds={EventType.task_signer_added: signer_added},
    ),
    Operation(
        "comment", CommentRequest, TASK_OR_CASE, KernelWorkflow.comment, (EventType.case_commented,),
        "Comment on the task or the case.", "发表意见",
        agrees=(("text", "text"),),
        wording={EventType.case_commented: Wording("{who} commented", "{who}发表意见", comment=True)},
        folds={EventType.case_commented: unchanged},
    ),
    Operation(
        "urge", UrgeRequest, TASK, KernelWorkflow.urge, (EventType.task_urged,),
        "催办: remind the task's holder.", "催办：提醒办理人",
        agrees=(("comment", "comment"),),
        wording={EventType.task_urged: Wording(
            "{who} urged the task holder (催办)", "{who}催办，提醒办理人尽快办理", comment=True
        )},
        folds={EventType.task_urged: unchanged},
    ),
    Operation(
        "cc", CcRequest, TASK_OR_CASE, KernelWorkflow.cc, (EventType.case_cc,),
        "抄送: inform other users.", "抄送：告知其他人员",
        agrees=(("observers", "observers"), ("comment", "comment")),
        wording={EventType.case_cc: Wording.of(_copied, comment=True)},
        folds={EventType.case_cc: copied},
    ),
    Operation(
        "withdraw", WithdrawRequest, CASE, KernelWorkflow.withdraw, (EventType.case_withdrawn,),
        "撤回: the applicant withdraws the application.", "撤回：申请人撤回申请",
        agrees=(("reason", "reason"),),
        wording={EventType.case_withdrawn: Wording(
            "{who} ended the case: withdrawn", "{who}撤回申请，办件终结", comment=True
        )},
        folds={EventType.case_withdrawn: case_ended},
    ),
    Operation(
        "request-supplement", RequestSupplementRequest, CASE, KernelWorkflow.request_supplement,
        (EventType.case_supplement_requested,),
        "补正: list at once everything the applicant must supplement.", "补正：一次性告知需要补正的全部内容",
        agrees=(("items", "items"), ("comment", "comment")),
        wording={EventType.case_supplement_requested: Wording.of(_supplement_requested, comment=True)},
        folds={EventType.case_supplement_requested: supplement_requested},
    ),
    Operation(
        "supplement", SupplementRequest, CASE, KernelWorkflow.supplement, (EventType.case_supplemented,),
        "The applicant supplies the material asked for (补正).", "申请人提交补正材料",
        agrees=(("documents", "documents"), ("comment", "comment")),
        wording={EventType.case_supplemented: Wording.of(_supplemented, comment=True)},
        folds={EventType.case_supplemented: supplemented},
    ),
    Operation(
        "extend", ExtendRequest, CASE, KernelWorkflow.extend, (EventType.case_extended,),
        "延期: extend the statutory period once, with the reasons.", "延期：经批准延长法定期限一次并说明理由",
        agrees=(("reason", "reason"),),
        wording={EventType.case_extended: Wording.of(_extended, comment=True)},
        folds={EventType.case_extended: extended},
    ),
    Operation(
        "exclude-period", ExcludePeriodRequest, CASE, KernelWorkflow.exclude_period, (EventType.clock_paused,),
        "Art. 45: time for a hearing, inspection, testing, appraisal or expert review is not counted; the "
        "deadlines stop for the time told to the applicant.",
        "期限中止：听证、检验、检测、鉴定、专家评审等所需时间不计入法定期限，并告知申请人",
        agrees=(("kind", "kind"), ("reason", "reason"), ("expected_working_days", "expected_working_days")),
        wording={EventType.clock_paused: Wording.of(_period_excluded, comment=True)},
        folds={EventType.clock_paused: period_excluded},
    ),
)  # fmt: skip


def operations(scope: Scope) -> dict[str, Operation]:
    """The operations on a task or on a case, by name, in declaration order."""
    return {operation.name: operation for operation in OPERATIONS if operation.applies_to(scope)}


def event_wording() -> dict[EventType, Wording]:
    """Every event type's wording: the system table's, and each operation's for the events it records."""
    return _declared("wording", SYSTEM_WORDING)


def event_folds() -> dict[EventType, Fold]:
    """Every event type's fold: the system table's, and each operation's for the events it records."""
    return _declared("folds", SYSTEM_FOLDS)


def _declared(attribute: str, system: Mapping[EventType, Any]) -> dict[EventType, Any]:
    """The system table merged with what each operation declares under ``attribute``, each type once."""
    found = dict(system)
    for operation in OPERATIONS:
        for event_type, declared in getattr(operation, attribute).items():
            if found.setdefault(event_type, declared) is not declared:
                raise ValueError(f"{event_type} is declared twice in {attribute} (operation {operation.name!r})")
    return found


def by_update_name() -> dict[str, Operation]:
    """Workflow Update name -> the operation that defines what it records (``return`` shares ``decide``)."""
    found: dict[str, Operation] = {}
    for operation in OPERATIONS:
        found.setdefault(operation.update_name, operation)
    return found
