"""SageMaker pipeline definitions, as pure functions of plain strings: the jobs that run the pipelines wheel.

Every step runs the one runtime image. SageMaker downloads the inputs into the job (the content-addressed
wheel's prefix, the model's content-addressed run configuration, and for the steps after training the
train step's result), and the container installs the wheel into a scratch directory and runs
`python -m pipelines <step> --config run.json`: nothing but Python and the wheel's dependencies needs to
be in the image, and nothing is fetched from the internet.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from infra.cron import Cron
from infra.targets.aws.sizes import takes_volume_kms_key
from pipelines.adapters.aws import REASON_PARAMETER as REASON

PIPELINE_SCHEMA_VERSION = "2020-12-01"
VOLUME_GB = 30
#: Where SageMaker puts the inputs, per job kind.
LOCAL_INPUTS = {"processing": "/opt/ml/processing/input", "training": "/opt/ml/input/data"}

#: EventBridge's day-of-week names, indexed by cron's weekday number (0 = Sunday).
_DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
#: The lowest value of minute, hour, day-of-month and month: cron's `*/S` starts there (EventBridge wants `N/S`).
_FIELD_STARTS = (0, 0, 1, 1)


def _eventbridge_field(text: str, start: int) -> str:
    """One numeric field: cron's syntax is EventBridge's, except that a step starts from a number."""
    return ",".join(f"{start}/{part[2:]}" if part.startswith("*/") else part for part in text.split(","))


def _weekday_field(weekdays: frozenset[int]) -> str:
    """A set of weekdays (0 = Sunday) as EventBridge names, consecutive days as ranges: {1..5} -> 'MON-FRI'."""
    runs: list[list[int]] = []
    for day in sorted(weekdays):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(_DOW_NAMES[r[0]] if len(r) == 1 else f"{_DOW_NAMES[r[0]]}-{_DOW_NAMES[r[-1]]}" for r in runs)


def aws_cron(expression: str) -> str:
    """A five-field cron expression as EventBridge's `cron(min hour dom month dow year)`.

    The day-of-week field is rebuilt from the parsed set of weekdays (0 and 7 are both Sunday), `*` when
    all seven days match. EventBridge wants `?` in exactly one of the two day fields, so a restricted
    day-of-week puts `?` in day-of-month and otherwise day-of-week is `?`. When both are restricted cron
    matches either (OR), which EventBridge cannot express unless one of them covers every day anyway.
    """
    cron = Cron.parse(expression)
    minute, hour, dom, month = (_eventbridge_field(text, start)
                                for text, start in zip(expression.split()[:4], _FIELD_STARTS, strict=True))
    every_weekday = len(cron.weekdays) == 7
    if cron.day_restricted and cron.weekday_restricted:
        if every_weekday or cron.days == frozenset(range(1, 32)):
            return f"cron({minute} {hour} * {month} ? *)"
        raise ValueError(f"{expression!r}: EventBridge cannot match day-of-month OR day-of-week; "
                         "restrict only one of them")
    if every_weekday:
        return f"cron({minute} {hour} {dom} {month} ? *)"
    return f"cron({minute} {hour} ? {month} {_weekday_field(cron.weekdays)} *)"


@dataclass(frozen=True)
class JobContext:
    """Everything a job of one model's pipeline needs, as resolved strings."""

    image: str
    role_arn: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    kms_key_arn: str
    #: s3://bucket/packages/<sha256>/ (holds exactly the one wheel).
    package_prefix: str
    #: s3://bucket/configs/<model>/<hash>/ (holds exactly run.json).
    config_prefix: str
    #: s3://bucket/training/<model>/ (training-job outputs).
    output_uri: str
    max_runtime_seconds: int
    #: The region every AWS client in the job talks to (boto3 finds none by itself inside a job).
    region: str
    spot: bool = False


#: Where a training job's model files go; SageMaker uploads the directory as the job's model.tar.gz.
MODEL_DIR = "/opt/ml/model"
_JSON_FIELD = "python -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])'"


def bootstrap_command(step: str, inputs_dir: str, *, scratch: str = "/tmp/shipyard-pipelines",
                      model_dir: str = MODEL_DIR) -> str:
    """The container's shell script for one step: install the wheel into scratch space, then run the step.

    `train` saves its JSON result (the MLflow run id) as `train.json` in `model_dir`, which SageMaker
    uploads; `evaluate` and `register` read the run id from that artifact (their `train` input);
    `register` then promotes the version it registered, which moves the champion only if its gates passed.
    """
    train_result = f"{model_dir}/train.json"
    run = f"python -m pipelines {{}} --config {inputs_dir}/config/run.json"
    run_id = (f"mkdir -p /tmp/train && tar -xzf {inputs_dir}/train/model.tar.gz -C /tmp/train"
              f" && RUN_ID=$({_JSON_FIELD} /tmp/train/train.json run_id)")
    scripts = {
        "train": f"{run.format('train')} --json > {train_result} && cat {train_result}",
        "evaluate": f"{run_id} && exec {run.format('evaluate')} --run-id \"$RUN_ID\"",
        "register": (f"{run_id} && {run.format('register')} --run-id \"$RUN_ID\" --json > /tmp/register.json"
                     f" && cat /tmp/register.json && VERSION=$({_JSON_FIELD} /tmp/register.json version)"
                     f" && exec {run.format('promote')} --version \"$VERSION\""),
    }
    script = scripts.get(step, f"exec {run.format(shlex.quote(step))}")
    return (f"set -eu; python -m pip install --quiet --no-deps --no-index --target {scratch} "
            f"{inputs_dir}/package/*.whl && export PYTHONPATH={scratch} && {script}")


def step_name(step: str) -> str:
    """A SageMaker step name for a pipelines step: 'validate-data' -> 'ValidateData'."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", step))


def _volume(instance: str, ctx: JobContext) -> dict[str, Any]:
    return {"VolumeKmsKeyId": ctx.kms_key_arn} if takes_volume_kms_key(instance) else {}


def region_variables(region: str) -> dict[str, str]:
    """The region for every AWS SDK in a container: boto3 reads AWS_DEFAULT_REGION, other SDKs AWS_REGION.

    SageMaker jobs, endpoints and ECS tasks set neither, and without them `boto3.client("cloudwatch")` raises
    NoRegionError: the drift metric would never reach CloudWatch.
    """
    return {"AWS_DEFAULT_REGION": region, "AWS_REGION": region}


def job_environment(ctx: JobContext) -> dict[str, str]:
    """A job's environment: its region, and unbuffered output so CloudWatch Logs shows progress as it happens."""
    return {"PYTHONUNBUFFERED": "1", **region_variables(ctx.region)}


def processing_step(step: str, ctx: JobContext, instance: str, depends_on: list[str],
                    train_step: str | None = None) -> dict[str, Any]:
    """A Processing step running `python -m pipelines <step>` (with the train step's artifact when named)."""
    local = LOCAL_INPUTS["processing"]

    def s3_input(name: str, uri: Any) -> dict[str, Any]:
        return {"InputName": name, "AppManaged": False, "S3Input": {
            "S3Uri": uri, "LocalPath": f"{local}/{name}", "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated"}}

    inputs = [s3_input("package", ctx.package_prefix), s3_input("config", ctx.config_prefix)]
    if train_step:
        inputs.append(s3_input("train", {"Get": f"Steps.{step_name(train_step)}.ModelArtifacts.S3ModelArtifacts"}))

    arguments = {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": instance, "InstanceCount": 1,
                                                  "VolumeSizeInGB": VOLUME_GB, **_volume(instance, ctx)}},
        "AppSpecification": {"ImageUri": ctx.image,
                             "ContainerEntrypoint": ["sh", "-c", bootstrap_command(step, local)]},
        "RoleArn": ctx.role_arn,
        "ProcessingInputs": inputs,
        "NetworkConfig": {"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": True,
                          "VpcConfig": {"SecurityGroupIds": list(ctx.security_groups), "Subnets": list(ctx.subnets)}},
        "StoppingCondition": {"MaxRuntimeInSeconds": ctx.max_runtime_seconds},
        "Environment": job_environment(ctx),
    }
    return _step(step, "Processing", arguments, depends_on)


def training_step(step: str, ctx: JobContext, instance: str, depends_on: list[str]) -> dict[str, Any]:
    """A Training step running `python -m pipelines <step>` (managed spot capacity when the spec asks)."""
    local = LOCAL_INPUTS["training"]

    def channel(name: str, uri: str) -> dict[str, Any]:
        return {"ChannelName": name, "InputMode": "File", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}

    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": ctx.max_runtime_seconds}
    if ctx.spot:
        stopping["MaxWaitTimeInSeconds"] = ctx.max_runtime_seconds * 2
    arguments = {
        "AlgorithmSpecification": {"TrainingImage": ctx.image, "TrainingInputMode": "File",
                                   "ContainerEntrypoint": ["sh", "-c", bootstrap_command(step, local)]},
        "RoleArn": ctx.role_arn,
        "InputDataConfig": [channel("package", ctx.package_prefix), channel("config", ctx.config_prefix)],
        "OutputDataConfig": {"S3OutputPath": ctx.output_uri, "KmsKeyId": ctx.kms_key_arn},
        "ResourceConfig": {"InstanceType": instance, "InstanceCount": 1, "VolumeSizeInGB": VOLUME_GB,
                           **_volume(instance, ctx)},
        "VpcConfig": {"SecurityGroupIds": list(ctx.security_groups), "Subnets": list(ctx.subnets)},
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": ctx.spot,
        "StoppingCondition": stopping,
        "Environment": job_environment(ctx),
    }
    return _step(step, "Training", arguments, depends_on)


def _step(step: str, kind: str, arguments: dict[str, Any], depends_on: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": step_name(step), "Type": kind, "Arguments": arguments}
    if depends_on:
        out["DependsOn"] = [step_name(d) for d in depends_on]
    return out


def pipeline_definition(steps: list[dict[str, Any]], default_reason: str) -> dict[str, Any]:
    """A SageMaker pipeline definition of `steps`, with the `Reason` parameter."""
    return {
        "Version": PIPELINE_SCHEMA_VERSION,
        "Metadata": {},
        "Parameters": [{"Name": REASON, "Type": "String", "DefaultValue": default_reason}],
        "Steps": steps,
    }


def training_pipeline(ctx: JobContext, *, training_instance: str, processing_instance: str) -> dict[str, Any]:
    """validate-data -> train -> evaluate -> register (and promote), each gated on the one before.

    A step that fails stops the execution: invalid data at ValidateData, a challenger the gates reject at
    Evaluate (exit code 3); nothing is registered then and the champion stays where it is.
    """
    return pipeline_definition([
        processing_step("validate-data", ctx, processing_instance, []),
        training_step("train", ctx, training_instance, ["validate-data"]),
        processing_step("evaluate", ctx, processing_instance, ["train"], train_step="train"),
        processing_step("register", ctx, processing_instance, ["evaluate"], train_step="train"),
    ], default_reason="schedule")


def monitoring_pipeline(ctx: JobContext, *, processing_instance: str) -> dict[str, Any]:
    """One `monitor` step: the drift job over the model's inference window."""
    return pipeline_definition([processing_step("monitor", ctx, processing_instance, [])], default_reason="schedule")
