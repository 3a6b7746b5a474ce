"""The one way the engine connects to Temporal: pydantic payloads, TLS and API key from the settings.

Connecting fails within a few seconds, with a message naming the setting to fix, rather than leaving a
worker or API retrying silently against a wrong address.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import cache
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from approvals.settings import Settings, SettingsError
from approvals.tracing import temporal_interceptors
from schemas.converter import data_converter

__all__ = ["TemporalUnreachableError", "connect", "runtime", "tls_config"]

CONNECT_TIMEOUT_SECONDS = 5.0


class TemporalUnreachableError(ConnectionError):
    """Temporal did not answer at TEMPORAL_ADDRESS (or refused the namespace); the message says which."""


RECORDING_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Buckets of ``approvals_recording_seconds``: one transaction, milliseconds when healthy."""


@cache
def runtime(metrics_address: str | None = None) -> Runtime:
    """The SDK core (Rust) logs through Python's ``logging`` - so through structlog - not to stdout.

    With ``metrics_address`` (WORKER_METRICS_ADDRESS) it also serves Prometheus metrics there: the SDK's
    ``temporal_*`` and whatever activities record through ``activity.metric_meter()`` (``approvals_*``).
    One runtime per address and process: a worker and the client it is built from share it.
    """
    metrics = None
    if metrics_address:
        metrics = PrometheusConfig(
            bind_address=metrics_address,
            counters_total_suffix=True,
            durations_as_seconds=True,
            histogram_bucket_overrides={"approvals_recording_seconds": RECORDING_SECONDS_BUCKETS},
        )
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=metrics,
        )
    )


def _runtime_serving(metrics_address: str | None) -> Runtime:
    try:
        return runtime(metrics_address)
    except ValueError as error:  # the core cannot bind the address (in use, not this host's)
        raise SettingsError(
            f"WORKER_METRICS_ADDRESS={metrics_address}: cannot serve metrics there ({_one_line(error)}); "
            "choose a free host:port"
        ) from None


def _read_pem(path: Path | None, env_name: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise SettingsError(f"{env_name}: cannot read {path}: {error.strerror or error}") from None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS settings for the client: ``False`` (plain), ``True`` (system roots) or a :class:`TLSConfig`.

    TLS is on when ``TEMPORAL_TLS`` is true, when any certificate path is given, or with an API key
    (Temporal Cloud only accepts API keys over TLS).
    """
    cert = _read_pem(settings.temporal_tls_cert_path, "TEMPORAL_TLS_CERT_PATH")
    key = _read_pem(settings.temporal_tls_key_path, "TEMPORAL_TLS_KEY_PATH")
    if (cert is None) != (key is None):
        raise SettingsError(
            "TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH go together: mutual TLS needs both the client "
            "certificate and its key"
        )
    ca = _read_pem(settings.temporal_tls_ca_path, "TEMPORAL_TLS_CA_PATH")
    if ca is None and cert is None:
        return bool(settings.temporal_tls or settings.temporal_api_key)
    return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key)


async def connect(
    settings: Settings, *, timeout_seconds: float = CONNECT_TIMEOUT_SECONDS, metrics_address: str | None = None
) -> Client:
    """Connects to ``TEMPORAL_ADDRESS`` and checks ``TEMPORAL_NAMESPACE`` exists; traced when tracing is on.

    Args:
        metrics_address: Serve the SDK's Prometheus metrics there (a worker's WORKER_METRICS_ADDRESS).

    Raises:
        SettingsError: a TLS file cannot be read, or the namespace does not exist.
        TemporalUnreachableError: no Temporal frontend answered within ``timeout_seconds``.
    """
    tls = tls_config(settings)
    where = f"TEMPORAL_ADDRESS={settings.temporal_address}"
    try:
        client = await asyncio.wait_for(
            Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                api_key=settings.temporal_api_key,
                tls=tls,
                data_converter=data_converter,
                connect_timeout=timedelta(seconds=timeout_seconds),
                runtime=_runtime_serving(metrics_address),
                interceptors=temporal_interceptors(),
            ),
            timeout_seconds + 1,
        )
    except TimeoutError:
        raise TemporalUnreachableError(
            f"Temporal did not answer at {where} within {timeout_seconds:g}s; check TEMPORAL_ADDRESS "
            f"(and TEMPORAL_TLS / TEMPORAL_API_KEY)"
        ) from None
    except (RuntimeError, RPCError, OSError) as error:
        raise TemporalUnreachableError(
            f"cannot connect to Temporal at {where}: {_one_line(error)}; check TEMPORAL_ADDRESS "
            f"(and TEMPORAL_TLS / TEMPORAL_API_KEY)"
        ) from None
    await _check_namespace(client, settings, timeout_seconds)
    return client


async def _check_namespace(client: Client, settings: Settings, timeout_seconds: float) -> None:
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace),
            timeout=timedelta(seconds=timeout_seconds),
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise SettingsError(
                f"TEMPORAL_NAMESPACE: namespace {settings.temporal_namespace!r} does not exist on "
                f"{settings.temporal_address}; create it or set TEMPORAL_NAMESPACE"
            ) from None
        if error.status == RPCStatusCode.PERMISSION_DENIED:
            return  # Some cloud keys may not describe namespaces; the first real call will tell.
        raise TemporalUnreachableError(
            f"Temporal at TEMPORAL_ADDRESS={settings.temporal_address} rejected namespace "
            f"{settings.temporal_namespace!r} (TEMPORAL_NAMESPACE): {_one_line(error)}"
        ) from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
