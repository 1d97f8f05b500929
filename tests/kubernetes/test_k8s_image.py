"""The runtime image on Kubernetes under the mock runtime: built and pushed to `kubernetes.image_repository`,
every pod running the pushed digest, pulled with the stack's pull Secret when the spec gives credentials; a
pinned image builds nothing."""

from __future__ import annotations

import base64
import json

import pytest
from image_checks import assert_build_inputs, build_resources, pushed_ref, workload_images
from k8s_helpers import PINNED_IMAGE, containers, named, pod_specs, resource

from infra.stackfile import load_stack
from infra.targets.kubernetes import layout, rules
from infra.targets.kubernetes.platform import docker_config, image_registry
from infra.targets.kubernetes.postgres import POSTGRES_IMAGE

BUILDING = ["k8s-dev", "k8s-prod", "k8s-edge"]


def runtime_pods(capture):
    """(owner, pod spec) of every workload running the runtime image (all but PostgreSQL)."""
    return [(owner, pod) for owner, _, pod in pod_specs(capture)
            if any(c["image"] != POSTGRES_IMAGE for c in containers(pod))]


@pytest.mark.parametrize("stack", BUILDING)
def test_the_image_is_built_and_pushed_to_the_specs_repository(captured, project, stack: str) -> None:
    spec = load_stack(stack, project_dir=project).spec
    (build,) = build_resources(captured(stack))
    credentials = spec.k8s.image_pull_secret
    registries = None  # no credentials (k8s-dev) or a reference (k8s-prod): the deployer's docker login pushes
    if credentials is not None and credentials.secure is not None:
        registries = [{"address": "registry.example.com", "username": "[secret]", "password": "[secret]"}]
    assert_build_inputs(build, project, spec.k8s.image_repository, registries)


@pytest.mark.parametrize("stack", BUILDING)
def test_every_pod_runs_the_pushed_digest(captured, project, stack: str) -> None:
    capture = captured(stack)
    ref = pushed_ref(capture, project, stack)
    pods = runtime_pods(capture)
    assert {owner.split("/")[0] for owner, _ in pods} == {"Deployment", "CronJob", "Job"}
    for owner, pod in pods:
        assert {c["image"] for c in containers(pod)} == {ref}, owner
    images = {image for _, image in workload_images(capture)}
    assert ref in images and images <= {ref, POSTGRES_IMAGE}
    (build,) = build_resources(capture)
    initial = resource(capture, ":Job", "churn-train-initial")
    assert build.urn in initial.dependencies  # the first training run waits for the push


def test_pull_secrets(captured) -> None:
    """Credentials from a Pulumi secret become the stack's dockerconfigjson Secret; a reference names an existing
    one; without credentials pods name none. Only runtime pods carry it (PostgreSQL's image is public)."""
    expected = {"k8s-edge": layout.PULL_SECRET, "k8s-prod": "registry-credentials", "k8s-refs": "ghcr-pull",
                "k8s-dev": None}
    for stack, name in expected.items():
        capture = captured(stack)
        for owner, pod in runtime_pods(capture):
            assert pod.get("imagePullSecrets") == ([{"name": name}] if name else None), (stack, owner)
        postgres = [pod for owner, _, pod in pod_specs(capture) if owner == "StatefulSet/postgresql"]
        assert all("imagePullSecrets" not in pod for pod in postgres)
    secret = named(captured("k8s-edge"), "Secret", layout.PULL_SECRET)
    assert secret["type"] == "kubernetes.io/dockerconfigjson" and secret["stringData"] == {}  # '[secret]' in capture
    assert not [s for s in captured("k8s-refs").resources if s.name == "image-pull"]


def test_docker_config_and_registry() -> None:
    document = json.loads(docker_config("registry.example.com", "pusher:s3:cret"))
    entry = document["auths"]["registry.example.com"]
    assert (entry["username"], entry["password"]) == ("pusher", "s3:cret")
    assert base64.b64decode(entry["auth"]).decode() == "pusher:s3:cret"


def test_a_pinned_image_builds_nothing_and_every_pod_runs_the_pin(captured, project) -> None:
    capture = captured("k8s-refs")
    assert build_resources(capture) == []
    for owner, pod in runtime_pods(capture):
        assert {c["image"] for c in containers(pod)} == {PINNED_IMAGE}, owner
    assert image_registry(load_stack("k8s-refs", project_dir=project).spec) == "ghcr.io"


def test_a_build_needs_a_repository_and_a_pull_secret_reference_a_secret_name(project) -> None:
    def problems(spec) -> dict[str, str]:
        return {p.path: p.message for p in rules.check(spec) if "image" in p.path}

    spec = load_stack("k8s-dev", project_dir=project).spec
    kubernetes = spec.k8s.model_copy(update={"image_repository": None})
    found = problems(spec.model_copy(update={"kubernetes": kubernetes}))
    assert list(found) == ["kubernetes.image_repository"] and found["kubernetes.image_repository"].startswith(
        "is required to push the runtime image")
    assert problems(spec.model_copy(update={"kubernetes": kubernetes, "runtime_image": PINNED_IMAGE})) == {}
    refs = load_stack("k8s-refs", project_dir=project).spec
    bad = refs.k8s.image_pull_secret.model_copy(update={"ref": "Not/A_Secret"})
    found = problems(refs.model_copy(update={"kubernetes": refs.k8s.model_copy(update={"image_pull_secret": bad})}))
    assert list(found) == ["kubernetes.image_pull_secret.ref"] and "'Not/A_Secret'" in found[
        "kubernetes.image_pull_secret.ref"]
