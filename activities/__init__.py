"""Every side effect of the engine: storage, notifications, calendars.

Activities take plain values, not the settings: the worker reads its settings and hands each activity
what it needs, so this package sits below everything that knows about configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from activities.calendar import CalendarActivities
from activities.notifications import NotificationActivities
from activities.publication import PublicationActivities
from activities.storage import StorageActivities


def build_activities(
    pool: asyncpg.Pool, *, publication_webhook_url: str | None, calendar_path: Path | None
) -> list[Callable[..., Any]]:
    """The activities a worker registers, bound to its shared pool.

    Args:
        publication_webhook_url: Where Art. 18 disclosures are POSTed (PUBLICATION_WEBHOOK_URL); None: logged.
        calendar_path: A working-day calendar replacing the built-in one (CALENDAR_PATH); None: built-in.
    """
    storage = StorageActivities(pool)
    notifications = NotificationActivities(pool)
    publication = PublicationActivities(pool, publication_webhook_url)
    calendar = CalendarActivities(pool, calendar_path)
    return [storage.record_events, notifications.notify, publication.publish_disclosure, calendar.load_calendar]
