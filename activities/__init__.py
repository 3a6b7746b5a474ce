"""Every side effect of the engine: storage, notifications, calendars, official documents.

Activities take plain values, not the settings: the worker reads its settings and hands each activity
what it needs, so this package sits below everything that knows about configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from activities.calendar import CalendarActivities
from activities.documents import DocumentActivities
from activities.notifications import NotificationActivities
from activities.publication import PublicationActivities
from activities.signing import OrganSigner
from activities.storage import StorageActivities
from schemas.documents import Organ


def build_activities(
    pool: asyncpg.Pool,
    *,
    publication_webhook_url: str | None,
    calendar_path: Path | None,
    organ: Organ,
    signer: OrganSigner,
) -> list[Callable[..., Any]]:
    """The activities a worker registers, bound to its shared pool.

    Args:
        publication_webhook_url: Where Art. 18 disclosures are POSTed (PUBLICATION_WEBHOOK_URL); None: logged.
        calendar_path: A working-day calendar replacing the built-in one (CALENDAR_PATH); None: built-in.
        organ, signer: Who issues the official documents and signs them (DOCUMENT_*); their templates are
            checked here, so a template naming a missing field stops the worker before it polls.
    """
    storage = StorageActivities(pool)
    notifications = NotificationActivities(pool)
    publication = PublicationActivities(pool, publication_webhook_url)
    calendar = CalendarActivities(pool, calendar_path)
    documents = DocumentActivities(pool, organ, signer)
    return [
        storage.record_events,
        notifications.notify,
        publication.publish_disclosure,
        calendar.load_calendar,
        documents.issue_document,
    ]
