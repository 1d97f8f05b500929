"""Lookups over a captured AWS program, shared by the AWS tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from infra.plan_capture import Capture, CapturedResource

#: An image already in ECR, pinned by digest (the aws-edge stack's runtime_image).
ECR_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/ml/runtime@sha256:" + "2" * 64

#: Input fields whose keys are user data (tags, environment variables, dimensions, metadata), not SDK property
#: names: a snake_case key is legitimate only below one of these.
MAP_FIELDS = {"tags", "tagsAll", "environment", "dimensions", "metadata", "variables", "defaultTags"}


def of_type(capture: Capture, token: str) -> list[CapturedResource]:
    """Resources of one type token (e.g. 'aws:s3/bucket:Bucket')."""
    return [r for r in capture.resources if r.type == token]


def one(capture: Capture, token: str, name: str | None = None) -> CapturedResource:
    """The single resource of a type (and name)."""
    found = [r for r in of_type(capture, token) if name is None or r.name == name]
    assert len(found) == 1, f"{len(found)} {token} named {name}: {[r.name for r in found]}"
    return found[0]


def by_urn(capture: Capture) -> dict[str, CapturedResource]:
    """Resources by URN."""
    return {r.urn: r for r in capture.resources}


def untranslated_keys(node: Any, path: str = "") -> Iterator[str]:
    """Paths of keys with '_' at a level of a typed object: an SDK type would have camelCased them."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if "_" in key:
                yield here
            if key not in MAP_FIELDS:
                yield from untranslated_keys(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from untranslated_keys(value, f"{path}[{index}]")


#: Where each resource type keeps IAM-style policy documents (JSON strings).
POLICY_FIELDS = {
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:kms/key:Key": ("policy",),
}


def policy_documents(capture: Capture) -> Iterator[tuple[CapturedResource, dict[str, Any]]]:
    """Every IAM policy document the program declares, parsed."""
    for resource in capture.resources:
        for field in POLICY_FIELDS.get(resource.type, ()):
            text = resource.inputs.get(field)
            assert isinstance(text, str) and text.startswith("{"), f"{resource.name}.{field} is not known: {text!r}"
            yield resource, json.loads(text)


def listify(value: Any) -> list[Any]:
    """A policy field that may be one string or a list, as a list."""
    return [value] if isinstance(value, str) else list(value or [])


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy document's statements (a single statement object counts as a list of one)."""
    found = document["Statement"]
    return [found] if isinstance(found, dict) else list(found)
