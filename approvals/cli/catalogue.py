"""``approvals catalogue``: the Committee's catalogue of functions in force on a date (Art. 3, Art. 4), and what
changed since another date, from ``GET /v1/catalogue`` (folded there from the audit log)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from approvals.cli.client import DEFAULT_API_URL, ApiUrl, AsJson, Token, get
from approvals.cli.output import console, print_json
from approvals.event_wording import CHINA_TIME, ZONE


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


AsOf = Annotated[str | None, typer.Option("--as-of", help=f"Local date ({ZONE}), YYYY-MM-DD; today by default.")]
CompareTo = Annotated[
    str | None, typer.Option("--compare-to", help="Another local date: what was added, withdrawn or changed since.")
]


def _functions_table(functions: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("code", "function", "mode", "granting authority", "legal basis", "in force since", "put there by"):
        table.add_column(column)
    for function in functions:
        publication = function["publication"]
        table.add_row(
            function["code"], function["name"], function["mode"], function["granting_authority"],
            function["legal_basis"], function["effective_date"],
            f"{function['put_there_by']} (published, event #{publication['seq']})",
        )  # fmt: skip
    return table


def _changes_table(difference: dict[str, Any]) -> Table:
    table = Table(title=f"changes {difference['from_date']} → {difference['to_date']}", title_justify="left")
    for column in ("change", "code", "function", "by case"):
        table.add_column(column)
    for kind in ("added", "withdrawn", "changed"):
        for change in difference[kind]:
            function = change["after"] or change["before"]
            table.add_row(kind, change["code"], function["name"], change["by_case_id"])
    return table


def catalogue(
    as_of: AsOf = None,
    compare_to: CompareTo = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """The functions the Committee exercises on a date: authorize or entrust, granting organ, legal basis,
    effective date, and the case and publication that put each there (职能目录, Art. 3, Art. 4)."""
    day = _day(as_of) if as_of else datetime.now(UTC).astimezone(CHINA_TIME).date()
    params = {"as_of": day.isoformat(), "compare_to": _day(compare_to).isoformat() if compare_to else None}
    answer = get(api_url, token, "/v1/catalogue", **params)
    if as_json:
        print_json(answer)
        return
    console.print(_functions_table(answer["catalogue"]["functions"], f"catalogue in force on {day} ({ZONE})"))
    if answer["difference"] is not None:
        console.print(_changes_table(answer["difference"]))
