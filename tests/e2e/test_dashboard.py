"""The chart's Grafana dashboard and PrometheusRule ask only for what a running operator exports.

Every PromQL expression of the rendered dashboard ConfigMap and PrometheusRule is parsed by Prometheus's own
parser (a tiny Go program on github.com/prometheus/prometheus/promql/parser, harness/go/promql) and each
metric, label and matched label value it names is looked up in a scrape of a live operator on the local control
plane, after runs that succeeded and failed so that the labelled series exist."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from gallery_harness import build
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_operator import API_GROUP, API_VERSION, SUBSCRIPTION_PLURAL
from tests.conftest import Cluster
from tests.e2e.charts import render, server_dry_run
from tests.e2e.conftest import Downloads, pvc_spec

pytestmark = pytest.mark.e2e

# Grafana's own variables, replaced as Grafana would before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}
# What each dashboard row is for (issue 25): the metric families it must chart.
CHARTED = {
    "gallery_operator_downloads",  # downloads by phase, admission queue depth
    "gallery_operator_queue_wait_seconds_bucket",
    "gallery_operator_run_duration_seconds_bucket",
    "gallery_operator_items_total",
    "gallery_operator_bytes_total",
    "gallery_operator_errors_total",
    "gallery_operator_reconcile_duration_seconds_bucket",
    "gallery_operator_reconcile_errors_total",
    "gallery_operator_subscription_runs_total",
    "gallery_operator_subscription_new_items_bucket",
    "gallery_operator_subscription_schedule_lag_seconds_bucket",
}


def dashboard_expressions() -> dict[str, str]:
    """Each expression of the chart's dashboard, by panel and query, with Grafana's variables replaced."""
    (config_map,) = (
        d
        for d in render("metrics.grafanaDashboard.enabled=true")
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")
    )
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (document,) = config_map["data"].values()
    dashboard = json.loads(document)
    found: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expression = expression.replace(variable, value)
            found[f"dashboard {panel['title']!r} {target['refId']}"] = expression
    return found


def rule_expressions() -> dict[str, str]:
    (rule,) = (d for d in render("metrics.prometheusRule.enabled=true") if d["kind"] == "PrometheusRule")
    return {f"alert {r['alert']}": r["expr"] for group in rule["spec"]["groups"] for r in group["rules"] if "expr" in r}


def parse(expressions: dict[str, str]) -> dict[str, dict[str, Any]]:
    """What Prometheus's parser reads in each expression: its selectors and its grouping labels."""
    names = list(expressions)
    output = subprocess.run(
        [str(build.binary("promql"))],
        input=json.dumps([expressions[n] for n in names]),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(zip(names, json.loads(output), strict=True))


def exported(text: str) -> dict[str, dict[str, set[str]]]:
    """The series names of a /metrics scrape, the label names each carries and the values seen of each."""
    series: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = series[sample.name]
            for label, value in sample.labels.items():
                labels[label].add(value)
    return dict(series)


def unknown_names(parsed: dict[str, Any], series: dict[str, dict[str, set[str]]]) -> list[str]:
    """Metrics, labels and label values (of = matchers) an expression names that the scrape does not have; a parse
    error is a problem too."""
    if parsed.get("error"):
        return [f"does not parse: {parsed['error']}"]
    wrong: list[str] = []
    selected: set[str] = set()
    for selector in parsed["selectors"]:
        metric = selector["metric"]
        if metric not in series:
            wrong.append(f"metric {metric}")
            continue
        selected |= set(series[metric])
        wrong += [f"label {label} of {metric}" for label in selector["labels"] if label not in series[metric]]
        wrong += [
            f"value {label}={value!r} of {metric}"
            for label, value in selector["values"].items()
            if label in series[metric] and value not in series[metric][label]
        ]
    wrong += [f"grouping label {label}" for label in parsed["grouping"] if label not in selected]
    return wrong


def post_unauthenticated_report(operator: OperatorProcess) -> None:
    """A report without a token: refused, which counts gallery_operator_reports_refused_total{reason}."""
    request = urllib.request.Request(operator.report_url, b"{}")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=5)


def test_the_dashboard_and_alerts_name_only_what_the_operator_exports(
    downloads: Downloads, operator: OperatorProcess, site: str
) -> None:
    # Runs that succeed and fail, so that the labelled series (result, reason) exist in the scrape.
    downloads.create("shown", pvc_spec([f"{site}/img/1.jpg", f"{site}/img/2.jpg"]))
    downloads.create("broken", pvc_spec([f"{site}/img/does-not-exist.jpg"]))
    assert downloads.wait_phase("shown", {"Succeeded", "Failed"})["phase"] == "Succeeded"
    assert downloads.wait_phase("broken", {"Succeeded", "Failed"})["phase"] == "Failed"
    # A subscription whose first run (at creation, with an interval) succeeds: its outcome-labelled series exist.
    subscription = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "GallerySubscription",
        "metadata": {"name": "charted"},
        "spec": {"interval": "24h", "jitter": "0s", "downloadTemplate": pvc_spec([f"{site}/img/3.jpg"])},
    }
    custom = client.CustomObjectsApi(downloads.api)
    custom.create_namespaced_custom_object(
        API_GROUP, API_VERSION, downloads.namespace, SUBSCRIPTION_PLURAL, subscription
    )
    post_unauthenticated_report(operator)
    wait_until(
        lambda: re.search(r'gallery_operator_errors_total\{reason="NotFound"\}', operator.metrics()),
        30,
        "the failed run's reason in /metrics",
    )

    def ran() -> bool:
        if re.search(r'gallery_operator_subscription_runs_total\{outcome="Succeeded"\}', operator.metrics()):
            return True
        got = custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, downloads.namespace, SUBSCRIPTION_PLURAL, "charted"
        )
        raise AssertionError(f"not yet: {got.get('status')}")

    wait_until(ran, 120, "the subscription run's outcome in /metrics")
    series = exported(operator.metrics())

    dashboard = dashboard_expressions()
    expressions = {**dashboard, **rule_expressions()}
    parsed = parse(expressions)
    problems = {where: wrong for where, result in parsed.items() if (wrong := unknown_names(result, series))}
    assert problems == {}

    charted = {s["metric"] for where, result in parsed.items() if where in dashboard for s in result["selectors"]}
    assert charted >= CHARTED, f"the dashboard charts none of {sorted(CHARTED - charted)}"
    assert sum(where.startswith("alert ") for where in parsed) == 4


def test_the_check_sees_made_up_metrics_labels_and_broken_syntax(operator: OperatorProcess) -> None:
    """The same check on expressions that are wrong: each problem is named (the check can fail)."""
    series = exported(operator.metrics())
    parsed = parse(
        {
            "metric": "sum(rate(gallery_operator_items_stored_total[5m]))",
            "label": 'gallery_operator_downloads{namespace="a"}',
            "grouping": "sum by (pod) (gallery_operator_downloads)",
            "matching": "gallery_operator_items_total / on (job) gallery_operator_bytes_total",
            "syntax": "sum(rate(gallery_operator_items_total[5m])",
            "value": 'gallery_operator_downloads{phase="Waiting"}',
            "fine": 'sum by (phase) (gallery_operator_downloads{phase="Queued"})',
        }
    )
    problems = {where: unknown_names(result, series) for where, result in parsed.items()}
    assert problems["metric"] == ["metric gallery_operator_items_stored_total"]
    assert problems["label"] == ["label namespace of gallery_operator_downloads"]
    assert problems["grouping"] == ["grouping label pod"]
    assert problems["matching"] == ["grouping label job"]
    assert problems["syntax"][0].startswith("does not parse:")
    assert problems["value"] == ["value phase='Waiting' of gallery_operator_downloads"]
    assert problems["fine"] == []


def test_the_dashboard_is_off_by_default_and_its_config_map_passes_the_api_server(
    cluster: Cluster, namespace: str
) -> None:
    assert [d for d in render() if d["kind"] == "ConfigMap"] == []
    documents = render(
        "metrics.grafanaDashboard.enabled=true",
        f"metrics.grafanaDashboard.namespace={namespace}",
        "metrics.grafanaDashboard.labels.team=observability",
        "metrics.grafanaDashboard.annotations.grafana_folder=Operators",
    )
    (config_map,) = (d for d in documents if d["kind"] == "ConfigMap")
    assert config_map["metadata"]["namespace"] == namespace
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["labels"]["team"] == "observability"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Operators"}
    dashboard = json.loads(config_map["data"]["gallery-operator.json"])
    assert dashboard["uid"] == "gallery-operator"
    assert "(server dry run)" in server_dry_run(cluster, yaml.safe_dump(config_map))
