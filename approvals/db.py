"""PostgreSQL connections: one asyncpg pool per process, failing fast with a message naming DATABASE_URL.

Two roles, two URLs: DATABASE_URL is the app role the worker and the API connect as (no UPDATE, DELETE or
TRUNCATE on audit_events, owns nothing); MIGRATION_DATABASE_URL is the role that owns the schema, used only
to migrate (docs/deploy.md says why).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from approvals.settings import Settings, SettingsError

__all__ = ["DatabaseUnreachableError", "app_role", "connect", "create_pool", "redact"]

CONNECT_TIMEOUT_SECONDS = 5.0

_CONNECT_ERRORS = (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What asyncpg raises for a bad URL, an unreachable or refusing server (timeouts are OSErrors)."""


class DatabaseUnreachableError(ConnectionError):
    """PostgreSQL did not accept a connection; the message names the setting and says why (password redacted)."""


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, fit for logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<malformed URL>"


def app_role(settings: Settings) -> str | None:
    """The role the migrations grant the engine's privileges to: DATABASE_URL's user when the migrations
    connect as another role (MIGRATION_DATABASE_URL); ``None`` when one role does both.

    Raises:
        SettingsError: DATABASE_URL is unset, or names no user while MIGRATION_DATABASE_URL is set.
    """
    url = settings.require_database_url()
    if not settings.migration_database_url:
        return None
    user = urlsplit(url).username
    if not user:
        raise SettingsError(
            f"DATABASE_URL names no user ({redact(url)}): with MIGRATION_DATABASE_URL set, DATABASE_URL's user is "
            "the app role the migrations grant to; write postgresql://<app role>:password@host:port/db"
        )
    return unquote(user)


def _url_of(settings_or_url: Settings | str, *, owner: bool) -> tuple[str, str]:
    """The URL to connect to and the setting that gave it (named in error messages)."""
    if isinstance(settings_or_url, Settings):
        if owner and settings_or_url.migration_database_url:
            return settings_or_url.migration_database_url, "MIGRATION_DATABASE_URL"
        return settings_or_url.require_database_url(), "DATABASE_URL"
    if not settings_or_url.startswith(("postgresql://", "postgres://")):
        raise SettingsError(
            f"DATABASE_URL: expected postgresql://user:password@host:port/database, got {redact(settings_or_url)!r}"
        )
    return settings_or_url, "DATABASE_URL"


def _explain(url: str, setting: str, error: BaseException) -> Exception:
    if isinstance(error, TimeoutError):
        return DatabaseUnreachableError(
            f"PostgreSQL did not answer at {setting}={redact(url)} within {CONNECT_TIMEOUT_SECONDS:g}s; check {setting}"
        )
    if isinstance(error, (ValueError, asyncpg.ClientConfigurationError)) and not isinstance(
        error, asyncpg.PostgresError
    ):
        return SettingsError(f"{setting} is malformed ({redact(url)}): {error}")
    detail = " ".join(str(error).split()) or type(error).__name__
    return DatabaseUnreachableError(f"cannot connect to PostgreSQL at {setting}={redact(url)}: {detail}")


async def connect(
    settings_or_url: Settings | str, *, owner: bool = False, timeout_seconds: float = CONNECT_TIMEOUT_SECONDS
) -> asyncpg.Connection:
    """One connection (migrations, one-off admin work); the caller closes it.

    Args:
        owner: Connect as the schema's owner, MIGRATION_DATABASE_URL, when it is set (migrations).

    Raises:
        SettingsError: DATABASE_URL is unset or malformed.
        DatabaseUnreachableError: the server refused or did not answer within ``timeout_seconds``.
    """
    url, setting = _url_of(settings_or_url, owner=owner)
    try:
        return await asyncio.wait_for(asyncpg.connect(url, timeout=timeout_seconds), timeout_seconds + 1)
    except _CONNECT_ERRORS as error:
        raise _explain(url, setting, error) from None


async def create_pool(
    settings_or_url: Settings | str,
    *,
    min_size: int = 1,
    max_size: int | None = None,
    init: Callable[[asyncpg.Connection], Awaitable[Any]] | None = None,
    timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
) -> asyncpg.Pool:
    """The process's pool; ``max_size`` defaults to DATABASE_POOL_MAX. The caller closes it.

    ``init`` runs on every new connection (register type codecs there).

    Raises:
        SettingsError: DATABASE_URL is unset or malformed.
        DatabaseUnreachableError: the server refused or did not answer within ``timeout_seconds``.
    """
    url, setting = _url_of(settings_or_url, owner=False)
    if max_size is None:
        max_size = settings_or_url.database_pool_max if isinstance(settings_or_url, Settings) else 10
    try:
        return await asyncio.wait_for(
            asyncpg.create_pool(
                url,
                min_size=min(min_size, max_size),
                max_size=max_size,
                init=init,
                timeout=timeout_seconds,
            ),
            timeout_seconds + 1,
        )
    except _CONNECT_ERRORS as error:
        raise _explain(url, setting, error) from None
