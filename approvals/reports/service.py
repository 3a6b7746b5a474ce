"""Who may read the reports, and each form of them: auditors, admins and the head; anyone else is refused (403),
and the refusal is recorded as a denied attempt like any refused read."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from approvals.calendar_publishing import current_calendar
from approvals.errors import Forbidden
from approvals.reports import charts, pdf, summary, tables
from approvals.service import ApprovalsService
from schemas.principal import Principal
from schemas.reports import GroupBy, ReportFormat, ReportSummary

MEDIA_TYPES = {
    ReportFormat.csv: "text/csv; charset=utf-8",
    ReportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ReportFormat.pdf: "application/pdf",
}


@dataclass(frozen=True)
class ChartedSummary:
    """The figures grouped as asked, and the same period's figures grouped as the charts draw them."""

    figures: ReportSummary
    by_month: ReportSummary
    by_unit: ReportSummary

    def charts(self) -> list[str]:
        """The report's three charts as SVG: cases per month, the time-to-decision distribution, on time per unit."""
        return [
            charts.cases_per_month(self.by_month),
            charts.decision_days(self.figures),
            charts.on_time_per_unit(self.by_unit),
        ]


@dataclass(frozen=True)
class ReportFile:
    content: bytes
    media_type: str
    filename: str


class Reports:
    def __init__(self, service: ApprovalsService) -> None:
        self._service = service

    async def _allowed(self, principal: Principal, request: summary.ReportRequest) -> None:
        asked = {"from": request.from_date.isoformat(), "to": request.to_date.isoformat(),
                 "group_by": request.group_by.value, "format": request.format.value}  # fmt: skip
        await self.require_reader(principal, asked)

    async def require_reader(self, principal: Principal, asked: dict[str, str]) -> None:
        """403 for anyone but the readers of the reports, recorded with what they ``asked`` (e.g. the console's
        period picker, whose period may not even be a period)."""
        try:
            summary.require_reader(principal)
        except Forbidden as refusal:
            await self._service._record_denial(
                principal, "read:reports", None, None, refusal.code, refusal.detail, asked
            )
            raise

    async def summary(
        self, principal: Principal, request: summary.ReportRequest, *, as_of: datetime | None = None
    ) -> ReportSummary:
        await self._allowed(principal, request)
        calendar = await current_calendar(self._service.pool, self._service.settings.calendar_path)
        return await summary.summary(self._service.pool, calendar, request, as_of=as_of)

    async def file(self, principal: Principal, request: summary.ReportRequest) -> ReportFile:
        """The summary as CSV, XLSX or the Art. 29 PDF (with its charts: per month, per unit, distribution)."""
        figures = await self.summary(principal, request)
        name = f"report-{request.from_date}-{request.to_date}-{request.group_by.value}.{request.format.value}"
        # Rendered off the event loop: a PDF with its charts takes a while, and the API serves everyone else meanwhile.
        if request.format is ReportFormat.csv:
            content = await asyncio.to_thread(tables.to_csv, figures)
        elif request.format is ReportFormat.xlsx:
            content = await asyncio.to_thread(tables.to_xlsx, figures)
        else:
            charted = await self._charted(figures, request)
            organ = self._service.settings.document_organ_name
            content = await asyncio.to_thread(pdf.to_pdf, figures, charted.by_month, charted.by_unit, organ)
        return ReportFile(content, MEDIA_TYPES[request.format], name)

    async def charted(self, principal: Principal, request: summary.ReportRequest) -> ChartedSummary:
        """The figures and the groupings the charts need (the console's dashboard, the PDF report)."""
        return await self._charted(await self.summary(principal, request), request)

    async def _charted(self, figures: ReportSummary, request: summary.ReportRequest) -> ChartedSummary:
        by_month = await self._regrouped(figures, request, GroupBy.month)
        return ChartedSummary(figures, by_month, await self._regrouped(figures, request, GroupBy.unit))

    async def _regrouped(
        self, figures: ReportSummary, request: summary.ReportRequest, grouping: GroupBy
    ) -> ReportSummary:
        """The same period's figures grouped by ``grouping`` (as of the same instant), for a chart."""
        if figures.group_by is grouping:
            return figures
        calendar = await current_calendar(self._service.pool, self._service.settings.calendar_path)
        regrouped = summary.ReportRequest(request.from_date, request.to_date, grouping, request.format)
        return await summary.summary(self._service.pool, calendar, regrouped, as_of=figures.as_of)
