"""Quality alerts fire exactly when the model is worse than its bound, on every target, for every metric.

Each target's planned alert is evaluated, not string-matched: the PrometheusRule's PromQL aggregation and
comparison over sample series (Kubernetes), the alarm's statistic and ComparisonOperator over sample
datapoints (AWS), the alert policy's cross-series reducer and comparison (GCP), the metric alert's time
aggregation and operator (Azure). The directions expected here are written out independently of `pipelines.catalog`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

import pytest

from pipelines.catalog import METRICS

#: Written out by hand: the metrics where a lower value is the better model.
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}
BOUND = 0.5
EVERY_METRIC = sorted(m for table in METRICS.values() for m in table)

_MODELS = f"""\
  shipyard:models:
    - name: churn
      monitoring:
        min_quality: {{{", ".join(f"{m}: {BOUND}" for m in sorted(METRICS["classification"]))}}}
    - name: price
      pipeline: {{task: regression, target_column: target, estimator: ridge}}
      monitoring:
        min_quality: {{{", ".join(f"{m}: {BOUND}" for m in sorted(METRICS["regression"]))}}}
"""
STACKS = {
    "k8s-quality": ("config:\n  shipyard:target: kubernetes\n"
                    "  shipyard:kubernetes: {prometheus_operator: true, image_repository: localhost:5001/runtime}\n"
                    + _MODELS),
    "aws-quality": "config:\n  shipyard:target: aws\n  shipyard:region: eu-west-1\n" + _MODELS,
    "gcp-quality": "config:\n  shipyard:target: gcp\n  shipyard:region: europe-west1\n"
                   "  shipyard:gcp: {project: acme-q}\n" + _MODELS,
    "azure-quality": "config:\n  shipyard:target: azure\n  shipyard:region: westeurope\n" + _MODELS,
}

def _cases(metric: str) -> list[tuple[list[float], bool]]:
    """(values the monitor reported in one window, whether the model is then worse than BOUND)."""
    good, bad = (BOUND - 0.1, BOUND + 0.1) if metric in LOWER_IS_BETTER else (BOUND + 0.1, BOUND - 0.1)
    return [([good], False), ([bad], True), ([BOUND], False), ([good, bad], True), ([good, good], False)]


_PROMQL = re.compile(r'^(min|max)\(shipyard_model_quality\{[^}]*metric="(\w+)"[^}]*\}\) (<=|>=|<|>|==|!=) (\S+)$')
_PROMQL_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def _promql_fires(expr: str, series: list[float]) -> tuple[str, bool]:
    """The metric an alert expression watches, and whether it fires over these series' values."""
    match = _PROMQL.match(expr)
    assert match, f"not a quality expression this test can evaluate: {expr}"
    aggregate, metric, op, bound = match.groups()
    value = (min if aggregate == "min" else max)(series)
    return metric, _PROMQL_OPS[op](value, float(bound))


_CLOUDWATCH_OPS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt, "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le}
_STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Minimum": min, "Maximum": max, "Average": lambda v: sum(v) / len(v)}


def _alarm_fires(inputs: dict[str, Any], datapoints: list[float]) -> bool:
    """Whether a CloudWatch alarm enters ALARM when one period holds these datapoints."""
    value = _STATISTICS[inputs["statistic"]](datapoints)
    return _CLOUDWATCH_OPS[inputs["comparisonOperator"]](value, float(inputs["threshold"]))


@pytest.fixture(scope="module")
def plans(project_copy, captured) -> dict[str, Any]:
    project = project_copy(STACKS)
    return {stack: captured(stack, project) for stack in STACKS}


def test_kubernetes_quality_rules_fire_exactly_when_the_model_is_worse(plans: dict[str, Any]) -> None:
    rules = [rule for resource in plans["k8s-quality"].resources if resource.type.endswith(":PrometheusRule")
             for group in resource.inputs["spec"]["groups"] for rule in group["rules"]
             if rule["alert"].startswith("ShipyardQuality")]
    watched = [_promql_fires(rule["expr"], [BOUND])[0] for rule in rules]
    assert sorted(watched) == EVERY_METRIC
    for rule, metric in zip(rules, watched, strict=True):
        for series, worse in _cases(metric):
            fires = _promql_fires(rule["expr"], series)[1]
            assert fires is worse, f"{rule['alert']} ({rule['expr']}) over {series}: fires={fires}"


def test_aws_quality_alarms_fire_exactly_when_the_model_is_worse(plans: dict[str, Any]) -> None:
    alarms = {resource.inputs["dimensions"]["Metric"]: resource.inputs
              for resource in plans["aws-quality"].resources
              if resource.type == "aws:cloudwatch/metricAlarm:MetricAlarm"
              and "Metric" in (resource.inputs.get("dimensions") or {})}
    assert set(alarms) == set(EVERY_METRIC)
    for metric, inputs in alarms.items():
        assert float(inputs["threshold"]) == BOUND
        for datapoints, worse in _cases(metric):
            assert _alarm_fires(inputs, datapoints) is worse, f"{metric} alarm over {datapoints}"


_GCP_OPS: dict[str, Callable[[float, float], bool]] = {
    "COMPARISON_LT": operator.lt, "COMPARISON_GT": operator.gt, "COMPARISON_LE": operator.le,
    "COMPARISON_GE": operator.ge}
_GCP_REDUCERS: dict[str, Callable[[list[float]], float]] = {"REDUCE_MIN": min, "REDUCE_MAX": max}
_GCP_METRIC = re.compile(r'metric\.label\.metric = "(\w+)"')


def test_gcp_quality_policies_fire_exactly_when_the_model_is_worse(plans: dict[str, Any]) -> None:
    conditions = {}
    for resource in plans["gcp-quality"].resources:
        if resource.type == "gcp:monitoring/alertPolicy:AlertPolicy":
            for condition in resource.inputs["conditions"]:
                threshold = condition["conditionThreshold"]
                found = _GCP_METRIC.search(threshold["filter"])
                if found:
                    conditions[found.group(1)] = threshold
    assert sorted(conditions) == EVERY_METRIC
    for metric, threshold in conditions.items():
        reduce = _GCP_REDUCERS[threshold["aggregations"][0]["crossSeriesReducer"]]
        for series, worse in _cases(metric):
            fires = _GCP_OPS[threshold["comparison"]](reduce(series), float(threshold["thresholdValue"]))
            assert fires is worse, f"{metric} policy over {series}"


_AZURE_OPS: dict[str, Callable[[float, float], bool]] = {
    "LessThan": operator.lt, "GreaterThan": operator.gt, "LessThanOrEqual": operator.le,
    "GreaterThanOrEqual": operator.ge}


def test_azure_quality_alerts_fire_exactly_when_the_model_is_worse(plans: dict[str, Any]) -> None:
    criteria = {}
    for resource in plans["azure-quality"].resources:
        if resource.type == "azure-native:monitor:MetricAlert":
            for criterion in resource.inputs["criteria"]["allOf"]:
                metric = [d["values"][0] for d in criterion.get("dimensions", []) if d["name"] == "Metric"]
                if metric:
                    criteria[metric[0]] = criterion
    assert sorted(criteria) == EVERY_METRIC
    for metric, criterion in criteria.items():
        aggregate = _STATISTICS[criterion["timeAggregation"]]
        for datapoints, worse in _cases(metric):
            fires = _AZURE_OPS[criterion["operator"]](aggregate(datapoints), float(criterion["threshold"]))
            assert fires is worse, f"{metric} alert over {datapoints}"


def test_the_evaluators_catch_the_old_kubernetes_rule() -> None:
    """The rule as it was (`min(...) < bound` for every metric) fails this check for a lower-is-better metric."""
    old = f'min(shipyard_model_quality{{model="price",metric="rmse"}}) < {BOUND}'
    assert any(_promql_fires(old, series)[1] is not worse for series, worse in _cases("rmse"))
