"""Background passes beside the worker (the checkpoint sealer, the history archiver): one pass at once, then
one every interval, until the block ends; an outage of PostgreSQL or Temporal skips a pass, not the loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import asyncpg
import structlog
from temporalio.service import RPCError

log = structlog.get_logger(__name__)

OUTAGES = (OSError, RPCError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What a pass may meet when PostgreSQL or Temporal is away; the next pass tries again."""


@asynccontextmanager
async def periodically(
    one_pass: Callable[[], Awaitable[object]], interval_seconds: float, *, name: str, unavailable: str
) -> AsyncIterator[None]:
    """Runs ``one_pass`` every ``interval_seconds`` while the block runs (the first at once), as task ``name``;
    an outage is logged as event ``unavailable``. Leaving the block lets a running pass finish."""
    stop = asyncio.Event()

    async def run() -> None:
        while not stop.is_set():
            try:
                await one_pass()
            except OUTAGES as error:
                log.warning(unavailable, error=f"{type(error).__name__}: {error}")
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_seconds)

    task = asyncio.create_task(run(), name=name)
    try:
        yield
    finally:
        stop.set()
        await task
