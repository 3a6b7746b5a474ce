"""The report's charts, drawn on the server by matplotlib as SVG: cases per month, the time-to-decision
distribution, and the on-time rate per unit. Text is drawn as paths, so the SVG needs no font where it is shown;
the Chinese labels are drawn with Debian's Noto CJK fonts (``fonts-noto-cjk``, installed by ``make install``)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("svg")  # no display, no GUI toolkit: the server draws to files only

from matplotlib import pyplot  # noqa: E402 - after the backend is chosen
from matplotlib.figure import Figure  # noqa: E402

from schemas.reports import ReportSummary  # noqa: E402

FONTS = ["Noto Sans CJK SC", "Noto Serif CJK SC", "DejaVu Sans"]
BAR = "#b22222"
SECOND = "#4a6fa5"
SIZE = (7.2, 3.4)
STYLE = {"font.family": FONTS, "svg.hashsalt": "approvals-report"}
"""A fixed hash salt: the same figures draw the same SVG (its element ids are otherwise random)."""


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.tight_layout()
    figure.savefig(out, format="svg", metadata={"Date": None})
    pyplot.close(figure)
    return out.getvalue()


def cases_per_month(by_month: ReportSummary) -> str:
    """Received and decided cases per month of receipt."""
    with matplotlib.rc_context(STYLE):
        figure, axes = pyplot.subplots(figsize=SIZE)
        months = [group.key for group in by_month.groups]
        positions = range(len(months))
        axes.bar(
            [p - 0.2 for p in positions], [g.received for g in by_month.groups], 0.4, color=BAR, label="收件 received"
        )
        decided = [g.granted + g.refused for g in by_month.groups]
        axes.bar([p + 0.2 for p in positions], decided, 0.4, color=SECOND, label="办结 decided")
        axes.set_xticks(list(positions), months, rotation=45 if len(months) > 6 else 0)
        axes.set_title("每月收件与办结 Cases per month")
        axes.set_ylabel("件 cases")
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _svg(figure)


def decision_days(summary: ReportSummary) -> str:
    """How many decisions took each number of working days."""
    with matplotlib.rc_context(STYLE):
        figure, axes = pyplot.subplots(figsize=SIZE)
        axes.bar([int(item.key) for item in summary.decision_days], [item.count for item in summary.decision_days],
                 0.8, color=SECOND)  # fmt: skip
        axes.set_title("办结用时分布 Working days to decision")
        axes.set_xlabel("工作日 working days")
        axes.set_ylabel("件 cases")
        return _svg(figure)


def on_time_per_unit(by_unit: ReportSummary) -> str:
    """The share of decisions made within the statutory period, per deciding unit."""
    with matplotlib.rc_context(STYLE):
        figure, axes = pyplot.subplots(figsize=SIZE)
        rated = [group for group in by_unit.groups if group.on_time_rate is not None]
        units = [group.key or "（无）" for group in rated]
        axes.barh(units, [100 * (group.on_time_rate or 0) for group in rated], color=BAR)
        axes.set_xlim(0, 100)
        axes.set_title("各单位按期办结率 On-time rate per unit")
        axes.set_xlabel("%")
        axes.invert_yaxis()
        return _svg(figure)
