"""How the kernel refuses an operation: an ApplicationError whose type is a machine-readable reason code."""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

from temporalio.exceptions import ApplicationError

ZONE_OFFSET = timedelta(hours=8)


def deny(code: str, message: str, *, field: str | None = None) -> ApplicationError:
    """A refusal: ``code`` is the machine-readable reason the API turns into a problem response; ``field`` names
    the request field it is about, when one is (the problem's ``errors`` then names it)."""
    details = {"reason": code, "field": field} if field else {"reason": code}
    return ApplicationError(message, details, type=code, non_retryable=True)


def local_time(at: datetime, zone: tzinfo) -> str:
    """A moment in a refusal, as people in the zone read it and labelled (``2026-12-15 10:00:00 北京时间 UTC+8``);
    a working-day deadline, which ends at local midnight, as the end of its day (``2026-12-15 24时``)."""
    moment = at.astimezone(zone)
    offset = moment.utcoffset()
    label = "北京时间 UTC+8" if offset == ZONE_OFFSET else f"UTC{moment:%z}"
    if moment.timetz().replace(tzinfo=None) == time(0):
        return f"{(moment - timedelta(days=1)).date()} 24时 ({label})"
    return f"{moment:%Y-%m-%d %H:%M:%S} ({label})"
