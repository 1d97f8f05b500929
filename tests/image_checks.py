"""Assertions about the runtime image shared by the AWS and Kubernetes tests: the build resource's exact inputs,
the digest the (mock) registry returned for it, and every image a captured workload names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infra.image import DOCKERFILE, LOCK, PLATFORM, content_tag
from infra.plan_capture import Capture, CapturedResource
from infra.plan_mocks import BY_TYPE
from infra.stackfile import load_stack

IMAGE = "docker-build:index:Image"
#: Keys under which a workload names its container image (Kubernetes, ECS, SageMaker models and pipeline steps).
IMAGE_KEYS = {"image", "ImageUri", "TrainingImage"}


def build_resources(capture: Capture) -> list[CapturedResource]:
    """The image builds a capture declares."""
    return [r for r in capture.resources if r.type == IMAGE]


def pushed_ref(capture: Capture, project: Path, stack: str) -> str:
    """`<repository>@<digest>` of the one image build, the digest being what the registry (mock) answered."""
    (build,) = build_resources(capture)
    digest = BY_TYPE[IMAGE](build.name, build.inputs, load_stack(stack, project_dir=project).spec)["digest"]
    repository = build.inputs["tags"][0].rpartition(":")[0]
    return f"{repository}@{digest}"


def assert_build_inputs(build: CapturedResource, project: Path, repository: str,
                        registries: list[dict[str, Any]] | None) -> None:
    """The exact inputs of the build: the project's context and Dockerfile (relative to the working directory,
    which is the project's, as Pulumi runs a program), linux/amd64 only, the content tag, one registry export
    with Docker media types that pushes, no other export (so nothing adds an OCI index or attestation manifest),
    credentials as secrets."""
    context = "."
    tag = content_tag((project / DOCKERFILE).read_bytes(), (project / LOCK).read_bytes())
    expected = {
        "context": {"location": context},
        "dockerfile": {"location": f"{context}/{DOCKERFILE}"},
        "platforms": [PLATFORM],
        "tags": [f"{repository}:{tag}"],
        "push": False,
        "exports": [{"registry": {"ociMediaTypes": False, "push": True, "compression": "gzip",
                                  "compressionLevel": 0, "forceCompression": False, "store": True}}],
        # The SDK's defaults, written out: a preview builds too (and pushes nothing), on the default network.
        "buildOnPreview": True,
        "network": "default",
    }
    if registries is not None:
        expected["registries"] = registries
    assert build.inputs == expected


def workload_images(capture: Capture) -> Iterator[tuple[str, str]]:
    """(resource and key path, image) of every container image any captured resource names (JSON documents such
    as ECS container definitions and SageMaker pipeline definitions included), except the build's own tags."""
    for resource in capture.resources:
        if resource.type != IMAGE:
            yield from _images(resource.inputs, f"{resource.type} {resource.name}")


def _images(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str) and node[:1] in "[{":
        try:
            node = json.loads(node)
        except ValueError:
            return
    if isinstance(node, dict):
        for key, value in node.items():
            if key in IMAGE_KEYS and isinstance(value, str):
                yield f"{path}.{key}", value
            else:
                yield from _images(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _images(value, f"{path}[{index}]")
