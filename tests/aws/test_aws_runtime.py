"""The AWS runtime adapters against a real moto server on loopback: S3 data, CloudWatch, SageMaker, MLflow."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest

from infra.targets.aws import jobs
from pipelines.adapters import aws
from pipelines.config import from_dict
from pipelines.sinks import Metric, get_sink

BUCKET = "shipyard-test-artifacts"
NAMESPACE = "Shipyard/shipyard-test"


@pytest.fixture(scope="module")
def s3(moto_endpoint: str):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ S3 data


def test_datasets_from_s3_csv_and_parquet(s3) -> None:
    """The pipelines read datasets from S3 through the same fsspec code as everywhere else."""
    from pipelines.data import read_dataset

    frame = pd.DataFrame({"x1": [0.5, 1.5, 2.5], "color": ["red", "blue", "red"], "label": [0, 1, 0]})
    s3.put_object(Bucket=BUCKET, Key="data/train.csv", Body=frame.to_csv(index=False).encode())
    s3.put_object(Bucket=BUCKET, Key="data/train.parquet", Body=_parquet(frame))
    csv = read_dataset(f"s3://{BUCKET}/data/train.csv")
    parquet = read_dataset(f"s3://{BUCKET}/data/train.parquet")
    pd.testing.assert_frame_equal(csv.frame, frame)
    pd.testing.assert_frame_equal(parquet.frame, frame)
    assert csv.content_hash != parquet.content_hash  # the hash is of the bytes read


def test_inference_logs_from_s3(s3) -> None:
    """The monitor's window reader on the server's Parquet logs in S3: only rows inside the window."""
    from pipelines.monitor import read_window

    now = pd.Timestamp.now(tz="UTC")
    old = pd.DataFrame({"x1": [9.0], "prediction": [1], "_timestamp": [now - pd.Timedelta(days=3)],
                        "_model_version": ["1"]})
    new = pd.DataFrame({"x1": [0.1, 0.2], "prediction": [0, 1], "_timestamp": [now, now], "_model_version": ["2"] * 2})
    s3.put_object(Bucket=BUCKET, Key="inference/churn/2026-01-01/a.parquet", Body=_parquet(old))
    s3.put_object(Bucket=BUCKET, Key="inference/churn/2026-01-02/b.parquet", Body=_parquet(new))
    everything, files = read_window(f"s3://{BUCKET}/inference/churn", window_hours=24 * 7, now=now.to_pydatetime())
    assert (len(everything), files) == (3, 2)
    recent, _ = read_window(f"s3://{BUCKET}/inference/churn", window_hours=1, now=now.to_pydatetime())
    assert recent["x1"].tolist() == [0.1, 0.2] and recent["_model_version"].tolist() == ["2", "2"]


# ------------------------------------------------------------------------------------------------ CloudWatch


def test_cloudwatch_sink_publishes_metrics(moto_endpoint: str) -> None:
    sink = get_sink(f"cloudwatch:{NAMESPACE}")
    assert isinstance(sink, aws.CloudWatchSink)
    features = [f"f{i:03d}" for i in range(600)]  # 2 datums per metric: 1,200+ datums, two PutMetricData calls
    metrics = [Metric("shipyard_drift_feature_psi", {"feature": name, "kind": "numeric"}, 0.01 * i)
               for i, name in enumerate(features)]
    metrics += [Metric(aws.VERDICT_METRIC, {}, 1.0), Metric("shipyard_drift_covariate", {}, float("nan"))]
    sink.emit(metrics, model="churn", version="7")

    cloudwatch = boto3.client("cloudwatch")
    pages = cloudwatch.get_paginator("list_metrics").paginate(Namespace=NAMESPACE,
                                                              MetricName="shipyard_drift_feature_psi")
    listed = [m for page in pages for m in page["Metrics"]]
    dimension_sets = {tuple(sorted(d["Name"] for d in m["Dimensions"])) for m in listed}
    assert dimension_sets == {("Feature", "Kind", "Model", "Version"), ("Feature", "Kind", "Model")}
    assert len(listed) == 2 * len(features)
    assert not cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName="shipyard_drift_covariate")["Metrics"]

    now = dt.datetime.now(dt.UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName=aws.VERDICT_METRIC, Dimensions=[{"Name": "Model", "Value": "churn"}],
        StartTime=now - dt.timedelta(minutes=10), EndTime=now + dt.timedelta(minutes=1), Period=300,
        Statistics=["Maximum"])
    assert [p["Maximum"] for p in stats["Datapoints"]] == [1.0]
    versioned = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="shipyard_drift_feature_psi",
        Dimensions=[{"Name": "Model", "Value": "churn"}, {"Name": "Version", "Value": "7"},
                    {"Name": "Feature", "Value": "f010"}, {"Name": "Kind", "Value": "numeric"}],
        StartTime=now - dt.timedelta(minutes=10), EndTime=now + dt.timedelta(minutes=1), Period=300,
        Statistics=["Maximum"])
    assert [round(p["Maximum"], 6) for p in versioned["Datapoints"]] == [0.1]


def test_sink_batches_at_most_1000_per_call() -> None:
    calls: list[int] = []

    class Recorder:
        def put_metric_data(self, Namespace: str, MetricData: list) -> None:
            calls.append(len(MetricData))

    sink = aws.CloudWatchSink(NAMESPACE, cloudwatch=Recorder())
    sink.emit([Metric("m", {"feature": str(i)}, 1.0) for i in range(1100)], model="churn", version="1")
    assert calls == [1000, 1000, 200]


def test_drift_alarm_defined_and_read_back(moto_endpoint: str) -> None:
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="shipyard-test-churn-alerts")["TopicArn"]
    request = aws.drift_alarm_request("shipyard-test-churn-drift", namespace=NAMESPACE, model="churn", actions=[topic])
    boto3.client("cloudwatch").put_metric_alarm(**request)
    (alarm,) = boto3.client("cloudwatch").describe_alarms(AlarmNames=["shipyard-test-churn-drift"])["MetricAlarms"]
    assert alarm["MetricName"] == aws.VERDICT_METRIC == request["MetricName"]
    assert alarm["Namespace"] == NAMESPACE and alarm["Dimensions"] == [{"Name": "Model", "Value": "churn"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 300, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1.0, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "ignore"
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]


# ------------------------------------------------------------------------------------------------ SageMaker


def test_retraining_starts_the_sagemaker_pipeline(moto_endpoint: str) -> None:
    """The trigger starts an execution of the pipeline the program defines, with the reason recorded."""
    sagemaker = boto3.client("sagemaker")
    ctx = jobs.JobContext(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/runtime:1", role_arn=
                          "arn:aws:iam::123456789012:role/jobs", subnets=("subnet-1",), security_groups=("sg-1",),
                          kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k", package_prefix="s3://b/packages/x/",
                          config_prefix="s3://b/configs/churn/y/", output_uri="s3://b/training/churn/",
                          max_runtime_seconds=3600, region="us-east-1")
    definition = jobs.training_pipeline(ctx, training_instance="ml.m5.large", processing_instance="ml.m5.large")
    sagemaker.create_pipeline(PipelineName="shipyard-test-training-churn", PipelineDefinition=json.dumps(definition),
                              RoleArn="arn:aws:iam::123456789012:role/pipeline")
    config = from_dict({"model_name": "churn", "tracking_uri": "http://mlflow.internal"})
    trigger = aws.SageMakerPipelineTrigger("shipyard-test-training-churn")
    started = trigger.start("drift: covariate shift in x1", config)
    assert started.startswith("sagemaker-pipeline:arn:aws:sagemaker:us-east-1:")
    arn = started.removeprefix("sagemaker-pipeline:")
    parameters = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert parameters == [{"Name": "Reason", "Value": "drift: covariate shift in x1"}]
    (execution,) = sagemaker.list_pipeline_executions(
        PipelineName="shipyard-test-training-churn")["PipelineExecutionSummaries"]
    assert execution["PipelineExecutionDescription"] == "retrain churn: drift: covariate shift in x1"


def test_trigger_registry_names_the_adapter() -> None:
    from pipelines.triggers import get_trigger

    assert isinstance(get_trigger("sagemaker-pipeline:shipyard-test-training-churn"), aws.SageMakerPipelineTrigger)


# ------------------------------------------------------------------------------------------------ MLflow


def test_mlflow_artifacts_land_in_s3(s3, tmp_path: Path) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("aws-artifacts", artifact_location=f"s3://{BUCKET}/mlflow")
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    with mlflow.start_run(experiment_id=experiment) as run:
        # Requirements given, so MLflow does not infer them in a subprocess. Cloudpickle, because importing skops
        # after pulumi_aws makes skops touch every lazy pulumi_aws module (tens of seconds, nothing to learn here).
        mlflow.sklearn.log_model(model, name="model", input_example=x[:2], pip_requirements=["scikit-learn"],
                                 serialization_format="cloudpickle")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="mlflow/")["Contents"]]
    assert any(k.endswith("/artifacts/MLmodel") for k in keys), keys
    assert any(k.endswith("/artifacts/model.pkl") for k in keys), keys
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.predict(x[:5]).tolist() == model.predict(x[:5]).tolist()


# ------------------------------------------------------------------------------------------------ imports


def test_other_targets_never_load_the_aws_sdk() -> None:
    loaded = "('boto3', 'botocore', 's3fs', 'pipelines.adapters')"
    code = ("import sys, pipelines.sinks, pipelines.triggers, pipelines.config, pipelines.monitor; "
            f"print(sorted(m for m in sys.modules if m.startswith({loaded})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------------ job contract


@pytest.mark.slow
def test_job_scripts_chain_train_evaluate_register(project: Path, tmp_path: Path) -> None:
    """What the SageMaker jobs run, run here with SageMaker's input layout and the real wheel: train (its result
    saved as the model artifact), evaluate and register (the run id read from that artifact), ending with a
    promoted champion. (validate-data and monitor use the same script with a plain step.)"""
    import tarfile

    import mlflow

    from infra.packaging import build_wheel

    package = build_wheel(project)
    inputs, model_dir, scratch = tmp_path / "input", tmp_path / "model", tmp_path / "scratch"
    for directory in (inputs / "package", inputs / "config", inputs / "train", model_dir):
        directory.mkdir(parents=True)
    (inputs / "package" / package.filename).write_bytes(package.path.read_bytes())
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (inputs / "config" / "run.json").write_text(json.dumps({
        "version": 1, "model_name": "churn", "tracking_uri": tracking,
        "dataset_uri": "demo://classification?rows=400&seed=3", "target_column": "label",
        "gates": {"primary_metric": "roc_auc", "minimum": {"roc_auc": 0.6}, "max_latency_ms": 1000}}))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONNOUSERSITE": "1"}

    def run(step: str) -> str:
        script = jobs.bootstrap_command(step, str(inputs), scratch=str(scratch), model_dir=str(model_dir))
        done = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{step}: {done.stdout[-1000:]} {done.stderr[-2000:]}"
        return done.stdout

    run("train")
    assert (scratch / "pipelines" / "__main__.py").is_file()
    assert list(scratch.glob(f"shipyard_pipelines-{package.version}.dist-info"))
    run_id = json.loads((model_dir / "train.json").read_text())["run_id"]
    with tarfile.open(inputs / "train" / "model.tar.gz", "w:gz") as artifact:  # what SageMaker uploads
        artifact.add(model_dir / "train.json", arcname="train.json")
    run("evaluate")
    registered = run("register")
    assert run_id in registered
    client = mlflow.MlflowClient(tracking_uri=tracking)
    champion = client.get_model_version_by_alias("churn", "champion")
    assert champion.run_id == run_id
