"""docker-compose.yml cannot run here (no container engine): it is checked against the code instead."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from approvals.settings import Settings

ROOT = Path(__file__).parent.parent
ENGINE_SERVICES = ("migrate", "worker", "api")
REQUIRED = {
    "POSTGRES_PASSWORD": "pw",
    "APPROVALS_DB_PASSWORD": "0123abcd",
    "APPROVALS_APP_DB_PASSWORD": "4567ef01",
    "WEBHOOK_SIGNING_SECRET": "secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana",
}


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_engine_services_are_configured_only_with_settings_the_engine_reads() -> None:
    known = {name.upper() for name in Settings.model_fields}
    for service in ENGINE_SERVICES:
        environment = compose()["services"][service].get("environment", {})
        unknown = set(environment) - known
        assert not unknown, f"{service} sets {sorted(unknown)}, which approvals/settings.py does not read"
        assert {"DATABASE_URL", "TEMPORAL_ADDRESS", "WEBHOOK_SIGNING_SECRET"} <= set(environment), service


def test_engine_starts_after_temporal_the_search_attributes_and_the_migrations() -> None:
    services = compose()["services"]
    for service in ("worker", "api"):
        depends = services[service]["depends_on"]
        assert depends["temporal"]["condition"] == "service_healthy"
        assert depends["temporal-admin-tools"]["condition"] == "service_completed_successfully"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["api"] and "healthcheck" in services["temporal"]
    assert services["worker"]["command"] == ["approvals", "worker"]
    assert services["api"]["command"][:2] == ["approvals", "api"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian package docker-compose not installed")
def test_docker_compose_config_validates_and_names_a_missing_secret() -> None:
    env = {**os.environ, **REQUIRED}
    assert subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, env=env).returncode == 0
    del env["WEBHOOK_SIGNING_SECRET"]
    missing = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and "WEBHOOK_SIGNING_SECRET" in missing.stderr
