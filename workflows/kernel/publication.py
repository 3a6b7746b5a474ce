"""Disclosure of a decision (Art. 18): the notice recorded as ``case.published`` and told to the applicant,
redacted and given a working-day deadline when the process has disclosure rules, then handed to the
publication channel; the deadline's clock reminds and escalates until the channel has it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.publication import PublicationActivities
    from schemas.disclosure import DisclosureRules, redact
    from schemas.events import EventType
    from schemas.notifications import DisclosureNotice
    from schemas.principal import SYSTEM
    from workflows.kernel.clocks import Clock, Clocks
    from workflows.kernel.recorder import NOTIFY_RETRY, Recorder

PUBLICATION_CLOCK = "publication"

Told = tuple[str, str, dict[str, Any]]
"""Who is told of the decision (the applicant's id), the subject and the data of that notification."""


class Publisher:
    def __init__(self, recorder: Recorder, clocks: Clocks) -> None:
        self._recorder = recorder
        self._clocks = clocks

    def clock(self, rules: DisclosureRules | None, legal_basis: str) -> Clock | None:
        """The clock of the publication deadline, counted before the notice is made (an assumed year is
        recorded first, so the notice's idempotency key follows it); started once the notice is recorded."""
        if rules is None:
            return None
        return self._clocks.counted(
            workflow.now(),
            rules.within_working_days,
            key=PUBLICATION_CLOCK,
            label="信息公开 Publication (Art. 18)",
            legal_basis=legal_basis,
            remind_before=rules.remind_before_working_days,
            escalate_to_role=rules.escalate_to_role,
        )

    async def publish(
        self,
        notice: DisclosureNotice,
        legal_basis: str,
        told: Told,
        rules: DisclosureRules | None,
        clock: Clock | None,
    ) -> DisclosureNotice:
        if rules:
            notice = redact(notice, rules)
        event = self._recorder.emit(
            EventType.case_published,
            actor=SYSTEM,
            legal_basis=legal_basis,
            payload=notice.model_dump(mode="json", exclude_none=True),  # earlier notices: as they were sealed
        )
        recipient, subject, data = told
        self._recorder.notify(event, recipient, "case.decided", subject, data)
        await self._recorder.record()
        if rules and clock:
            self._clocks.start(clock, working_days=rules.within_working_days, stopped=False)
        await workflow.execute_activity_method(
            PublicationActivities.publish_disclosure,
            notice,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=NOTIFY_RETRY,
        )
        self._clocks.stop(PUBLICATION_CLOCK)
        return notice
