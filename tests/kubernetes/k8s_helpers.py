"""Helpers for the Kubernetes target's tests: a frozen copy of the project, captures, and manifests.

Captures run the real program under the mock runtime (`infra.plan_capture.capture`), each in a fresh call
(it resets the SDK's global state and uses a fresh event loop). They run against a copy of the project,
so edits made to `pipelines/` while the tests run cannot change the wheel between two captures.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from infra.image import CONTEXT_FILES
from infra.plan_capture import Capture, CapturedResource, capture
from infra.stackfile import load_stack
from infra.targets import cluster

ROOT = Path(__file__).resolve().parents[2]
CRD_GROUPS = ("kubernetes:monitoring.coreos.com/",)
#: The k8s-refs stack's runtime image: pinned by digest in a private registry.
PINNED_IMAGE = "ghcr.io/acme/shipyard-runtime@sha256:" + "5" * 64


def copy_project(dest: Path) -> Path:
    """The files the program reads: Pulumi.yaml, pyproject.toml, the image's build context, stacks/, pipelines/."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "pyproject.toml", *CONTEXT_FILES):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "pipelines", dest / "pipelines", ignore=ignore)
    shutil.copytree(ROOT / "stacks", dest / "stacks", ignore=ignore)
    return dest


def api_version_kind(type_token: str) -> tuple[str, str]:
    """('apps/v1', 'Deployment') from 'kubernetes:apps/v1:Deployment'; the core group has no prefix."""
    _, group_version, kind = type_token.split(":")
    group, _, version = group_version.rpartition("/")
    return (version if group == "core" else group_version), kind


def plain_numbers(value: Any) -> Any:
    """Integral floats back to ints: the wire carries every number as a double."""
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def manifest(resource: CapturedResource) -> dict[str, Any]:
    """A captured Kubernetes resource as the manifest the provider would apply.

    Secret payloads are opaque in a capture ('[secret]'); they become empty maps so the rest is validated.
    """
    api_version, kind = api_version_kind(resource.type)
    body = plain_numbers(resource.inputs)
    assert body.get("apiVersion", api_version) == api_version and body.get("kind", kind) == kind
    body = {**body, "apiVersion": api_version, "kind": kind}
    for key in ("data", "stringData"):
        if kind == "Secret" and body.get(key) == "[secret]":
            body[key] = {}
    return body


def kube_objects(capture: Capture, include_custom: bool = False) -> list[CapturedResource]:
    """Every Kubernetes object of a capture (custom resources of CRDs only when asked)."""
    return [r for r in capture.resources if r.type.startswith("kubernetes:")
            and (include_custom or not r.type.startswith(CRD_GROUPS))]


def of_kind(capture: Capture, kind: str) -> list[dict[str, Any]]:
    """The manifests of one kind."""
    return [manifest(r) for r in kube_objects(capture, include_custom=True) if r.type.endswith(f":{kind}")]


def named(capture: Capture, kind: str, name: str) -> dict[str, Any]:
    """The manifest of one object, by kind and metadata.name."""
    found = [m for m in of_kind(capture, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def resource(capture: Capture, type_suffix: str, name: str) -> CapturedResource:
    """A captured resource by type suffix (':StatefulSet') and Pulumi resource name."""
    found = [r for r in capture.resources if r.type.endswith(type_suffix) and r.name == name]
    assert len(found) == 1, f"{type_suffix} {name}: {len(found)} found"
    return found[0]


def pod_specs(capture: Capture) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(owner 'Kind/name', pod template metadata, pod spec) of every workload."""
    for m in kube_objects(capture):
        body = manifest(m)
        kind, spec = body["kind"], body.get("spec", {})
        if kind in ("Deployment", "StatefulSet", "Job"):
            template = spec["template"]
        elif kind == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        else:
            continue
        yield f"{kind}/{body['metadata']['name']}", template.get("metadata", {}), template["spec"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Init containers and containers of a pod spec."""
    return [*pod.get("initContainers", []), *pod["containers"]]


def run_capture(project: Path, stack: str) -> Capture:
    """One fresh evaluation of the program for `stack` of `project`."""
    return capture(load_stack(stack, project_dir=project), project)


def twin_stack(project: Path, stack: str, repository: str) -> str:
    """The Kubernetes target's stack file for the same spec as the cluster-profile `stack`: the same keys, target
    'kubernetes', the storage classes the profile gives (`cluster.FACTS`), and `repository` (where the profile
    pushes the runtime image) as the one it pushes to, so both run the same pushed digest."""
    config = yaml.safe_load((project / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    cloud = config.pop("shipyard:target")
    config.pop("shipyard:region")
    config.pop(f"shipyard:{cloud}")
    facts = cluster.FACTS[cloud]
    config["shipyard:target"] = "kubernetes"
    config["shipyard:kubernetes"] = {"storage_class": facts.storage_class,
                                     "shared_storage_class": facts.shared_storage_class,
                                     "image_repository": repository}
    return yaml.safe_dump({"config": config})
