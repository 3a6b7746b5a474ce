"""Art. 18 disclosure: decisions go to the configured publication webhook through the notification outbox."""

from __future__ import annotations

from temporalio import activity

from activities.notifications import NotificationActivities
from schemas.notifications import Channel, DeliveryResult, DisclosureNotice, Notification


class PublicationActivities:
    def __init__(self, notifications: NotificationActivities, publication_webhook_url: str | None) -> None:
        self._notifications = notifications
        self._url = publication_webhook_url

    @activity.defn(name="publish_disclosure")
    async def publish_disclosure(self, notice: DisclosureNotice) -> DeliveryResult:
        """POSTs the notice, signed, to PUBLICATION_WEBHOOK_URL; logs it when no URL is configured."""
        return await self._notifications.notify(
            Notification(
                idempotency_key=notice.idempotency_key,
                case_id=notice.case_id,
                channel=Channel.webhook if self._url else Channel.log,
                kind="case.published",
                recipient=self._url or "publication",
                subject=f"{notice.title}: {notice.decision}",
                data=notice.model_dump(mode="json"),
            )
        )
