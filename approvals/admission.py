"""Who may start which case, for whom: pure rules over the starter, the case and the settings.

A refusal is returned, not raised, so the service records it as a denied attempt before answering.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from approvals.settings import Settings
from schemas.case import CaseInput
from schemas.principal import Principal

SERVICE, AUDITOR, ADMIN = "service", "auditor", "admin"
START_ROLES = (SERVICE, ADMIN)
READ_ALL_ROLES = (AUDITOR, ADMIN)
FREEFORM_PROCESS = "generic"
"""The process whose definition is the caller's own (everything else starts from a definition in code)."""


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    status: int = 403
    """403: the starter may not do this; 422: the case as asked for cannot be started by anyone."""


def start_refusal(
    starter: Principal, process: str, case: CaseInput | None, settings: Settings, *, registered: bool = False
) -> Refusal | None:
    """Why ``starter`` may not start this case (None: it may). Without ``case`` only the starter is judged.
    ``registered``: a generic case started by the name of a registered definition, which an admin wrote and
    registered (``POST /v1/definitions``): not free-form, so FREEFORM_DEFINITIONS does not gate it."""
    if not starter.has_any_role(START_ROLES):
        return Refusal(
            "ROLE_REQUIRED", f"starting cases needs the role service or admin; {starter.id} has {list(starter.roles)}"
        )
    freeform = process == FREEFORM_PROCESS and not registered
    if freeform and not settings.freeform_definitions and not starter.has_any_role((ADMIN,)):
        return Refusal(
            "FREEFORM_DEFINITIONS_OFF",
            f"a {FREEFORM_PROCESS} case carries its own process definition, which only the admin role may give "
            "(FREEFORM_DEFINITIONS is off); start a registered process or definition (definition_name) instead",
        )
    if case is None:
        return None
    if not settings.may_start_for(starter.id, case.applicant.id):
        return Refusal(
            "APPLICANT_NOT_ALLOWED",
            f"{starter.id} may not start cases for applicant {case.applicant.id!r} (APPLICANTS_BY_STARTER)",
        )
    parties = {case.applicant.id: "the applicant", starter.id: "the starter"}
    concerned = {person.user_id: person for person in case.concerned}
    for stage in case.definition.stages():
        for assignee in stage.assignees:
            if assignee in parties:
                return Refusal(
                    "SEPARATION_OF_DUTIES",
                    f"stage {stage.id} is assigned to {assignee}, {parties[assignee]} of the case, who may not "
                    "review it",
                    status=422,
                )
            if assignee in concerned:
                person = concerned[assignee]
                return Refusal(
                    "RECUSAL_REQUIRED",
                    f"stage {stage.id} is assigned to {assignee}, whom the case concerns ({person.relationship.value}: "
                    f"{person.reason}) and who must recuse themselves (回避)",
                    status=422,
                )
    return None


class RateLimit:
    """At most ``limit`` events per key in any ``window_seconds``: refused reads are recorded, but a client
    looping on a forbidden URL must not flood the table (what is over the limit is still logged)."""

    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window_seconds, clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        seen = self._seen.setdefault(key, deque())
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True
