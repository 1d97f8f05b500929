"""Every Kubernetes object of every Kubernetes stack against the upstream schema, in strict mode.

Objects are rebuilt from the capture (apiVersion / kind from the type token; inputs are already camelCase).
The Prometheus operator's custom resources have no upstream schema (`SchemaNotFoundError`); they are
checked against the minimal schemas below, which list exactly the fields this target writes.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from k8s_helpers import kube_objects, manifest, of_kind

KUBERNETES_VERSION = "1.33.0"
STACKS = ["k8s-dev", "k8s-prod", "k8s-edge", "k8s-refs"]

_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {"type": "object", "required": ["name", "namespace", "labels"],
             "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _LABELS},
             "additionalProperties": False}


def _resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
            "properties": {"apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": kind},
                           "metadata": _METADATA, "spec": spec}}


#: The subset of the operator's CRDs (monitoring.coreos.com/v1) this target uses, field names as upstream.
CUSTOM_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _resource("ServiceMonitor", {
        "type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
        "properties": {
            "selector": {"type": "object", "additionalProperties": False, "properties": {
                "matchLabels": _LABELS,
                "matchExpressions": {"type": "array", "items": {
                    "type": "object", "required": ["key", "operator"], "additionalProperties": False,
                    "properties": {"key": {"type": "string"}, "operator": {"enum": ["In", "NotIn", "Exists",
                                                                                       "DoesNotExist"]},
                                   "values": {"type": "array", "items": {"type": "string"}}}}}}},
            "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
                "matchNames": {"type": "array", "items": {"type": "string"}}, "any": {"type": "boolean"}}},
            "endpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["port"], "additionalProperties": False,
                "properties": {"port": {"type": "string"}, "path": {"type": "string", "pattern": "^/"},
                               "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}}}},
        }}),
    "PrometheusRule": _resource("PrometheusRule", {
        "type": "object", "required": ["groups"], "additionalProperties": False,
        "properties": {"groups": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "rules"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "rules": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["alert", "expr"], "additionalProperties": False,
                "properties": {"alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                               "expr": {"type": "string", "minLength": 1},
                               "for": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                               "labels": _LABELS, "annotations": _LABELS}}}}}}}}),
}


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_is_valid_against_the_upstream_schema(captured, stack: str) -> None:
    objects = kube_objects(captured(stack))
    assert len(objects) > 20
    failures = []
    for resource in objects:
        try:
            kubernetes_validate.validate(manifest(resource), KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{resource.type} {resource.name}: {exc.message}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("stack", ["k8s-prod"])
def test_prometheus_operator_objects_match_the_crd_fields(captured, stack: str) -> None:
    capture = captured(stack)
    checked = 0
    for kind, schema in CUSTOM_SCHEMAS.items():
        for body in of_kind(capture, kind):
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
            jsonschema.validate(body, schema)
            checked += 1
    assert checked == 2 * len(capture.outputs["endpoints"])


def test_the_custom_schemas_catch_a_misspelt_field() -> None:
    bad = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
           "metadata": {"name": "x", "namespace": "y", "labels": {}},
           "spec": {"selector": {}, "endpoints": [{"port": "http", "scrapeInterval": "30s"}]}}
    with pytest.raises(jsonschema.ValidationError, match="scrapeInterval"):
        jsonschema.validate(bad, CUSTOM_SCHEMAS["ServiceMonitor"])


def test_strict_validation_catches_an_untranslated_field(captured) -> None:
    body = manifest(next(r for r in kube_objects(captured("k8s-dev")) if r.type.endswith(":Deployment")))
    body["spec"]["template"]["spec"]["containers"][0]["read_only_root_filesystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
