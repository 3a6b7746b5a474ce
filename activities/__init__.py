"""Every side effect of the engine: storage, notifications, calendars."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from activities.calendar import CalendarActivities
from activities.notifications import NotificationActivities
from activities.publication import PublicationActivities
from activities.storage import StorageActivities
from approvals.settings import Settings


def build_activities(pool: asyncpg.Pool, settings: Settings) -> list[Callable[..., Any]]:
    """The activities a worker registers, bound to its shared pool."""
    storage = StorageActivities(pool)
    notifications = NotificationActivities(pool)
    publication = PublicationActivities(pool, settings.publication_webhook_url)
    calendar = CalendarActivities(settings.calendar_path)
    return [storage.record_events, notifications.notify, publication.publish_disclosure, calendar.load_calendar]
