"""The HTTP API as the ``approvals`` commands use it: a client whose every failure carries the command's
exit status, and the options every command shares (``--api-url``, ``--token``, ``--json``).

Exit status: 0 done; 2 usage error (bad arguments, invalid request, unknown process/case); 3 denied
(401/403, or refused by the case's rules: the reason code is printed); 4 server error or API unreachable.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, NoReturn

import httpx
import typer

from approvals.cli.output import console, errors, print_json

EXIT_USAGE, EXIT_DENIED, EXIT_SERVER = 2, 3, 4
DEFAULT_API_URL = "http://127.0.0.1:8000"
TIMEOUT_SECONDS = 60.0

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="APPROVALS_API_URL", help="Base URL of the HTTP API.")]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="APPROVALS_TOKEN", help="Bearer token (dev: from .approvals/dev-tokens.json)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
IdemKey = Annotated[
    str | None,
    typer.Option("--idempotency-key", help="Request id: repeating the command with it applies the operation once."),
]
ExpectedVersion = Annotated[
    int | None, typer.Option("--expected-version", help="Refuse if the task changed since you read this version.")
]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Comment recorded with the operation.")]


class ApiError(Exception):
    def __init__(self, exit_code: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.body = body


def exit_code_for(status: int, code: str | None) -> int:
    if status >= 500:
        return EXIT_SERVER
    if status in (401, 403, 409) or (status == 422 and code not in (None, "VALIDATION_ERROR")):
        return EXIT_DENIED
    return EXIT_USAGE


class ApiClient:
    """Synchronous client of the HTTP API; every failure becomes an :class:`ApiError` with an exit code."""

    def __init__(self, api_url: str, token: str | None) -> None:
        if not token:
            raise ApiError(
                EXIT_USAGE,
                "no token: set APPROVALS_TOKEN or pass --token (`approvals dev` writes tokens to "
                ".approvals/dev-tokens.json)",
            )
        self.api_url = api_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_SECONDS
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            response = self.http.request(method, path, json=body, params=query, headers=headers)
        except httpx.TransportError as error:
            raise ApiError(
                EXIT_SERVER,
                f"cannot reach the API at {self.api_url} ({type(error).__name__}: {error}); is `approvals dev` "
                "or `approvals api` running? (APPROVALS_API_URL / --api-url)",
            ) from None
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:500]}
            code = problem.get("code") if isinstance(problem, dict) else None
            detail = problem.get("detail", "") if isinstance(problem, dict) else str(problem)
            fields = problem.get("errors") or [] if isinstance(problem, dict) else []
            lines = [f"{response.status_code} {code or ''}: {detail}".replace(" :", ":")]
            lines += [f"  {e.get('location', '')} {e.get('field')}: {e.get('message')}" for e in fields[1:]]
            raise ApiError(exit_code_for(response.status_code, code), "\n".join(lines), problem)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any, *, idempotency_key: str | None = None) -> Any:
        return self.request("POST", path, body=body, idempotency_key=idempotency_key).json()


def fail(error: ApiError) -> NoReturn:
    errors.print(f"[bold red]error[/]: {error.message}", highlight=False)
    raise typer.Exit(error.exit_code)


def _client(api_url: str, token: str | None) -> ApiClient:
    try:
        return ApiClient(api_url, token)
    except ApiError as error:
        fail(error)


def _print_result(result: dict[str, Any], operation: str) -> None:
    line = f"{operation}: done - case {result['case_id']} is {result['status']} (event #{result['last_seq']})"
    task = result.get("task")
    if task:
        holder = task.get("delegate_id") or task.get("claimed_by") or task.get("assignee_id") or "pool"
        line += f"; task {task['task_id']} {task['status']} ({holder}, version {task['version']})"
    console.print(line, highlight=False)


def call(api_url: str, token: str | None, method: str, path: str, **options: Any) -> httpx.Response:
    """One request with the caller's token (``options`` as ``ApiClient.request`` takes them); a failure ends
    the command with its exit status."""
    client = _client(api_url, token)
    try:
        return client.request(method, path, **options)
    except ApiError as error:
        fail(error)


def get(api_url: str, token: str | None, path: str, **params: Any) -> Any:
    return call(api_url, token, "GET", path, params=params).json()


def operate(api_url: str, token: str | None, as_json: bool, path: str, body: dict[str, Any], key: str | None) -> None:
    """POSTs one operation (the last segment of ``path``), applied once per idempotency key."""
    result = call(api_url, token, "POST", path, body=body, idempotency_key=key or uuid.uuid4().hex).json()
    print_json(result) if as_json else _print_result(result, path.rsplit("/", 1)[-1])
