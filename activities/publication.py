"""Art. 18 disclosure: decisions go to the configured publication webhook through the notification outbox.

An activity of its own (not a notification of the record), so the disclosure is in the history as its own
step, queued once the decision is recorded. The dispatcher posts it like a callback, to an address its
destination policy allows: the URL is the operator's, but one path with one check is simpler to trust than an
exemption, and an internal publication service is allowed by naming its network (WEBHOOK_ALLOWED_NETWORKS)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from approvals.storage.outbox import enqueue
from schemas.notifications import Channel, DeliveryResult, DisclosureNotice, Notification


class PublicationActivities:
    def __init__(self, pool: asyncpg.Pool, publication_webhook_url: str | None) -> None:
        self._pool = pool
        self._url = publication_webhook_url

    @activity.defn(name="publish_disclosure")
    async def publish_disclosure(self, notice: DisclosureNotice) -> DeliveryResult:
        """Queues the notice for PUBLICATION_WEBHOOK_URL (posted signed), or for the log when no URL is configured."""
        notification = Notification(
            idempotency_key=notice.idempotency_key,
            case_id=notice.case_id,
            channel=Channel.webhook if self._url else Channel.log,
            kind="case.published",
            recipient=self._url or "publication",
            subject=f"{notice.title}: {notice.decision}",
            data=notice.model_dump(mode="json"),
        )
        await enqueue(self._pool, [notification])
        return DeliveryResult(idempotency_key=notice.idempotency_key, status="queued")
