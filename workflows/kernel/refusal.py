"""How the kernel refuses an operation: an ApplicationError whose type is a machine-readable reason code."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def deny(code: str, message: str) -> ApplicationError:
    """A refusal: ``code`` is the machine-readable reason the API turns into a problem response."""
    return ApplicationError(message, {"reason": code}, type=code, non_retryable=True)
