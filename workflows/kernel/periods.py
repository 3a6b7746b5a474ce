"""Statutory periods under the Administrative Licensing Law, as the case's deadline profile declares them:
the acceptance window before the period (Art. 32: accept, refuse or ask for 补正 in time, or the application
counts as accepted from receipt) and the time not counted in the period (Art. 45: a hearing, an expert
review …, told to the applicant, during which the deadlines stop).

Only cases under the statutory rules (``CaseState.statutory_periods``) open the window; excluded periods are
an operation added with these rules, so no case recorded before ever had one.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseState, ExcludePeriodRequest
    from schemas.events import EventType
    from schemas.principal import SYSTEM
    from schemas.process import CaseDeadline
    from workflows.kernel.clocks import Clocks
    from workflows.kernel.recorder import Recorder
    from workflows.kernel.stages import ACCEPTANCE_WINDOW, EXCLUDED_PERIOD, Stages


class Periods:
    def __init__(self, case: CaseInput, state: CaseState, recorder: Recorder, clocks: Clocks, stages: Stages) -> None:
        self._case = case
        self._state = state
        self._recorder = recorder
        self._clocks = clocks
        self._stages = stages
        self._excluded: ExcludePeriodRequest | None = None

    @property
    def _profile(self) -> CaseDeadline:
        profile = self._case.definition.period(self._state.deadline_profile)
        assert profile is not None, "only a case with a deadline profile has statutory periods"
        return profile

    # ------------------------------------------------------------------ Art. 32: the acceptance window

    def open_acceptance_window(self) -> None:
        """When the case starts: the window counts from receipt, whatever runs before the acceptance stage."""
        profile = self._case.definition.deadline
        if not (self._state.statutory_periods and profile and profile.starts_after_stage):
            return
        if not profile.acceptance_working_days:
            return
        days = profile.acceptance_working_days
        window = self._clocks.counted(
            self._state.started_at,
            days,
            key=ACCEPTANCE_WINDOW,
            label="受理期限 acceptance window",
            legal_basis=profile.acceptance_legal_basis,
            remind_before=0,
            escalate_to_role=None,
            on_due=self._deem_accepted,
        )
        self._clocks.start(window, working_days=days, stopped=False)

    def close_acceptance_window(self) -> None:
        """补正 was asked for in time: the application will not count as accepted by the window's passing."""
        self._clocks.stop(ACCEPTANCE_WINDOW)

    def _deem_accepted(self) -> None:
        """The window passed with no acceptance, refusal or 补正 notice: accepted from the day of receipt."""
        profile = self._profile
        self._clocks.stop(ACCEPTANCE_WINDOW)
        run = self._stages.runs.get(profile.starts_after_stage or "")
        if run is not None and run.outcome is None:
            reason = (
                f"no acceptance, refusal or 补正 notice within {profile.acceptance_working_days} working days of "
                "receipt: the application counts as accepted from the day it was received"
            )
            self._stages.complete_by_law(run, legal_basis=profile.acceptance_legal_basis, reason=reason)
        self._stages.start_case_clock(deemed=True)

    # ------------------------------------------------------------------ Art. 45: time not counted

    def exclude(self, request: ExcludePeriodRequest) -> None:
        """Every deadline stops for the time the applicant is told; it runs again by itself at that time."""
        profile, now = self._profile, workflow.now()
        self._clocks.pause(now)
        self._excluded = request
        end = self._clocks.counted(
            now,
            request.expected_working_days,
            key=EXCLUDED_PERIOD,
            label=f"不计入期限 excluded: {request.kind.value}",
            legal_basis=profile.excluded_legal_basis,
            remind_before=0,
            escalate_to_role=None,
            on_due=self._resume,
        )
        self._clocks.start(end, working_days=request.expected_working_days, stopped=False)
        event = self._recorder.emit(
            EventType.clock_paused,
            actor=request.actor,
            legal_basis=profile.excluded_legal_basis,
            payload={
                "kind": request.kind.value,
                "reason": request.reason,
                "expected_working_days": request.expected_working_days,
                "resumes_at": end.due_at.isoformat(),
                "working_days_left": {c.key: c.working_days_left for c in self._clocks if c.pausable},
            },
        )
        self._recorder.notify(
            event,
            self._case.applicant.id,
            "case.period_excluded",
            f"期限中止计算 {self._case.title}",
            {
                "kind": request.kind.value,
                "reason": request.reason,
                "expected_working_days": request.expected_working_days,
            },
        )
        self._stages.due_times_changed()

    def _resume(self) -> None:
        request = self._excluded
        assert request is not None
        self._clocks.stop(EXCLUDED_PERIOD)
        self._clocks.resume(workflow.now())
        self._excluded = None
        self._recorder.emit(
            EventType.clock_resumed,
            actor=SYSTEM,
            legal_basis=self._profile.excluded_legal_basis,
            payload={
                "kind": request.kind.value,
                "due_at": {c.key: c.due_at.isoformat() for c in self._clocks if c.pausable},
            },
        )
        self._stages.due_times_changed()
