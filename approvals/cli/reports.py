"""``approvals reports``: the Committee's statistics (Art. 29) from ``GET /v1/reports/summary``, as a table, as the
API's JSON, or saved as CSV, XLSX or the PDF report with its charts; for auditors, admins and the head."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from approvals.cli.client import DEFAULT_API_URL, ApiUrl, AsJson, Token, call
from approvals.cli.output import console, print_json

app = typer.Typer(help="The Committee's statistics: cases received, decided, on time (auditors, admins, the head).")

From = Annotated[str, typer.Option("--from", help="First local date of receipt (UTC+8), YYYY-MM-DD.")]
To = Annotated[str, typer.Option("--to", help="Last local date of receipt, YYYY-MM-DD (included).")]
GroupBy = Annotated[str, typer.Option("--group-by", help="process, unit, stage or month.")]
Format = Annotated[str, typer.Option("--format", help="table (default), csv, xlsx or pdf (the Art. 29 report).")]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Where to save a csv, xlsx or pdf (default: its name here).")
]

SHOWN = (
    ("received", "收件"), ("accepted", "受理"), ("refused_to_accept", "不予受理"), ("granted", "准予"),
    ("refused", "不予"), ("withdrawn", "撤回"), ("decision_days_median", "用时中位数"), ("on_time_rate", "按期率"),
)  # fmt: skip


def _day(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=option) from None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _table(answer: dict[str, Any]) -> Table:
    table = Table(title=f"{answer['from_date']} → {answer['to_date']} by {answer['group_by']}", title_justify="left")
    table.add_column(answer["group_by"])
    for _, zh in SHOWN:
        table.add_column(zh, justify="right")
    for group in [*answer["groups"], {**answer["total"], "key": "合计 total"}]:
        table.add_row(group["key"] or "（无）", *(_cell(group[name]) for name, _ in SHOWN))
    return table


@app.command("summary")
def summary(
    from_: From,
    to: To,
    group_by: GroupBy = "process",
    format_: Format = "table",
    output: Output = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """The figures of the cases received in a period, grouped (办件统计); a file with --format csv|xlsx|pdf."""
    if _day("--from", from_) > _day("--to", to):
        raise typer.BadParameter(f"{from_} is after --to {to}", param_hint="--from")
    params = {"from": from_, "to": to, "group_by": group_by}
    if format_ == "table":
        answer = call(api_url, token, "GET", "/v1/reports/summary", params=params).json()
        if as_json:
            print_json(answer)
            return
        console.print(_table(answer))
        console.print(
            f"extensions {answer['total']['extensions']}, 补正 {answer['total']['supplements']}, Art. 45 pauses "
            f"{answer['total']['excluded_periods']}; overdue open tasks "
            f"{sum(item['count'] for item in answer['overdue_open_tasks'])}",
            highlight=False,
        )
        return
    response = call(api_url, token, "GET", "/v1/reports/summary", params={**params, "format": format_})
    path = output or Path(f"report-{from_}-{to}-{group_by}.{format_}")
    path.write_bytes(response.content)
    console.print(
        f"saved {path} ({len(response.content):,} bytes, {response.headers['content-type']})", highlight=False
    )
