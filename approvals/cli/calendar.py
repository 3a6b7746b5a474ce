"""``approvals calendar``: the working-day calendar (show) and publishing a year of one layer (publish), for
admins. Thin over the HTTP API (``/v1/admin/calendar``); the rules live in ``approvals.calendar_publishing``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from approvals.cli.client import DEFAULT_API_URL, EXIT_USAGE, ApiError, ApiUrl, AsJson, Token, call, fail, get
from approvals.cli.output import console, print_json

app = typer.Typer(help="The working-day calendar: national and regional holiday schedules (admins).")


@app.command("show")
def show(api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Show the calendar a case started now gets, layer by layer and year by year (显示工作日历)."""
    calendar = get(api_url, token, "/v1/admin/calendar")
    if as_json:
        print_json(calendar)
        return
    console.print(f"{calendar['name']} (revision {calendar['revision']})", highlight=False)
    for layer in calendar["layers"]:
        for year, schedule in sorted(layer["years"].items()):
            holidays = ", ".join(f"{h['name']} {h['first']}..{h['last']}" for h in schedule["holidays"]) or "-"
            console.print(f"  {layer['name']} {year} [{schedule['status']}]: {holidays}", highlight=False)


@app.command("publish")
def publish(
    layer: Annotated[str, typer.Argument(help="The layer, e.g. national or xinjiang.")],
    year: Annotated[int, typer.Argument(help="The year the notice is for.")],
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            allow_dash=True,
            help="JSON year schedule: source, status, holidays (name, first, last), make_up_working_days.",
        ),
    ],
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Publish one layer's year; running cases count their open deadlines again (发布节假日安排)."""
    try:
        body = json.loads(sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        fail(ApiError(EXIT_USAGE, f"cannot read the year schedule from {file}: {error}"))
    result = call(api_url, token, "PUT", f"/v1/admin/calendar/layers/{layer}/years/{year}", body=body).json()
    if as_json:
        print_json(result)
        return
    cases = result["cases"]
    console.print(
        f"published {layer} {year}: calendar revision {result['revision']}; cases recounted "
        f"{len(cases['adopted'])}, already newer {len(cases['already_newer'])}, ended {len(cases['ended'])}, "
        f"not reached {len(cases['failed'])}",
        highlight=False,
    )
    for case_id, reason in cases["failed"].items():
        console.print(f"  not reached: {case_id}: {reason} (publish again to retry)", highlight=False)
