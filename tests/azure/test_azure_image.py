"""The runtime image on Azure under the mock runtime: built from the project's Dockerfile, pushed to the stack's
Container Registry (the deployer's `az acr login`: the registry has no admin user), and run by digest in every
Container App and job."""

from __future__ import annotations

import pytest
from image_checks import assert_build_inputs, build_resources, pushed_ref, workload_images

WORKLOADS = {"azure-native:app:ContainerApp", "azure-native:app:Job"}


@pytest.mark.parametrize("stack", ["azure-dev", "azure-staging", "azure-prod"])
def test_the_image_is_built_pushed_to_the_stacks_registry_and_run_by_digest(captured, project, stack: str) -> None:
    capture = captured(stack)
    (build,) = build_resources(capture)
    (registry,) = [r for r in capture.resources if r.type == "azure-native:containerregistry:Registry"]
    server = f"{registry.inputs['registryName']}.azurecr.io"
    assert_build_inputs(build, project, f"{server}/{build.name}", None)
    ref = pushed_ref(capture, project, stack)
    images = dict(workload_images(capture))
    assert {path.split(" ")[0] for path in images} == WORKLOADS
    assert {path: image for path, image in images.items() if image != ref} == {}
    for resource in capture.resources:
        if resource.type in WORKLOADS:
            assert build.urn in resource.dependencies, resource.name
