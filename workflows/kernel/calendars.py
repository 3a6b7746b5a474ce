"""The case's working-day calendar: recording the assumptions a count made, and adopting a newly published
year (the open deadlines counted again, the moves recorded with their old and new dates)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.calendar import YearAssumption
    from schemas.case import AdoptCalendarRequest, CaseState
    from schemas.events import EventType
    from schemas.principal import SYSTEM
    from workflows.kernel.clocks import Clocks
    from workflows.kernel.recorder import Recorder
    from workflows.kernel.refusal import deny
    from workflows.kernel.stages import Stages

PERIODS_LEGAL_BASIS = "Administrative Licensing Law Art. 82"
"""Periods are counted in working days, statutory holidays excluded: a newly published holiday moves them."""


class CaseCalendar:
    def __init__(self, case_id: str, legal_basis: str, state: CaseState, recorder: Recorder) -> None:
        self._case_id = case_id
        self._legal_basis = legal_basis
        self._state = state
        self._recorder = recorder

    def assumed(self, assumption: YearAssumption, purpose: str) -> None:
        """Records, once per year (and layers), that a deadline was counted without an official schedule."""
        year = assumption.year
        if assumption.weekends_only:
            warning = f"no official holiday schedule for {year}: working days counted as Monday-Friday"
            payload = {"year": year, "purpose": purpose, "assumption": "weekends_only"}
        else:
            layers = ", ".join(assumption.layers)
            warning = f"no official {layers} holiday schedule for {year}: counted with the assumed one"
            payload = {
                "year": year,
                "purpose": purpose,
                "assumption": "assumed_schedule",
                "layers": list(assumption.layers),
            }
        if warning not in self._state.warnings:
            self._state.warnings.append(warning)
            self._recorder.emit(
                EventType.case_calendar_assumption, actor=SYSTEM, legal_basis=self._legal_basis, payload=payload
            )

    def check(self, request: AdoptCalendarRequest, clocks: Clocks) -> None:
        """The validator: a closed case keeps its dates, and a calendar is only taken when it is newer."""
        if self._state.status.is_final:
            raise deny("CASE_CLOSED", f"case {self._case_id} is {self._state.status.value}; its dates stay")
        current = clocks.calendar
        if current is not None and request.calendar.revision <= current.revision:
            raise deny(
                "CALENDAR_NOT_NEWER",
                f"case {self._case_id} counts with calendar revision {current.revision}; "
                f"revision {request.calendar.revision} is not newer",
            )

    def adopt(self, request: AdoptCalendarRequest, clocks: Clocks, stages: Stages) -> None:
        """Counts the open deadlines again on the new calendar and records what moved (old and new dates).
        The calendar is carried on through continue-as-new and into child cases from here on."""
        assert clocks.calendar is not None
        if request.calendar.revision <= clocks.calendar.revision:
            return  # a newer one arrived first while this one waited for the case to load its calendar
        moved = clocks.adopt(request.calendar, workflow.now())
        for clock in clocks:  # moved or not, each deadline counted again may rest on fewer assumed years
            for task in stages.clock_tasks(clock):
                self._recorder.task_changed(task.id)
        self._recorder.emit(
            EventType.case_deadlines_recomputed,
            actor=request.actor,
            legal_basis=PERIODS_LEGAL_BASIS,
            payload={
                "calendar": request.calendar.name,
                "revision": request.calendar.revision,
                "layer": request.layer,
                "year": request.year,
                "moved": [
                    {
                        "clock": clock.key,
                        "label": clock.label,
                        "stage_id": clock.stage_id,
                        "previous_due_at": previous.isoformat(),
                        "due_at": clock.due_at.isoformat(),
                    }
                    for clock, previous in moved
                ],
            },
        )
