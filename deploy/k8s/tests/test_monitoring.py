"""The alert rules use only the metrics of the contract in docs/operations.md, and every alert has its
section there (the rules' runbook_url points at it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

K8S_DIR = Path(__file__).resolve().parents[1]
OPERATIONS = K8S_DIR.parents[1] / "docs" / "operations.md"
MONITORING = K8S_DIR / "components" / "monitoring"
CONTRACT = {
    "sous_outbox_oldest_age_seconds",
    "sous_dlq_records_total",
    "sous_consumer_lag",
    "sous_executions_in_status",
    "sous_http_requests_total",
}


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def sous_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\bsous_[a-z_]+\b", expr))


def test_the_contract_is_documented() -> None:
    text = OPERATIONS.read_text()
    metrics_section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    assert {m for m in CONTRACT if f"`{m}`" in metrics_section} == CONTRACT


def test_alerts_use_only_contract_metrics() -> None:
    used: set[str] = set()
    for rule in rules():
        used |= sous_metrics(rule["expr"])
    assert used <= CONTRACT, used - CONTRACT
    assert used == CONTRACT  # every metric of the contract is watched by some alert


def test_every_alert_has_a_runbook_section() -> None:
    headings = {line[4:].strip() for line in OPERATIONS.read_text().splitlines() if line.startswith("### ")}
    for rule in rules():
        name = rule["alert"]
        assert name in headings, name
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_the_dashboard_queries_contract_metrics() -> None:
    dashboard = json.loads((MONITORING / "dashboard-sous.json").read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= sous_metrics(target["expr"])
    assert used == CONTRACT
