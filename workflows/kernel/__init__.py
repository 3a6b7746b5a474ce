"""The approval kernel: stages, human tasks, routing, working-day clocks and the hash-chained record.

Every statutory process is a subclass of ``KernelWorkflow`` that builds a ``ProcessDefinition`` and calls
``run_case``; they differ in stages and rules, never in mechanics. Reviewer operations are Workflow Updates
whose validators refuse bad requests before anything enters the history (the refusal carries a
machine-readable reason code as the ApplicationError type). Accepted operations change the case, append
sealed domain events and return only after the recording activity has written events and projections to
PostgreSQL, so a reviewer who refreshes their inbox sees the result at once.

The parts, each owning one concern (``KernelWorkflow`` only wires them and carries the updates):

- ``schemas.case.CaseState``: everything a case carries from run to run, passed whole by continue-as-new;
  ``state``: the tasks and stage rounds of one run;
- ``clocks``: working-day deadlines, 补正 stop/resume, reminders, escalation, extension (pure, no Temporal);
- ``routing``: one ``RoutingPolicy`` per routing mode (single, all 会签, any 或签, sequential 依次, quorum);
- ``stages``: running the steps, opening and settling stages, tasks, returns (退回), ending the case;
- ``deadlines``: the clocks' timer loop (reminders, escalation, a vote closing at its deadline);
- ``status``: the case status, the search attributes and the status callback;
- ``recorder``: sealing events into the hash chain, recording batches, notifications (outbox);
- ``guards``: the checks behind every update's validator (``deny`` builds a refusal);
- ``supervision``: recorded timers, periodic reviews, adjustment child cases, continue-as-new;
- ``views``: the ``view`` query and the projections the recorder writes;
- ``publication``: disclosure of a decision (Art. 18): redaction, its deadline and clock, the hand-over;
- ``remedies``: the Art. 38 notice (reasons, reconsideration, suit) that follows every refusal.
- ``documents``: the official documents (公文) an event makes due, issued once it is recorded (``document.issued``).

The process API. A process workflow subclasses ``KernelWorkflow``, adds ``@workflow.run`` (which calls
``run_case``) and uses only what follows; everything else is the kernel's own.

Hooks it may override:

- ``async on_final()``: the case has its final status, before supervision and the end (publish, notify);
- ``async on_adjusted(adjustment, completed) -> bool``: an adjustment child case ended; False ends the
  supervision early;
- ``on_decided(stage, request)``: a decision was accepted at a stage, before it settles (e.g. keep its
  ``due_date``);
- ``case_projection() -> CaseProjection``: the case row as recorded (extend ``super()``'s, e.g. its summary).

What it may call:

- read: ``case`` (the ``CaseInput``), ``case_id``, ``definition``, ``status``, ``outcome``, ``results`` (stage
  results by stage id), ``last_seq``, ``supervision_round``, ``calendar``, ``merged_conditions()``;
- recusal: ``concern(persons)`` names the persons the application shows the case concerns (回避: they may not
  claim, decide or vote; ``workflows/kernel/recusal.py``), as the error-tolerance process does with its persons
  concerned;
- record: ``emit(EventType.…, actor=, legal_basis=, payload=)`` seals an event, ``await record()`` writes what
  was emitted; ``notify(event, recipient, kind, subject, data)`` tells one person (or ``role:<role>``) about an
  event, ``send(notification)`` queues any notification;
- act: ``await publish(...)`` (Art. 18 disclosure), ``await wait_until(moment, label=, legal_basis=)`` (a
  recorded timer), ``await follow_up(stage, due=, ...)`` (one review after the decision);
- ``parse_application(parse, data, what)`` reads the case data as the process's application.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from workflows.kernel.refusal import deny
    from workflows.kernel.workflow import ApprovalWorkflow, KernelWorkflow

T = TypeVar("T")

__all__ = ["ApprovalWorkflow", "KernelWorkflow", "deny", "parse_application"]


def parse_application(parse: Callable[[Any], T], data: Any, what: str) -> T:
    """The case data as the process's application; a bad one fails the case at once, saying what is wrong."""
    try:
        return parse(data)
    except ValidationError as error:
        raise ApplicationError(f"invalid {what}: {error}", type="INVALID_APPLICATION", non_retryable=True) from None
