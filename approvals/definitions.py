"""Registered process definitions: an admin registers a named definition, each distinct content a new version;
a ``generic`` case started by name runs the latest version in force, or a pinned one, and keeps it.

The production way to add a simple approval (FREEFORM_DEFINITIONS lets a service bring its own definition,
which could route the case to the service itself). A definition is checked at registration exactly as an
inline one is at start (``workflows.rules.definition_problems``): one that cannot run is refused with 422
naming the problem. Versions are never changed; retiring one stops new starts of it and leaves the cases
running on it alone.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import asyncpg
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from approvals.admission import ADMIN, READ_ALL_ROLES, START_ROLES
from approvals.errors import Conflict, Forbidden, NotFound, invalid
from approvals.storage import definitions as storage
from approvals.storage.definitions import DefinitionVersion
from schemas.events import canonical_json
from schemas.principal import Principal
from schemas.process import DEFINITION_NAME_PATTERN, DefinitionRef, ProcessDefinition
from schemas.text import CleanModel
from workflows.rules import definition_problems

__all__ = ["DefinitionRegistry", "DefinitionVersion", "Registered", "content_sha256"]

GENERIC = "generic"
DEFINITION_INVALID = "DEFINITION_INVALID"
"""422: the definition is not one the engine can run (its ``errors`` name the fields and the problems)."""


def _runnable(definition: ProcessDefinition) -> ProcessDefinition:
    problems = definition_problems(definition)
    if problems:
        raise ValueError("the process definition cannot run: " + "; ".join(problems))
    return definition


class RegisterDefinitionRequest(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=DEFINITION_NAME_PATTERN, description="The definition's name, e.g. `billboard-permit`.")
    definition: Annotated[ProcessDefinition, AfterValidator(_runnable)]


class RetireDefinitionRequest(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=1, max_length=4000, description="Why no new case may start on this version.")


class Registered(BaseModel):
    created: bool = Field(description="False: this name already had this content, as the version given.")
    version: DefinitionVersion


def content_sha256(definition: ProcessDefinition) -> str:
    """The version's identity: SHA-256 of the canonical JSON of the definition as a generic case runs it."""
    return hashlib.sha256(canonical_json(_as_generic(definition).model_dump(mode="json"))).hexdigest()


def _as_generic(definition: ProcessDefinition) -> ProcessDefinition:
    return definition.model_copy(update={"process": GENERIC})


def _require(principal: Principal, roles: tuple[str, ...], what: str) -> None:
    if not principal.has_any_role(roles):
        raise Forbidden(
            f"{principal.id} (roles {list(principal.roles)}) may not {what}: role {' or '.join(roles)} required",
            code="ROLE_REQUIRED",
        )


class DefinitionRegistry:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def register(self, principal: Principal, body: Any) -> Registered:
        """A new version (created) or the version that already has this content; admins only (checked before the
        body: a non-admin learns nothing from its validation)."""
        _require(principal, (ADMIN,), "register process definitions")
        try:
            request = RegisterDefinitionRequest.model_validate(body)
        except ValidationError as error:
            refusal = invalid(error, "definition registration")
            if all(str(field["field"]).startswith("definition") for field in refusal.errors):
                # The definition's own rules (stage ids, routing, whether it can run) are more than a JSON schema
                # states: a code of their own tells them from a request that does not fit the schema.
                refusal.code = DEFINITION_INVALID
            raise refusal from None
        definition = _as_generic(request.definition)
        version, created = await storage.register(
            self.pool, request.name, content_sha256(definition), definition.model_dump_json(), principal.id
        )
        return Registered(created=created, version=version)

    async def versions(self, principal: Principal, name: str) -> list[DefinitionVersion]:
        """Every version of ``name``, oldest first; 404 for a name never registered."""
        _require(principal, START_ROLES + READ_ALL_ROLES, "read process definitions")
        found = await storage.versions(self.pool, name)
        if not found:
            raise NotFound(f"no process definition named {name!r} is registered", code="UNKNOWN_DEFINITION")
        return found

    async def all_versions(self) -> list[DefinitionVersion]:
        return await storage.all_versions(self.pool)

    async def retire(self, principal: Principal, name: str, version: int, reason: str) -> DefinitionVersion:
        """Stops new starts of the version (running cases keep it); retiring it again changes nothing."""
        _require(principal, (ADMIN,), "retire process definitions")
        self._version_of(await storage.versions(self.pool, name), name, version)
        await storage.retire(self.pool, name, version, principal.id, reason)
        return self._version_of(await storage.versions(self.pool, name), name, version)

    async def resolve(self, name: str, version: int | None) -> tuple[ProcessDefinition, DefinitionRef]:
        """The definition a new case of ``name`` runs: ``version``, or the latest not retired.

        404 for an unknown name or version, 409 ``DEFINITION_RETIRED`` for a retired one (or when every version
        is retired)."""
        found = await storage.versions(self.pool, name)
        if not found:
            raise NotFound(f"no process definition named {name!r} is registered", code="UNKNOWN_DEFINITION")
        if version is None:
            in_force = [candidate for candidate in found if candidate.retired_at is None]
            if not in_force:
                raise Conflict(
                    f"every version of process definition {name!r} is retired; register a new one",
                    code="DEFINITION_RETIRED",
                )
            chosen = in_force[-1]
        else:
            chosen = self._version_of(found, name, version)
            if chosen.retired_at is not None:
                raise Conflict(
                    f"version {version} of process definition {name!r} was retired by {chosen.retired_by} "
                    f"({chosen.retire_reason}); cases running on it continue, new ones may not start on it",
                    code="DEFINITION_RETIRED",
                )
        ref = DefinitionRef(name=name, version=chosen.version, sha256=chosen.sha256)
        return ProcessDefinition.model_validate(chosen.definition), ref

    @staticmethod
    def _version_of(found: list[DefinitionVersion], name: str, version: int) -> DefinitionVersion:
        for candidate in found:
            if candidate.version == version:
                return candidate
        if not found:
            raise NotFound(f"no process definition named {name!r} is registered", code="UNKNOWN_DEFINITION")
        raise NotFound(
            f"process definition {name!r} has no version {version} (versions 1 to {found[-1].version})",
            code="UNKNOWN_DEFINITION_VERSION",
        )
