"""Bearer token -> :class:`~schemas.principal.Principal`.

Two sources, tried in this order:

* a **tokens file** (development; ``approvals dev`` writes ``<DATA_DIR>/dev-tokens.json``): a JSON list of
  ``{"token" or "token_sha256", "id", "name", "unit", "roles"}``. Only SHA-256 digests are kept in memory
  and compared, in constant time; the file is re-read when its stat (mtime, size, inode) changes.
* **signed JWTs** (production): HS256 with JWT_HS256_SECRET and/or RS256 with the PEM public key at
  JWT_RS256_PUBLIC_KEY_PATH; ``exp`` and ``sub`` are required, ``aud``/``iss`` checked when configured.
  Claims: ``sub`` (principal id), ``name``, ``unit``, ``roles`` (list of strings).

A missing or bad token is a 401 naming what is wrong; what a principal may do is decided in
:mod:`approvals.service` (403 with the reason).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from approvals.errors import Unauthenticated
from approvals.metrics import UNAUTHENTICATED
from approvals.service import ApprovalsService
from approvals.settings import Settings
from schemas.principal import Principal

__all__ = [
    "Authenticator",
    "CurrentPrincipal",
    "Service",
    "TokenFileError",
    "authenticator",
    "current_principal",
    "hash_token",
    "principal_of_token",
    "service_of",
]

JWT_LEEWAY_SECONDS = 30


class TokenFileError(ValueError):
    """The tokens file is malformed; the message names the file and the entry."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class TokensFile:
    path: Path
    _stat: tuple[int, int, int] | None = None
    """(mtime in ns, size, inode) of the file last parsed: one stat per request instead of a read and a
    parse. Size and inode too, because an editor's or ``approvals dev``'s atomic replace can keep the mtime."""
    _entries: list[tuple[bytes, Principal]] = field(default_factory=list)

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as error:
            raise TokenFileError(f"AUTH_TOKENS_FILE {self.path}: {error.strerror}") from None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if key == self._stat:
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise TokenFileError(f"AUTH_TOKENS_FILE {self.path}: not readable JSON ({error})") from None
        if not isinstance(raw, list):
            raise TokenFileError(f"AUTH_TOKENS_FILE {self.path}: expected a JSON list of token entries")
        entries = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict) or not ({"token", "token_sha256"} & item.keys()) or "id" not in item:
                raise TokenFileError(
                    f"AUTH_TOKENS_FILE {self.path}: entry {index} needs `id` and `token` or `token_sha256`"
                )
            digest = item.get("token_sha256") or hash_token(str(item["token"]))
            try:
                principal = Principal(
                    id=item["id"], name=item.get("name", ""), unit=item.get("unit", ""),
                    roles=tuple(item.get("roles", ())),
                )  # fmt: skip
                entries.append((bytes.fromhex(digest), principal))
            except ValueError as error:
                raise TokenFileError(f"AUTH_TOKENS_FILE {self.path}: entry {index}: {error}") from None
        self._entries, self._stat = entries, key

    def lookup(self, token: str) -> Principal | None:
        self._load()
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for candidate, principal in self._entries:  # every entry compared: no early exit to time
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found


class Authenticator:
    """Every configured token source; built once per app from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.tokens_file = TokensFile(settings.auth_tokens_file) if settings.auth_tokens_file else None
        self.keys: dict[str, Any] = {}
        if settings.jwt_hs256_secret:
            self.keys["HS256"] = settings.jwt_hs256_secret
        if settings.jwt_rs256_public_key_path:
            try:
                self.keys["RS256"] = settings.jwt_rs256_public_key_path.read_text()
            except OSError as error:
                raise TokenFileError(
                    f"JWT_RS256_PUBLIC_KEY_PATH {settings.jwt_rs256_public_key_path}: {error.strerror}"
                ) from None
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer

    @property
    def configured(self) -> bool:
        return self.tokens_file is not None or bool(self.keys)

    def authenticate(self, token: str) -> Principal:
        if not self.configured:
            raise Unauthenticated(
                "no token source is configured: set AUTH_TOKENS_FILE (development) or JWT_HS256_SECRET / "
                "JWT_RS256_PUBLIC_KEY_PATH (production)",
                code="AUTH_NOT_CONFIGURED",
            )
        if self.tokens_file is not None:
            principal = self.tokens_file.lookup(token)
            if principal is not None:
                return principal
        if token.count(".") == 2 and self.keys:
            return self._verify_jwt(token)
        raise Unauthenticated("the bearer token is not known", code="INVALID_TOKEN")

    def _verify_jwt(self, token: str) -> Principal:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"malformed JWT: {error}", code="INVALID_TOKEN") from None
        key = self.keys.get(str(algorithm))
        if key is None:
            raise Unauthenticated(
                f"JWT algorithm {algorithm!r} is not accepted (accepted: {', '.join(sorted(self.keys))})",
                code="INVALID_TOKEN",
            )
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self.audience,
                issuer=self.issuer,
                leeway=JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the JWT has expired", code="TOKEN_EXPIRED") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the JWT is not valid: {error}", code="INVALID_TOKEN") from None
        roles = claims.get("roles", [])
        if isinstance(roles, str):
            roles = roles.split()
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            # A dict or a list of objects would otherwise become roles by accident (a dict's keys, say).
            raise Unauthenticated(
                f"the JWT's roles claim must be a list of strings, not {type(roles).__name__}", code="INVALID_TOKEN"
            )
        try:
            return Principal(
                id=str(claims["sub"]), name=str(claims.get("name", "")), unit=str(claims.get("unit", "")),
                roles=tuple(str(role) for role in roles),
            )  # fmt: skip
        except ValueError as error:
            raise Unauthenticated(
                f"the JWT's claims do not describe a principal: {error}", code="INVALID_TOKEN"
            ) from None


_bearer = HTTPBearer(auto_error=False, description="A dev token from AUTH_TOKENS_FILE, or a signed JWT.")


def authenticator(request: Request) -> Authenticator:
    """The app's token sources (built on first use); the console signs its sessions in with it too."""
    state = request.app.state
    sources = getattr(state, "authenticator", None)
    if sources is None:
        sources = state.authenticator = Authenticator(state.settings)
    return sources  # type: ignore[no-any-return]


def principal_of_token(request: Request, token: str) -> Principal:
    """Who a bearer token stands for (a header's or the console session's); 401 when nobody."""
    try:
        return authenticator(request).authenticate(token)
    except TokenFileError as error:
        raise Unauthenticated(f"token source is misconfigured: {error}", code="AUTH_MISCONFIGURED") from None


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    try:
        if credentials is None:
            raise Unauthenticated("missing bearer token: send `Authorization: Bearer <token>`", code="MISSING_TOKEN")
        if credentials.scheme.lower() != "bearer":
            raise Unauthenticated(f"expected the Bearer scheme, got {credentials.scheme!r}", code="INVALID_TOKEN")
        return principal_of_token(request, credentials.credentials)
    except Unauthenticated as refused:
        UNAUTHENTICATED.labels(code=refused.code).inc()
        raise


async def _service(request: Request) -> ApprovalsService:
    # async: FastAPI runs a sync dependency in its thread pool, a hop per request for a dictionary lookup
    return service_of(request)


def service_of(request: Request) -> ApprovalsService:
    """The app's service layer, shared by the API routes and the console."""
    state = request.app.state
    service = getattr(state, "service", None)
    if service is None or service.pool is not state.pool or service.client is not state.temporal:
        service = state.service = ApprovalsService(state.temporal, state.pool, state.settings)
    return service  # type: ignore[no-any-return]


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Service = Annotated[ApprovalsService, Depends(_service)]
