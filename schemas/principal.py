"""Who acts: the authenticated principal the API passes into every workflow update."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from schemas.text import CleanModel


class Principal(CleanModel):
    """A person or service, as authenticated by the API; never taken from a request body."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=128)
    name: str = Field("", max_length=200)
    unit: str = Field("", max_length=200, description="Department or organisation the principal belongs to.")
    roles: tuple[str, ...] = ()

    def has_any_role(self, roles: tuple[str, ...] | list[str]) -> bool:
        return any(role in self.roles for role in roles)


SYSTEM = Principal(id="system", name="Approvals engine", unit="engine", roles=("system",))
"""The actor of events no person caused: timers, reminders, escalations."""
