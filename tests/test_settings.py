"""A bad setting stops a command within seconds, with a message naming the environment variable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from approvals import db
from approvals.cli import settings_markdown
from approvals.settings import DEV_WEBHOOK_SIGNING_SECRET, Settings, SettingsError, load_settings
from approvals.temporal import TemporalUnreachableError, connect, tls_config

APPROVALS = Path(sys.executable).parent / "approvals"
UNREACHABLE_TEMPORAL = "127.0.0.1:1"
UNREACHABLE_DATABASE = "postgresql://approvals:secret@127.0.0.1:1/approvals"
FAST_SECONDS = 15


PRODUCTION_SECRET = "test-production-webhook-secret"


def run_approvals(*args: str, **env: str | None) -> tuple[int, str, float]:
    """Runs the command with the given environment; a production webhook key unless ``env`` says otherwise
    (None: unset)."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TEMPORAL_ADDRESS", "LOG_FORMAT"}}
    clean["WEBHOOK_SIGNING_SECRET"] = PRODUCTION_SECRET
    clean.update(env)  # type: ignore[arg-type]
    clean = {k: v for k, v in clean.items() if v is not None}
    started = time.monotonic()
    result = subprocess.run(
        [str(APPROVALS), *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/approvals"),
        ("TEMPORAL_ADDRESS", "temporal-without-port"),
        ("TEMPORAL_ADDRESS", "temporal:99999"),
        ("API_PORT", "eighty"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_malformed_setting_is_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


@pytest.mark.parametrize("command", ["worker", "migrate", "api"])
def test_commands_refuse_a_malformed_database_url_naming_it(command: str) -> None:
    code, output, _ = run_approvals(command, DATABASE_URL="http://db/approvals")
    assert code == 2 and "DATABASE_URL" in output, output


@pytest.mark.parametrize("command", ["worker", "migrate", "api"])
def test_commands_require_database_url(command: str) -> None:
    code, output, _ = run_approvals(command, TEMPORAL_ADDRESS=UNREACHABLE_TEMPORAL)
    assert code == 2 and "DATABASE_URL is not set" in output, output


@pytest.mark.parametrize("command", ["worker", "api"])
def test_unreachable_temporal_fails_fast_naming_temporal_address(command: str) -> None:
    code, output, seconds = run_approvals(
        command, TEMPORAL_ADDRESS=UNREACHABLE_TEMPORAL, DATABASE_URL=UNREACHABLE_DATABASE
    )
    assert code == 1, output
    assert f"TEMPORAL_ADDRESS={UNREACHABLE_TEMPORAL}" in output
    assert "Traceback" not in output
    assert seconds < FAST_SECONDS


@pytest.mark.parametrize("command", ["worker", "api"])
@pytest.mark.parametrize("secret", [None, DEV_WEBHOOK_SIGNING_SECRET, ""])
def test_production_commands_refuse_the_default_webhook_secret(command: str, secret: str | None) -> None:
    code, output, seconds = run_approvals(
        command,
        WEBHOOK_SIGNING_SECRET=secret,
        TEMPORAL_ADDRESS=UNREACHABLE_TEMPORAL,
        DATABASE_URL=UNREACHABLE_DATABASE,
    )
    assert code == 2, output
    assert "WEBHOOK_SIGNING_SECRET" in output and "Traceback" not in output
    assert "TEMPORAL_ADDRESS" not in output  # refused before connecting to anything
    assert seconds < FAST_SECONDS


def test_only_the_dev_stack_may_sign_with_the_built_in_webhook_secret() -> None:
    assert load_settings(webhook_signing_secret=DEV_WEBHOOK_SIGNING_SECRET).webhook_signing_secret
    assert Settings.model_fields["webhook_signing_secret"].default == DEV_WEBHOOK_SIGNING_SECRET
    with pytest.raises(SettingsError, match="WEBHOOK_SIGNING_SECRET"):
        load_settings(webhook_signing_secret=DEV_WEBHOOK_SIGNING_SECRET).require_webhook_signing_secret()
    with pytest.raises(SettingsError, match="WEBHOOK_SIGNING_SECRET"):
        load_settings(webhook_signing_secret="").require_webhook_signing_secret()
    assert load_settings(webhook_signing_secret="s3cret").require_webhook_signing_secret() == "s3cret"


def test_migrate_with_unreachable_database_fails_fast_naming_database_url_without_the_password() -> None:
    code, output, seconds = run_approvals("migrate", DATABASE_URL=UNREACHABLE_DATABASE)
    assert code == 1, output
    assert "DATABASE_URL=postgresql://approvals:***@127.0.0.1:1/approvals" in output
    assert "secret" not in output and "Traceback" not in output
    assert seconds < FAST_SECONDS


async def test_create_pool_names_database_url_when_unreachable_or_malformed() -> None:
    with pytest.raises(db.DatabaseUnreachableError, match="DATABASE_URL"):
        await db.create_pool(UNREACHABLE_DATABASE, timeout_seconds=2)
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        await db.create_pool("postgresql://u@host:port-is-not-a-number/db", timeout_seconds=2)
    with pytest.raises(SettingsError, match="DATABASE_URL is not set"):
        await db.create_pool(load_settings(database_url=None))


async def test_connect_names_temporal_address_when_unreachable() -> None:
    with pytest.raises(TemporalUnreachableError, match="TEMPORAL_ADDRESS=127.0.0.1:1"):
        await connect(load_settings(temporal_address=UNREACHABLE_TEMPORAL), timeout_seconds=2)


def test_tls_settings_are_checked_and_named(tmp_path: Path) -> None:
    assert tls_config(load_settings()) is False
    assert tls_config(load_settings(temporal_api_key="key")) is True  # API keys only travel over TLS
    with pytest.raises(SettingsError, match="TEMPORAL_TLS_CA_PATH"):
        tls_config(load_settings(temporal_tls_ca_path=tmp_path / "missing.pem"))
    cert = tmp_path / "client.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(SettingsError, match="TEMPORAL_TLS_KEY_PATH"):
        tls_config(load_settings(temporal_tls_cert_path=cert))
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    config = tls_config(load_settings(temporal_tls_cert_path=cert, temporal_tls_key_path=key))
    assert not isinstance(config, bool) and config.client_cert == cert.read_bytes()


def test_settings_command_prints_every_setting_as_a_markdown_table() -> None:
    code, output, _ = run_approvals("settings")
    assert code == 0
    assert output.strip() == settings_markdown()
    lines = settings_markdown().splitlines()
    assert lines[0] == "| Environment variable | Default | Description |"
    assert len(lines) == 2 + len(Settings.model_fields)
    assert "| `TEMPORAL_ADDRESS` | `localhost:7233` |" in settings_markdown()
    assert "| `DATABASE_URL` | (unset) |" in settings_markdown()


def test_callback_hosts_are_exact_names_or_dot_domains() -> None:
    assert load_settings().callback_host_allowed("anything.internal")  # unset: development
    allowed = load_settings(callback_allowed_hosts="portal.gov.cn, .alashankou.gov.cn")
    assert allowed.callback_host_allowed("PORTAL.gov.cn") and allowed.callback_host_allowed("a.alashankou.gov.cn")
    assert allowed.callback_host_allowed("alashankou.gov.cn")
    assert not allowed.callback_host_allowed("evil-alashankou.gov.cn") and not allowed.callback_host_allowed("10.0.0.5")
