"""The summary as tables people open: CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese) and XLSX.

Headers are Chinese first, the English name after it (``收件数 received``). The first table is the grouped
figures with a total row (合计); the breakdowns follow, each its own table (CSV: after an empty row; XLSX: a sheet).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from schemas.reports import CountBy, GroupBy, GroupFigures, ReportSummary

GROUP_NAMES = {
    GroupBy.process: ("事项", "process"),
    GroupBy.unit: ("办理单位", "unit"),
    GroupBy.stage: ("环节", "stage"),
    GroupBy.month: ("收件月份", "month"),
}

COLUMNS: tuple[tuple[str, str], ...] = (
    ("received", "收件数"),
    ("accepted", "受理数"),
    ("refused_to_accept", "不予受理数"),
    ("granted", "准予数"),
    ("refused", "不予数"),
    ("withdrawn", "撤回数"),
    ("under_supervision", "监管中"),
    ("decision_days_mean", "办结工作日（平均）"),
    ("decision_days_median", "办结工作日（中位数）"),
    ("decision_days_p90", "办结工作日（90%分位）"),
    ("with_statutory_period", "计法定期限件数"),
    ("on_time", "按期办结数"),
    ("on_time_rate", "按期办结率"),
    ("extensions", "延期次数"),
    ("supplements", "补正次数"),
    ("excluded_periods", "特别程序次数"),
)
"""Each figure of :class:`GroupFigures` with its Chinese name."""

BREAKDOWNS: tuple[tuple[str, str, str], ...] = (
    ("overdue_open_tasks", "超期未办任务（按单位）", "办理单位 unit"),
    ("denied_attempts", "被拒绝的操作（按原因）", "原因代码 reason_code"),
    ("error_tolerance_outcomes", "容错免责认定结果", "认定结果 outcome"),
    ("talent_decisions", "人才政策决定", "决定 decision"),
    ("decision_days", "办结用时分布（工作日）", "工作日 working_days"),
)

TOTAL = "合计 total"
NONE_LABEL = "（无）"


def header(group_by: GroupBy) -> list[str]:
    zh, en = GROUP_NAMES[group_by]
    return [f"{zh} {en}", *(f"{zh_name} {name}" for name, zh_name in COLUMNS)]


def _value(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _row(label: str, figures: GroupFigures) -> list[Any]:
    return [label, *(_value(getattr(figures, name)) for name, _ in COLUMNS)]


def figure_rows(summary: ReportSummary) -> Iterator[list[Any]]:
    """The grouped table: one row per group, then the total."""
    for group in summary.groups:
        yield _row(group.key or NONE_LABEL, group)
    yield _row(TOTAL, summary.total)


def _counts(items: list[CountBy]) -> Iterator[list[Any]]:
    for item in items:
        yield [item.key or NONE_LABEL, item.count]


def breakdown_tables(summary: ReportSummary) -> Iterator[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) of each breakdown, the catalogue's changes last."""
    for field, title, key_header in BREAKDOWNS:
        yield title, [key_header, "数量 count"], list(_counts(getattr(summary, field)))
    changes = summary.catalogue_changes
    yield (
        "职能目录变更",
        ["项目 item", "数量 count"],
        [["公告次数 publications", changes.publications], ["职能事项 functions", changes.functions]],
    )


def _title(summary: ReportSummary) -> str:
    return f"办件统计 {summary.from_date}—{summary.to_date}（{GROUP_NAMES[summary.group_by][0]}）"


def to_csv(summary: ReportSummary) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header(summary.group_by))
    writer.writerows(figure_rows(summary))
    for title, columns, rows in breakdown_tables(summary):
        writer.writerow([])
        writer.writerow([title])
        writer.writerow(columns)
        writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(summary: ReportSummary) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "统计 summary"
    bold = Font(bold=True)
    sheet.append([_title(summary)])
    sheet.append(header(summary.group_by))
    for cell in sheet[2]:
        cell.font = bold
    for row in figure_rows(summary):
        sheet.append(row)
    for title, columns, rows in breakdown_tables(summary):
        extra = book.create_sheet(title[:31])
        extra.append(columns)
        for cell in extra[1]:
            cell.font = bold
        for row in rows:
            extra.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
