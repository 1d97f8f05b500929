"""Fixtures of the AWS target's tests: a project copy with extra stacks, cached captures, and a moto server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from aws_helpers import ECR_IMAGE
from loopback import free_port
from stack_copies import extra_stack_fixtures

#: The other branches: SageMaker's managed MLflow, an existing VPC, webhooks from a Pulumi secret and from a
#: Secrets Manager reference, a dataset in another bucket, GPU spot training, a pinned image already in ECR.
EDGE_STACK = """\
config:
  shipyard:target: aws
  shipyard:environment: staging
  shipyard:region: us-west-2
  shipyard:runtime_image: """ + ECR_IMAGE + """
  shipyard:aws: {registry_mode: sagemaker}
  shipyard:networking:
    existing_network: vpc-0abc1234
    allowed_cidrs: [10.10.0.0/16]
  shipyard:training: {size: gpu, gpu_count: 4, spot: true, schedule: "30 2 * * 1-5"}
  shipyard:models:
    - name: churn
      pipeline: {dataset_uri: s3://datasets-bucket/churn/train.parquet}
      serving: {size: gpu, rollout: {strategy: blue_green, bake_minutes: 5}}
      monitoring:
        min_quality: {roc_auc: 0.8}
        alerts:
          - {kind: webhook, url: {secure: v1:aHR0cHM6Ly9ob29rcy5leGFtcGxlLmNvbS9hYmM=}}
          - {kind: webhook, url: {ref: "arn:aws:secretsmanager:us-west-2:123456789012:secret:hook-Ab12Cd"}}
    - name: price
      pipeline:
        task: regression
        target_column: target
        estimator: ridge
        gates: {primary_metric: r2, minimum: {r2: 0.5}}
      serving: {min_replicas: 0, max_replicas: 2, rollout: {strategy: rolling, bake_minutes: 8}}
      monitoring: {min_quality: {rmse: 12.5}, retrain_on_drift: false}
"""

#: Self-hosted MLflow on an external database given by reference.
EXTERNAL_DB_STACK = """\
config:
  shipyard:target: aws
  shipyard:environment: dev
  shipyard:region: eu-central-1
  shipyard:registry:
    database:
      external_url: {ref: "arn:aws:secretsmanager:eu-central-1:123456789012:secret:mlflow-db-Xy12Ab"}
"""

#: A prod stack asking for a public endpoint: the AWS target refuses it.
PUBLIC_STACK = """\
config:
  shipyard:target: aws
  shipyard:environment: prod
  shipyard:region: eu-west-1
  shipyard:models:
    - name: churn
      serving: {public: true}
"""

#: The longest names a spec allows: a 40-character platform name, 'staging', a 40-character model name.
LONG_NAME, LONG_MODEL = "p" * 20 + "-" + "q" * 19, "m" * 40
LONG_STACK = f"""\
config:
  shipyard:target: aws
  shipyard:name: {LONG_NAME}
  shipyard:environment: staging
  shipyard:region: us-east-1
  shipyard:models:
    - {{name: churn, remove: true}}
    - name: {LONG_MODEL}
"""

EXTRA_STACKS = {"aws-edge": EDGE_STACK, "aws-extdb": EXTERNAL_DB_STACK, "aws-public": PUBLIC_STACK,
                "aws-long": LONG_STACK}


project, captured = extra_stack_fixtures(EXTRA_STACKS)



#: What boto3, s3fs and MLflow need to talk to moto instead of AWS.
MOTO_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server on loopback for the session, with the environment pointing every AWS client at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    env = {**MOTO_ENV, "AWS_ENDPOINT_URL": url, "MLFLOW_S3_ENDPOINT_URL": url}
    saved = {key: os.environ.get(key) for key in [*env, "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
    os.environ.update(env)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(key, None)
    try:
        yield url
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
