"""The runtime image on AWS under the mock runtime: built from the project's Dockerfile, pushed to the stack's ECR
repository with an ECR token, and run by digest in every ECS task, SageMaker model and SageMaker pipeline step;
a pinned image builds nothing."""

from __future__ import annotations

import json

import pytest
from aws_helpers import ECR_IMAGE, of_type, one
from image_checks import assert_build_inputs, build_resources, pushed_ref, workload_images

from infra.image import RUNTIME_UID
from infra.plan_mocks import ACCOUNT

BUILDING = ["aws-dev", "aws-staging", "aws-prod"]
#: Where the runtime image must appear in every AWS stack: the MLflow task, each endpoint's model, and each
#: model's training and monitoring pipelines (processing and training steps).
WORKLOAD_TYPES = {"aws:ecs/taskDefinition:TaskDefinition", "aws:sagemaker/model:Model",
                  "aws:sagemaker/pipeline:Pipeline"}


@pytest.mark.parametrize("stack", BUILDING)
def test_the_image_is_built_and_pushed_to_the_stacks_ecr_repository(captured, project, stack: str) -> None:
    capture = captured(stack)
    (build,) = build_resources(capture)
    repository = one(capture, "aws:ecr/repository:Repository")
    region = one(capture, "pulumi:providers:aws").inputs["region"]
    registry = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com"
    assert_build_inputs(build, project, f"{registry}/{repository.inputs['name']}",
                        [{"address": registry, "username": "AWS", "password": "[secret]"}])
    component = next(r for r in capture.resources if r.urn == build.parent)
    assert component.type == "shipyard:index:RuntimeImage"
    assert next(r for r in capture.resources if r.urn == component.parent).type == "shipyard:aws:Foundation"
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"  # a content tag is pushed once


@pytest.mark.parametrize("stack", BUILDING)
def test_every_workload_runs_the_pushed_digest(captured, project, stack: str) -> None:
    capture = captured(stack)
    ref = pushed_ref(capture, project, stack)
    images = dict(workload_images(capture))
    assert {path.split(" ")[0] for path in images} == WORKLOAD_TYPES
    assert {path: image for path, image in images.items() if image != ref} == {}
    # The workloads wait for the push: each one depends on the build.
    (build,) = build_resources(capture)
    for resource in capture.resources:
        if resource.type in WORKLOAD_TYPES:
            assert build.urn in resource.dependencies, resource.name


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_the_mlflow_tasks_run_as_the_images_non_root_user(captured, stack: str) -> None:
    """The image's default user is root (for SageMaker); every ECS container asks for the uid the Dockerfile
    creates."""
    definitions = of_type(captured(stack), "aws:ecs/taskDefinition:TaskDefinition")
    containers = [c for d in definitions for c in json.loads(d.inputs["containerDefinitions"])]
    assert containers and {c["user"] for c in containers} == {f"{RUNTIME_UID}:{RUNTIME_UID}"}


def test_a_pinned_image_builds_nothing_and_every_workload_runs_the_pin(captured) -> None:
    capture = captured("aws-edge")
    assert build_resources(capture) == [] and not of_type(capture, "shipyard:index:RuntimeImage")
    images = dict(workload_images(capture))
    # SageMaker's managed MLflow: no ECS task on this stack.
    assert {path.split(" ")[0] for path in images} == WORKLOAD_TYPES - {"aws:ecs/taskDefinition:TaskDefinition"}
    assert set(images.values()) == {ECR_IMAGE}
