"""``approvals handover``: move every open task of a person who left or is absent (admins, and unit heads for
their own unit's staff). Thin over ``POST /v1/handovers``; the rules live in ``approvals.handover``."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from approvals.cli.client import DEFAULT_API_URL, ApiUrl, AsJson, IdemKey, Token, call
from approvals.cli.output import console, print_json


def handover(
    from_user: Annotated[str, typer.Argument(help="Whose open tasks move.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Recorded with every move (交接原因).")],
    to_user: Annotated[
        str | None, typer.Option("--to", help="Who takes them; without it, each goes back to its stage's pool.")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
    idempotency_key: IdemKey = None,
) -> None:
    """Hand over every open task of FROM_USER to --to, or back to the pool (工作交接)."""
    body = {"from_user": from_user, "to_user": to_user, "reason": reason}
    key = idempotency_key or uuid.uuid4().hex
    report = call(api_url, token, "POST", "/v1/handovers", body=body, idempotency_key=key).json()
    if as_json:
        print_json(report)
        return
    console.print(f"handover {report['idempotency_key']} by {report['handed_over_by']}:", highlight=False)
    for move in report["moves"]:
        why = f" ({move['code']}: {move['message']})" if move["code"] else ""
        console.print(f"  {move['task_id']}: {move['outcome']}{why}", highlight=False)
    if not report["moves"]:
        console.print(f"  {from_user} holds no open task", highlight=False)
