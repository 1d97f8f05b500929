"""The runtime image on GCP under the mock runtime: built from the project's Dockerfile, pushed to the stack's
Artifact Registry repository with the deployer's access token, and run by digest in every Cloud Run service and
job; a pinned image builds nothing."""

from __future__ import annotations

import pytest
from gcp_helpers import PINNED_IMAGE
from image_checks import assert_build_inputs, build_resources, pushed_ref, workload_images

from infra.stackfile import load_stack

BUILDING = ["gcp-dev", "gcp-staging", "gcp-prod"]


@pytest.mark.parametrize("stack", BUILDING)
def test_the_image_is_built_and_pushed_to_the_stacks_artifact_registry(captured, project, stack: str) -> None:
    spec = load_stack(stack, project_dir=project).spec
    (build,) = build_resources(captured(stack))
    host = f"{spec.region}-docker.pkg.dev"
    repository = f"{host}/{spec.gcp_settings.project}/{spec.prefix}-runtime"
    assert_build_inputs(build, project, repository,
                        [{"address": host, "username": "oauth2accesstoken", "password": "[secret]"}])


@pytest.mark.parametrize("stack", BUILDING)
def test_every_workload_runs_the_pushed_digest(captured, project, stack: str) -> None:
    capture = captured(stack)
    ref = pushed_ref(capture, project, stack)
    images = dict(workload_images(capture))
    assert {path.split(" ")[0] for path in images} >= {"gcp:cloudrunv2/service:Service", "gcp:cloudrunv2/job:Job"}
    assert {path: image for path, image in images.items() if image != ref} == {}
    (build,) = build_resources(capture)
    for resource in capture.resources:
        if resource.type in ("gcp:cloudrunv2/service:Service", "gcp:cloudrunv2/job:Job"):
            assert build.urn in resource.dependencies, resource.name


def test_a_pinned_image_builds_nothing_and_every_workload_runs_the_pin(captured) -> None:
    capture = captured("gcp-pinned")
    assert build_resources(capture) == []
    assert set(dict(workload_images(capture)).values()) == {PINNED_IMAGE}


def test_the_gke_profile_builds_once_and_every_pod_runs_the_pushed_digest(captured, project) -> None:
    """On the cluster profile the GCP foundation builds and pushes; the Kubernetes workloads run that digest and
    build nothing of their own (no second build, no pull Secret: the nodes pull from Artifact Registry)."""
    stack = "gcp-gke-prod"
    spec = load_stack(stack, project_dir=project).spec
    capture = captured(stack)
    (build,) = build_resources(capture)
    host = f"{spec.region}-docker.pkg.dev"
    assert_build_inputs(build, project, f"{host}/{spec.gcp_settings.project}/{spec.prefix}-runtime",
                        [{"address": host, "username": "oauth2accesstoken", "password": "[secret]"}])
    ref = pushed_ref(capture, project, stack)
    images = dict(workload_images(capture))
    kinds = {path.split(" ")[0] for path in images}
    assert kinds == {"kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:CronJob", "kubernetes:batch/v1:Job"}
    assert {path: image for path, image in images.items() if image != ref} == {}
    assert not [r for r in capture.resources if r.type == "kubernetes:core/v1:Secret" and r.name == "image-pull"]
