"""The report's charts, drawn on the server by matplotlib as SVG: cases per month, the time-to-decision
distribution, and the on-time rate per unit. Text is drawn as paths, so the SVG needs no font where it is shown;
the Chinese labels are drawn with Debian's Noto CJK fonts (``fonts-noto-cjk``, installed by ``make install``)."""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure

from schemas.reports import ReportSummary

FONTS = ["Noto Sans CJK SC", "Noto Serif CJK SC", "DejaVu Sans"]
BAR = "#b22222"
SECOND = "#4a6fa5"
SIZE = (7.2, 3.4)
# Set once for the process (rc_context would change them for every thread while a chart is drawn): the fonts, and
# a fixed hash salt, so the same figures draw the same SVG (its element ids are otherwise random).
matplotlib.rcParams.update({"font.family": FONTS, "svg.hashsalt": "approvals-report"})


def _svg(figure: Figure) -> str:
    """The figure as SVG. Figures are made without pyplot, whose registry of open figures is global: charts may
    be drawn in several threads at once (the API renders reports off its event loop)."""
    out = io.StringIO()
    figure.tight_layout()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def cases_per_month(by_month: ReportSummary) -> str:
    """Received and decided cases per month of receipt."""
    figure = Figure(figsize=SIZE)
    axes = figure.subplots()
    months = [group.key for group in by_month.groups]
    positions = range(len(months))
    axes.bar([p - 0.2 for p in positions], [g.received for g in by_month.groups], 0.4, color=BAR, label="收件 received")
    decided = [g.granted + g.refused for g in by_month.groups]
    axes.bar([p + 0.2 for p in positions], decided, 0.4, color=SECOND, label="办结 decided")
    axes.set_xticks(list(positions), months, rotation=45 if len(months) > 6 else 0)
    axes.set_title("每月收件与办结 Cases per month")
    axes.set_ylabel("件 cases")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def decision_days(summary: ReportSummary) -> str:
    """How many decisions took each number of working days."""
    figure = Figure(figsize=SIZE)
    axes = figure.subplots()
    days = summary.decision_days
    axes.bar([int(item.key) for item in days], [item.count for item in days], 0.8, color=SECOND)
    axes.set_title("办结用时分布 Working days to decision")
    axes.set_xlabel("工作日 working days")
    axes.set_ylabel("件 cases")
    return _svg(figure)


def on_time_per_unit(by_unit: ReportSummary) -> str:
    """The share of decisions made within the statutory period, per deciding unit."""
    figure = Figure(figsize=SIZE)
    axes = figure.subplots()
    rated = [group for group in by_unit.groups if group.on_time_rate is not None]
    units = [group.key or "（无）" for group in rated]
    axes.barh(units, [100 * (group.on_time_rate or 0) for group in rated], color=BAR)
    axes.set_xlim(0, 100)
    axes.set_title("各单位按期办结率 On-time rate per unit")
    axes.set_xlabel("%")
    axes.invert_yaxis()
    return _svg(figure)
