"""Stage durations against their working-day deadlines, as bars of an SVG drawn on the server (no script)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from approvals.audit.timeline import TimelineRow

ROW_HEIGHT = 28
BAR_HEIGHT = 16
LABEL_WIDTH = 220
PLOT_WIDTH = 520
VALUE_WIDTH = 110
MIN_BAR_WIDTH = 2
"""A stage done within its first working day still shows a sliver, not nothing."""


@dataclass(frozen=True)
class Bar:
    label: str
    used: int
    allowed: int
    y: int
    used_width: float
    allowed_x: float

    @property
    def late(self) -> bool:
        return self.used > self.allowed


@dataclass(frozen=True)
class StageChart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int = LABEL_WIDTH
    bar_height: int = BAR_HEIGHT


def stage_chart(rows: Sequence[TimelineRow], *, chinese: bool) -> StageChart:
    """One bar per completed stage with a deadline: working days used, and a mark at the days allowed."""
    measured = [r for r in rows if r.working_days_used is not None and r.working_days_allowed is not None]
    longest = max([max(r.working_days_used or 0, r.working_days_allowed or 0) for r in measured] + [1])
    scale = PLOT_WIDTH / longest
    bars = []
    for index, row in enumerate(measured):
        used, allowed = row.working_days_used or 0, row.working_days_allowed or 0
        title = row.stage_title or row.stage_id or ""
        label = title.split(" ", 1)[0] if chinese else title
        width = max(used * scale, MIN_BAR_WIDTH)
        bars.append(Bar(label, used, allowed, index * ROW_HEIGHT + 6, width, LABEL_WIDTH + allowed * scale))
    return StageChart(bars, LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH, max(len(bars), 1) * ROW_HEIGHT + 12)
