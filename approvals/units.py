"""Units and their heads: a unit head (role ``unit_head``, their unit the principal's ``unit``) hands over the
tasks of their own unit's staff, as an admin does anyone's (``approvals.handover``).

The engine keeps no staff directory: principals come from the identity provider's tokens, each naming its unit.
A person's unit is therefore the one recorded with their latest act in the audit log (``actor_unit``), the unit
their own token named then. Someone who never acted has no recorded unit: their tasks are an admin's to hand over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from approvals.admission import ADMIN
from approvals.errors import Conflict, Forbidden, NotFound
from approvals.storage import queries
from schemas.principal import Principal
from schemas.process import ProcessDefinition
from schemas.records import TaskProjection

__all__ = ["UNIT_HEAD", "UNIT_HEAD_MOVES", "heads_a_unit_only", "own_unit_staff", "pinned_to_own_unit"]

UNIT_HEAD = "unit_head"
UNIT_HEAD_MOVES = ("transfer", "recall")
"""The operations a unit head may apply to a task they do not hold, when someone of their unit holds it."""


def heads_a_unit_only(principal: Principal) -> bool:
    """A unit head who is not an admin: what they move of others' is limited to their own unit."""
    return principal.has_any_role((UNIT_HEAD,)) and not principal.has_any_role((ADMIN,))


async def own_unit_staff(pool: asyncpg.Pool, head: Principal, user_id: str) -> None:
    """Refuses (403) unless ``user_id`` is of ``head``'s unit, naming why: the head names no unit
    (``UNIT_REQUIRED``), the person never acted so no unit is recorded for them (``UNIT_UNKNOWN``), or their
    recorded unit is another (``NOT_OWN_UNIT``)."""
    if not head.unit:
        raise Forbidden(f"{head.id} is a unit head but their token names no unit", code="UNIT_REQUIRED")
    unit = await queries.recorded_unit(pool, user_id)
    if unit is None:
        raise Forbidden(
            f"{user_id} has no recorded act, so no unit is known for them: an admin hands over their tasks",
            code="UNIT_UNKNOWN",
        )
    if unit != head.unit:
        raise Forbidden(
            f"{user_id} is of {unit or 'no unit'}, not of {head.unit}: {head.id} heads {head.unit} and hands over "
            "the tasks of its own staff only",
            code="NOT_OWN_UNIT",
        )


async def _supervises(pool: asyncpg.Pool, principal: Principal, task: TaskProjection) -> bool:
    """Whether ``principal`` holds the supervisor role of the task's stage, who recalls its claimed tasks whoever
    claimed them."""
    recorded = await queries.recorded_definition(pool, task.case_id)
    if recorded is None:
        return False
    deadline = ProcessDefinition.model_validate(recorded).stage(task.stage_id).deadline
    supervisor = deadline.escalate_to_role if deadline else None
    return supervisor is not None and supervisor in principal.roles


async def pinned_to_own_unit(
    pool: asyncpg.Pool, head: Principal, operation: str, task_id: str, body: Mapping[str, Any]
) -> Mapping[str, Any]:
    """``body`` of a unit head's transfer or recall of ``task_id``: refused (403) when someone not of their unit
    holds it, and pinned to the task's version the check read, so the case refuses it (STALE_TASK_VERSION) if the
    task moved meanwhile, to a holder not checked."""
    task = await queries.get_task(pool, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}", code="TASK_NOT_FOUND")
    holder = task.delegate_id or task.claimed_by or task.assignee_id
    if holder is None or holder == head.id or (operation == "recall" and await _supervises(pool, head, task)):
        return body  # their own task, a pool task, or a recall by the stage's supervisor: the case's rules decide
    await own_unit_staff(pool, head, holder)
    if body.get("expected_version") not in (None, task.version):
        raise Conflict(
            f"task {task_id} is at version {task.version}, not {body['expected_version']}: reload it",
            code="STALE_TASK_VERSION",
        )
    return {**body, "expected_version": task.version}
