"""The monitoring that ships in deploy/ (issue 17): Prometheus's scrape configuration and alert rules, Grafana's
provisioned dashboard. Neither server can run here; the rules are checked and unit-tested with ``promtool``
(Debian's ``prometheus`` package, installed by ``make install`` when possible) and parsed in any case, and
every metric they name must be one the engine exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
REQUIRED_ALERTS = {
    "ApprovalsNotificationsFailed",
    "ApprovalsTasksOverdue",
    "ApprovalsWorkerNotPolling",
    "ApprovalsRecordingErrors",
}
ENGINE_SOURCES = ("approvals/metrics.py", "activities/storage.py")
"""Where the engine's own metrics are named (the API's, and the worker's recording metrics)."""
SDK_METRICS = {"temporal_num_pollers", "temporal_workflow_task_schedule_to_start_latency_bucket", "up"}
"""Metrics from outside the engine's code: the Temporal SDK's and Prometheus's own."""
promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus) not installed")


def alert_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "approvals.json").read_text(encoding="utf-8"))
    return loaded


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (label names, functions and keywords left out)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expression)
    without_groupings = re.sub(r"\b(by|without)\s*\([^)]*\)", "", without_labels)
    return {name for name in re.findall(r"\b([a-z_]+_[a-z_]+)\b(?!\s*\()", without_groupings)}


def exported(name: str) -> bool:
    """Whether the engine exports ``name`` (a counter's ``_total``, a histogram's ``_bucket`` … included)."""
    base = re.sub(r"_(total|bucket|count|sum)$", "", name)
    sources = "".join((ROOT / path).read_text() for path in ENGINE_SOURCES)
    return name in SDK_METRICS or f'"{base}"' in sources or base in {"http_requests", "http_request_duration_seconds"}


def test_the_four_alerts_the_operators_need_are_there_with_a_severity_and_a_summary() -> None:
    rules = alert_rules()
    assert REQUIRED_ALERTS <= set(rules)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name


def test_alerts_and_dashboard_read_only_metrics_the_engine_exports() -> None:
    expressions = [rule["expr"] for rule in alert_rules().values()]
    expressions += [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]
    names = set().union(*map(metric_names, expressions))
    assert {
        "approvals_tasks_overdue",
        "approvals_outbox_notifications",
        "http_request_duration_seconds_bucket",
    } <= names
    assert sorted(name for name in names if not exported(name)) == []


def test_dashboard_has_the_panels_the_issue_names_on_the_provisioned_data_source() -> None:
    board = dashboard()
    titles = " | ".join(panel["title"] for panel in board["panels"])
    for topic in ("Throughput", "Decide latency", "Overdue tasks by unit", "Outbox health", "Denied attempts"):
        assert topic in titles, titles
    source = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    assert {target["datasource"]["uid"] for panel in board["panels"] for target in panel["targets"]} == {uid}
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
    decide = "/v1/tasks/{task_id:path}/decide"  # the route template the HTTP metrics carry
    assert any(decide in target["expr"] for panel in board["panels"] for target in panel["targets"])


def test_prometheus_scrapes_the_api_and_the_worker_where_compose_serves_them() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {"approvals-api": ["api:8000"], "approvals-worker": ["worker:9464"]}
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["worker"]["environment"]["WORKER_METRICS_ADDRESS"] == "0.0.0.0:9464"
    for service, image in (("prometheus", "prom/prometheus:"), ("grafana", "grafana/grafana:")):
        assert services[service]["image"].startswith(image) and not services[service]["image"].endswith("latest")
        for volume in services[service]["volumes"]:
            source = volume.split(":")[0]
            assert not source.startswith("./") or (ROOT / source).exists(), volume


@promtool
def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        checked = subprocess.run(["promtool", *command], cwd=PROMETHEUS, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@promtool
def test_promtool_accepts_the_scrape_configuration(tmp_path: Path) -> None:
    """Checked with the rules file where the container mounts it (here: beside the configuration)."""
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    config = (PROMETHEUS / "prometheus.yml").read_text().replace("/etc/prometheus/alerts.yml", "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(config)
    checked = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
