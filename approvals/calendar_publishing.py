"""Publishing a calendar year: an admin lays one layer's year (a State Council or regional notice) over the
calendar file, and every running case counts its open deadlines again on the new calendar.

A case takes its calendar once, at start, and carries it through continue-as-new, so a case under
supervision for years would never learn a later year's holidays. Publishing stores the year in PostgreSQL
(``calendar_years``, where new cases' ``load_calendar`` activity finds it) and sends the whole new calendar,
at its new revision, to each running case as the ``adopt_calendar`` Workflow Update; the case records
``case.deadlines_recomputed`` with the old and new dates. The update id names the revision, so sending it
again (publishing again after a failure) is applied at most once per case.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, Field, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from approvals.admission import ADMIN
from approvals.errors import Forbidden, InvalidRequest, NotFound, invalid
from approvals.storage import calendars
from schemas.calendar import WorkingCalendar, YearSchedule, dates_outside_year, load_calendar, with_published
from schemas.case import FINAL_STATUSES, AdoptCalendarRequest
from schemas.principal import Principal
from workflows.kernel import KernelWorkflow

log = structlog.get_logger(__name__)

FIRST_YEAR, LAST_YEAR = 2000, 2100
INFORM_CONCURRENCY = 8
INFORM_TIMEOUT = timedelta(seconds=20)
"""How long one case may take to adopt the calendar before it is reported as not informed."""


def _require_admin(principal: Principal) -> None:
    if not principal.has_any_role((ADMIN,)):
        raise Forbidden(
            f"{principal.id} (roles {list(principal.roles)}) may not administer the calendar: role admin required",
            code="ROLE_REQUIRED",
        )


class Informed(BaseModel):
    adopted: list[str] = Field(description="Cases that counted their open deadlines again.")
    already_newer: list[str] = Field(description="Cases that had this revision or a newer one already.")
    ended: list[str] = Field(description="Cases that ended before they were told.")
    failed: dict[str, str] = Field(description="Cases not reached, with why: publish the year again to retry.")


class Publication(BaseModel):
    layer: str
    year: int
    revision: int = Field(description="The calendar's revision with this year.")
    cases: Informed


async def current_calendar(pool: asyncpg.Pool, calendar_path: Any) -> WorkingCalendar:
    """The calendar a case started now gets: the file with every published year over it."""
    return with_published(load_calendar(calendar_path), await calendars.published_years(pool))


class CalendarPublisher:
    def __init__(self, client: Client, pool: asyncpg.Pool, calendar_path: Any) -> None:
        self.client = client
        self.pool = pool
        self.calendar_path = calendar_path

    async def current(self) -> WorkingCalendar:
        return await current_calendar(self.pool, self.calendar_path)

    async def calendar(self, principal: Principal) -> WorkingCalendar:
        """``current()``, for an admin."""
        _require_admin(principal)
        return await self.current()

    async def publish(self, principal: Principal, layer: str, year: int, body: Any) -> Publication:
        """Checks and stores the year, then tells every running case; 403 for a non-admin, 422 naming the
        field for a bad year."""
        _require_admin(principal)
        calendar = await self.current()
        schedule = self._checked(calendar, layer, year, body)
        revision = await calendars.publish_year(self.pool, layer, year, schedule, principal.id)
        log.info("calendar.published", layer=layer, year=year, revision=revision, by=principal.id)
        calendar = await self.current()  # with any year published meanwhile: the newest revision wins in cases
        request = AdoptCalendarRequest(actor=principal, calendar=calendar, layer=layer, year=year)
        return Publication(layer=layer, year=year, revision=calendar.revision, cases=await self._inform(request))

    @staticmethod
    def _checked(calendar: WorkingCalendar, layer: str, year: int, body: Any) -> YearSchedule:
        def refused(field: str, message: str) -> InvalidRequest:
            error = {"field": field, "location": "body", "message": message, "type": "value_error"}
            return InvalidRequest(f"invalid calendar year: {field}: {message}", [error])

        layers = [each.name for each in calendar.layers]
        if layer not in layers:  # the path names something that is not there
            raise NotFound(f"no layer {layer!r}; the calendar's layers are {', '.join(layers)}", code="NO_SUCH_LAYER")
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise refused("year", f"{year} is not a year between {FIRST_YEAR} and {LAST_YEAR}")
        try:
            schedule = YearSchedule.model_validate(body)
        except ValidationError as error:
            raise invalid(error, "calendar year") from None
        problems = dates_outside_year(year, schedule)
        if problems:
            field = problems[0].split(" ", 1)[0].replace("[", ".").rstrip("]")
            raise refused(field, problems[0])
        return schedule

    async def _inform(self, request: AdoptCalendarRequest) -> Informed:
        case_ids = await calendars.running_case_ids(self.pool, sorted(FINAL_STATUSES))
        informed = Informed(adopted=[], already_newer=[], ended=[], failed={})
        limit = asyncio.Semaphore(INFORM_CONCURRENCY)

        async def tell(case_id: str) -> None:
            async with limit:
                outcome = await self._tell(case_id, request)
            if outcome is None:
                informed.adopted.append(case_id)
            elif outcome == "CALENDAR_NOT_NEWER":
                informed.already_newer.append(case_id)
            elif outcome in ("CASE_CLOSED", "NOT_FOUND"):
                informed.ended.append(case_id)
            else:
                informed.failed[case_id] = outcome

        await asyncio.gather(*(tell(case_id) for case_id in case_ids))
        for names in (informed.adopted, informed.already_newer, informed.ended):
            names.sort()
        return informed

    async def _tell(self, case_id: str, request: AdoptCalendarRequest) -> str | None:
        """None when the case adopted the calendar, else the reason it did not."""
        handle = self.client.get_workflow_handle(case_id)
        update_id = f"adopt_calendar:{request.calendar.revision}"
        try:
            await handle.execute_update(
                KernelWorkflow.adopt_calendar, request, id=update_id, rpc_timeout=INFORM_TIMEOUT
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            return cause.type or "REFUSED" if isinstance(cause, ApplicationError) else str(cause)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            return f"TIMEOUT: no answer within {INFORM_TIMEOUT.total_seconds():.0f} s (is its worker running?)"
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return "NOT_FOUND"  # the workflow has ended (its projection may lag)
            log.warning("calendar.case_not_informed", case_id=case_id, error=str(error))
            return f"{error.status.name}: {error.message}"
        return None
