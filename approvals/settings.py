"""Every setting of the engine, in one place.

Each field reads the environment variable of the same name in upper case (``temporal_address`` ->
``TEMPORAL_ADDRESS``); the README's settings table is generated from the same descriptions. A bad
value fails at start-up with a message that names the variable, never later in the middle of a case.
"""

from __future__ import annotations

import fnmatch
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import httpx
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from activities.destinations import DestinationPolicy, host_listed, parse_networks
from schemas.committee import CommitteeRoster
from schemas.documents import Organ


class LogFormat(StrEnum):
    json = "json"
    console = "console"


DEV_WEBHOOK_SIGNING_SECRET = "dev-only-webhook-secret"
"""The built-in webhook key: `approvals dev` only; `approvals worker` and `approvals api` refuse it."""


JWT_HS256_MIN_BYTES = 32


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", frozen=True)

    temporal_address: str = Field("localhost:7233", description="Temporal frontend gRPC address, host:port.")
    temporal_namespace: str = Field("default", description="Temporal namespace the engine uses.")
    temporal_task_queue: str = Field("approvals", description="Task queue of the engine's worker.")
    temporal_tls: bool = Field(False, description="Connect to Temporal over TLS.")
    temporal_tls_ca_path: Path | None = Field(
        None, description="PEM file of the CA that signed the Temporal server certificate (TLS)."
    )
    temporal_tls_cert_path: Path | None = Field(
        None, description="PEM client certificate for mutual TLS (with TEMPORAL_TLS_KEY_PATH)."
    )
    temporal_tls_key_path: Path | None = Field(
        None, description="PEM private key of the client certificate (mutual TLS)."
    )
    temporal_api_key: str | None = Field(None, description="API key sent to Temporal (Temporal Cloud); implies TLS.")
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL, postgresql://user:password@host:port/db, of the app role the worker and "
        "the API connect as (no UPDATE, DELETE or TRUNCATE on audit_events, owns no table). Required by worker, "
        "api and migrate; `approvals dev` starts an embedded server when it is unset.",
    )
    migration_database_url: str | None = Field(
        None,
        description="PostgreSQL URL of the role that owns the schema, used only to migrate (`approvals migrate`; "
        "`approvals dev` with DATABASE_URL set); the migrations grant DATABASE_URL's user, the app role, what the "
        "engine needs. Give it to the migrate step only. Unset: migrations connect with DATABASE_URL (one role "
        "for everything, no least privilege).",
    )
    database_pool_max: int = Field(10, ge=1, le=200, description="Largest asyncpg pool per process.")
    worker_max_cached_workflows: int = Field(
        500,
        ge=0,
        le=100_000,
        description="Cases a worker keeps in memory between their steps; a case not in the cache is replayed "
        "from its history at its next step.",
    )
    worker_deployment_name: str = Field(
        "approvals",
        min_length=1,
        pattern=r"^[^.]+$",
        description="Worker Deployment the worker belongs to (Temporal Worker Versioning; no `.` in it). "
        "docs/releases.md: two builds side by side, ramp, retire.",
    )
    worker_build_id: str | None = Field(
        None,
        description="Build id the worker registers under in WORKER_DEPLOYMENT_NAME. Unset: the package version and "
        "the git commit (`0.1.0+3f2c1ab`), or outside a git checkout the SDK's hash of the loaded code.",
    )
    worker_versioning: bool = Field(
        False,
        description="Route workflow tasks by build (Worker Versioning): project-approval cases stay on the build "
        "they started on, the rest move to the current build and rely on `workflow.patched`. A versioned worker "
        "gets no new cases until its build is made current (`temporal worker deployment set-current-version`); "
        "off: the worker reports its build but takes any task (the dev stack, the tests).",
    )
    worker_metrics_address: str | None = Field(
        None,
        description="host:port where a worker serves Prometheus metrics at /metrics: the Temporal SDK's "
        "`temporal_*` and the worker's `approvals_*` (recording latency and errors); `0.0.0.0:9464` in a "
        "container. Unset: none. The API serves its own at `GET /metrics` on API_PORT.",
    )
    api_request_metrics: bool = Field(
        True,
        description="Count and time every API request by route template and status for `GET /metrics`; off "
        "only to measure what that costs (bench/metrics_overhead.py).",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector base URL (e.g. http://otel-collector:4318) receiving OpenTelemetry "
        "traces of the API, the Temporal client, workflows, activities and SQL; unset: no tracing at all.",
    )
    api_host: str = Field("127.0.0.1", description="Address the HTTP API binds to.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP API.")
    temporal_port: int = Field(
        7233, ge=1, le=65535, description="`approvals dev` only: gRPC port of the embedded Temporal server."
    )
    temporal_ui_port: int = Field(
        8233, ge=1, le=65535, description="`approvals dev` only: port of the Temporal Web UI."
    )
    temporal_ui_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        description="Temporal Web UI the console links each case to (operators); unset: "
        "http://127.0.0.1:TEMPORAL_UI_PORT, the one `approvals dev` runs.",
    )
    postgres_port: int = Field(
        55432, ge=1, le=65535, description="`approvals dev` only: port of the embedded PostgreSQL."
    )
    data_dir: Path = Field(
        Path(".approvals"),
        description="`approvals dev` only: directory holding Temporal's SQLite file, PostgreSQL's data, "
        "logs and the dev tokens file.",
    )
    log_format: LogFormat = Field(
        LogFormat.json, description="`json` (production) or `console` (readable; `approvals dev` default)."
    )
    log_level: str = Field("INFO", description="Lowest level logged: DEBUG, INFO, WARNING, ERROR.")
    calendar_path: Path | None = Field(
        None,
        description="JSON working-day calendar replacing the built-in one (official schedules of the "
        "known years; extend it when the State Council publishes the next year).",
    )
    webhook_signing_secret: str = Field(
        DEV_WEBHOOK_SIGNING_SECRET,
        description="HMAC-SHA256 key that signs every webhook (X-Approvals-Signature over the timestamp and the "
        "body). Required by worker and api, which refuse the built-in default; `approvals dev` uses it.",
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60, description="Timeout of one webhook POST.")
    callback_allowed_hosts: str = Field(
        "",
        description="Comma-separated host names a case's callback_url may point at (exact, or `.example.com` for "
        "a domain and its subdomains); empty: any host (development). Set it in production: callbacks are "
        "POSTed from inside the network.",
    )
    webhook_allowed_networks: str = Field(
        "",
        description="Comma-separated networks in CIDR form (`10.20.0.0/16, ::1/128`) that webhooks (callbacks "
        "and PUBLICATION_WEBHOOK_URL) may reach although internal; every other loopback, private, link-local, "
        "multicast, unspecified or reserved address is refused, checked on the address connected to. Empty: "
        "public addresses only (production). `approvals dev` allows loopback (`127.0.0.0/8,::1/128`).",
    )
    attachment_fetch_hosts: str = Field(
        "",
        description="Comma-separated host names (exact, or `.example.com` for a domain and its subdomains) whose "
        "http(s) attachment URIs `approvals audit verify` fetches to check their SHA-256 again, at addresses "
        "WEBHOOK_ALLOWED_NETWORKS allows; `file://` URIs are read when present. Empty: no http(s) fetch.",
    )
    publication_webhook_url: str | None = Field(
        None,
        description="Where disclosure notices (Art. 18) are POSTed, reaching only what WEBHOOK_ALLOWED_NETWORKS "
        "allows like any webhook (an internal IP literal fails at start-up); unset: logged only.",
    )
    auth_tokens_file: Path | None = Field(
        None,
        description="JSON list of bearer tokens -> principals ({token or token_sha256, id, name, unit, roles}); "
        "compared by SHA-256. `approvals dev` uses `<DATA_DIR>/dev-tokens.json`. For development.",
    )
    jwt_hs256_secret: str | None = Field(
        None,
        description=f"Shared secret verifying HS256-signed JWT bearer tokens (production); at least "
        f"{JWT_HS256_MIN_BYTES} bytes (RFC 7518: a key as long as the hash).",
    )
    jwt_rs256_public_key_path: Path | None = Field(
        None, description="PEM public key verifying RS256-signed JWT bearer tokens (production)."
    )
    jwt_audience: str | None = Field(None, description="Required `aud` claim of JWT bearer tokens, when set.")
    jwt_issuer: str | None = Field(None, description="Required `iss` claim of JWT bearer tokens, when set.")
    freeform_definitions: bool = Field(
        False,
        description="Let services start `generic` cases with a process definition of their own; off: only the "
        "admin role may (a caller-written definition could route the case to the caller). A definition an admin "
        "registered (`POST /v1/definitions`) is started by name (`definition_name`) either way: the production "
        "way. `approvals dev` turns it on.",
    )
    applicants_by_starter: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON: starter principal id (or "*" for any) -> the applicant ids it may start cases for, as '
        'patterns (`ent-*`, `91650000*`); e.g. {"svc-portal": ["ent-*"]}. A starter with no entry names no '
        "applicant. `approvals dev` allows its demo applicants.",
    )
    committee_rosters: dict[str, CommitteeRoster] = Field(
        default_factory=dict,
        description='JSON: committee -> the organ\'s roster, {"revision", "chair", "members"}; the committees are '
        "`error-tolerance` (容错认定委员会, Art. 25) and `talent-policy` (一事一议, Art. 22). A case seats its "
        "committee from it at start (members concerned by the case recuse) and records the roster's revision "
        "and digest; a process whose roster is missing cannot start. `approvals dev` seats its demo members.",
    )
    max_payload_bytes: int = Field(
        2_000_000,
        ge=1_000,
        le=2_000_000,
        description="Largest request body the API accepts (413 above it); Temporal refuses payloads over 2 MB.",
    )
    operation_max_bytes: int = Field(
        65_536,
        ge=1_000,
        le=2_000_000,
        description="Largest body of a task or case operation (claim, decide, comment, supplement, …; 413 above "
        "it); starting a case is bounded by MAX_PAYLOAD_BYTES.",
    )

    audit_signing_key_path: Path | None = Field(
        None,
        description="PEM Ed25519 private key (PKCS #8) that signs every export's manifest and every checkpoint. "
        "Needed by `approvals audit export` and `checkpoint`; a worker without it seals no checkpoints. "
        "`approvals dev` generates `<DATA_DIR>/audit-signing-key.pem` on first start.",
    )
    audit_public_key_path: Path | None = Field(
        None,
        description="PEM Ed25519 public key that `approvals audit verify` trusts for bundle signatures and "
        "checkpoints (or `--public-key`); `approvals dev` writes `<DATA_DIR>/audit-signing-key.pub.pem`.",
    )
    document_organ_name: str = Field(
        "阿拉山口综合保税区管理委员会",
        min_length=1,
        max_length=64,
        description="The issuing organ (发文机关) its official documents name in their red header and signature.",
    )
    document_number_prefix: str = Field(
        "阿综保管",
        min_length=1,
        max_length=16,
        description="The organ's code (机关代字) its document numbers begin with: `阿综保管许〔2026〕15号` is this "
        "prefix, the kind's series, the year and the sequence (gapless per organ, series and year).",
    )
    document_signing_certificate_path: Path | None = Field(
        None,
        description="The organ's certificate that signs its official documents (PAdES): a PKCS#12 file "
        "(`.p12`/`.pfx`), or a PEM certificate with DOCUMENT_SIGNING_KEY_PATH. Required by the worker; "
        "`approvals dev` generates a self-signed one in `<DATA_DIR>` on first start.",
    )
    document_signing_key_path: Path | None = Field(
        None, description="PEM private key of a PEM DOCUMENT_SIGNING_CERTIFICATE_PATH (unset with PKCS#12)."
    )
    document_signing_passphrase: str | None = Field(
        None, description="Passphrase of the PKCS#12 file or of the PEM key, when they are encrypted."
    )
    audit_checkpoint_interval_seconds: float = Field(
        300,
        ge=1,
        le=86_400,
        description="How often each worker seals a checkpoint over every case's latest audit event (nothing is "
        "written when no case changed).",
    )
    history_archive_interval_seconds: float = Field(
        300,
        ge=1,
        le=86_400,
        description="How often each worker copies the Temporal histories of its task queue's runs that closed "
        "since its last pass into PostgreSQL (`archived_histories`), where verification, export and replay read "
        "them once Temporal's retention has deleted them; keep it well under the namespace's retention. "
        "`approvals audit archive` runs one pass.",
    )

    @field_validator("temporal_address", "worker_metrics_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"expected postgresql://user:password@host:port/database, got {value!r}")
        return value

    @field_validator("jwt_hs256_secret")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) < JWT_HS256_MIN_BYTES:
            raise ValueError(
                f"is {len(value.encode())} bytes; an HS256 key needs at least {JWT_HS256_MIN_BYTES} (a guessable "
                "short secret lets anyone sign tokens)"
            )
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("publication_webhook_url")
    @classmethod
    def _publication_destination(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An internal address known without a lookup fails at start-up, not at the first decision."""
        if value and "webhook_allowed_networks" in info.data:
            policy = DestinationPolicy(parse_networks(info.data["webhook_allowed_networks"]))
            refusal = policy.static_refusal(httpx.URL(value).host)
            if refusal is not None:
                raise ValueError(refusal)
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got {value!r}")
        return level

    def require_webhook_signing_secret(self) -> str:
        """The webhook key of a production process (``approvals worker``, ``approvals api``): never the
        built-in development default, never empty."""
        secret = self.webhook_signing_secret
        if not secret or secret == DEV_WEBHOOK_SIGNING_SECRET:
            raise SettingsError(
                "WEBHOOK_SIGNING_SECRET is not set (the built-in default is for `approvals dev` only): give the "
                "HMAC key that signs webhooks and share it with their receivers, e.g. `openssl rand -hex 32`"
            )
        return secret

    def document_organ(self) -> Organ:
        return Organ(name=self.document_organ_name, prefix=self.document_number_prefix)

    def callback_host_allowed(self, host: str) -> bool:
        return not self.callback_allowed_hosts.strip() or host_listed(host, self.callback_allowed_hosts)

    def may_start_for(self, starter_id: str, applicant_id: str) -> bool:
        """Whether a starter may name this applicant (APPLICANTS_BY_STARTER)."""
        patterns = self.applicants_by_starter.get(starter_id, []) + self.applicants_by_starter.get("*", [])
        return any(fnmatch.fnmatchcase(applicant_id, pattern) for pattern in patterns)

    def webhook_destinations(self) -> DestinationPolicy:
        """Where webhooks may go: public addresses and WEBHOOK_ALLOWED_NETWORKS."""
        return DestinationPolicy(parse_networks(self.webhook_allowed_networks))

    def callback_refusal(self, host: str) -> str | None:
        """Why a callback_url with this host is refused at start (None: accepted, its addresses are checked at
        delivery): not in CALLBACK_ALLOWED_HOSTS, or an internal address known without a lookup."""
        if not self.callback_host_allowed(host):
            return f"host {host!r} is not in CALLBACK_ALLOWED_HOSTS"
        return self.webhook_destinations().static_refusal(host)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError(
                "DATABASE_URL is not set: give the PostgreSQL URL, postgresql://user:password@host:port/db"
            )
        return self.database_url


def load_settings(**overrides: object) -> Settings:
    """Reads the environment; turns pydantic's error into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        lines = [f"{'.'.join(str(part) for part in item['loc']).upper()}: {item['msg']}" for item in error.errors()]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
