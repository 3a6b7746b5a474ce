"""How the kernel refuses an operation: an ApplicationError whose type is a machine-readable reason code."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def deny(code: str, message: str, *, field: str | None = None) -> ApplicationError:
    """A refusal: ``code`` is the machine-readable reason the API turns into a problem response; ``field`` names
    the request field it is about, when one is (the problem's ``errors`` then names it)."""
    details = {"reason": code, "field": field} if field else {"reason": code}
    return ApplicationError(message, details, type=code, non_retryable=True)
