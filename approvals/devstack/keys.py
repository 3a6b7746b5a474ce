"""The keys `approvals dev` makes on first start and keeps in its data directory across restarts."""

from __future__ import annotations

from pathlib import Path

from activities.signing import generate_dev_certificate
from approvals.audit.checkpoint import DEV_SIGNING_KEY_FILE, generate_signing_key
from approvals.settings import Settings


def with_dev_keys(settings: Settings, data_dir: Path) -> Settings:
    """The settings with a generated key wherever none is configured: the audit key (signs exports and
    checkpoints) and the organ's self-signed certificate (signs official documents)."""
    update: dict[str, Path] = {}
    if settings.audit_signing_key_path is None:
        generate_signing_key(data_dir / DEV_SIGNING_KEY_FILE)
        update["audit_signing_key_path"] = data_dir / DEV_SIGNING_KEY_FILE
    if settings.document_signing_certificate_path is None:
        certificate, key = generate_dev_certificate(data_dir, settings.document_organ_name)
        update |= {"document_signing_certificate_path": certificate, "document_signing_key_path": key}
    return settings.model_copy(update=update)
