"""``approvals definitions``: register a process definition under a name (a new version, or the one it already
is), list a name's versions, retire a version (admins). Thin over the HTTP API (``/v1/definitions``); the rules
live in ``approvals.definitions``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from approvals.cli.client import DEFAULT_API_URL, EXIT_USAGE, ApiError, ApiUrl, AsJson, Token, call, fail, get
from approvals.cli.output import console, print_json

app = typer.Typer(help="Registered process definitions and their versions (登记的流程定义及其版本).")

Name = Annotated[str, typer.Argument(help="The definition's name, e.g. billboard-permit.")]


def _print_version(version: dict[str, Any]) -> None:
    retired = f" retired {version['retired_at']} by {version['retired_by']}: {version['retire_reason']}"
    console.print(
        f"{version['name']} v{version['version']} sha256 {version['sha256'][:16]}… registered "
        f"{version['registered_at']} by {version['registered_by']}{retired if version['retired_at'] else ''}",
        highlight=False,
    )


@app.command("register")
def register(
    name: Name,
    file: Annotated[
        Path, typer.Option("--file", "-f", allow_dash=True, help="JSON process definition (as POST /v1/cases/generic).")
    ],
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Register a definition: a new version, or the version this content already is (登记流程定义)."""
    try:
        definition = json.loads(sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        fail(ApiError(EXIT_USAGE, f"cannot read the process definition from {file}: {error}"))
    response = call(api_url, token, "POST", "/v1/definitions", body={"name": name, "definition": definition})
    result = response.json()
    if as_json:
        print_json(result)
        return
    console.print("registered a new version:" if result["created"] else "already registered:", highlight=False)
    _print_version(result["version"])


@app.command("list")
def list_versions(name: Name, api_url: ApiUrl = DEFAULT_API_URL, token: Token = None, as_json: AsJson = False) -> None:
    """List a definition's versions, oldest first (列出版本)."""
    versions = get(api_url, token, f"/v1/definitions/{name}")
    if as_json:
        print_json(versions)
        return
    for version in versions:
        _print_version(version)


@app.command("retire")
def retire(
    name: Name,
    version: Annotated[int, typer.Argument(help="The version no new case may start on.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded with the retirement).")],
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Retire a version: no new starts on it; cases running on it continue (停用版本)."""
    path = f"/v1/definitions/{name}/versions/{version}/retire"
    result = call(api_url, token, "POST", path, body={"reason": reason}).json()
    print_json(result) if as_json else _print_version(result)
