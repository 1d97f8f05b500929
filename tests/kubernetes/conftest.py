"""Fixtures of the Kubernetes target's tests: a frozen project copy with extra stacks, and cached captures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from k8s_helpers import PINNED_IMAGE, copy_project, run_capture

from infra.plan_capture import Capture

#: A stack exercising the other branches: external database and S3 from Pulumi secrets, a public endpoint
#: (host, TLS), a ReadWriteMany data volume, a cluster domain other than cluster.local, GPU spot training (and
#: the `gpu` class on MLflow and serving, which must not request GPUs), a remote dataset, a dashboard.
EDGE_STACK = """\
config:
  shipyard:target: kubernetes
  shipyard:environment: staging
  shipyard:kubernetes:
    namespace: ml-edge
    ingress_class: nginx
    ingress_host: ml.example.com
    ingress_tls_secret: ml-example-com-tls
    cluster_domain: k8s.example.internal
    storage_class: fast-ssd
    shared_storage_class: efs
    dashboard_url: https://grafana.example.com/d/shipyard
    image_repository: registry.example.com/ml/shipyard-runtime
    image_pull_secret: {secure: v1:cHVzaGVyOnMzY3JldA==}
  shipyard:networking:
    allowed_cidrs: [10.0.0.0/8]
  shipyard:training: {size: gpu, gpu_count: 2, spot: true}
  shipyard:registry:
    workers: 2
    server_size: gpu
    database:
      external_url: {secure: v1:c2VjcmV0LWRhdGFiYXNlLXVybA==}
    artifacts:
      s3_endpoint: http://minio.storage.svc.k8s.example.internal:9000
      bucket: mlflow
      s3_credentials: {secure: v1:YWNjZXNzOnNlY3JldA==}
  shipyard:models:
    - name: churn
      pipeline: {dataset_uri: s3://datasets/churn.parquet}
      serving: {public: true, auth: api_key, min_replicas: 0, max_replicas: 3, size: gpu}
      monitoring: {min_quality: {roc_auc: 0.8}}
"""

#: External database and S3 credentials by reference to existing Kubernetes Secrets; a pinned runtime image from
#: a private registry, pulled with an existing Secret.
REFS_STACK = """\
config:
  shipyard:target: kubernetes
  shipyard:environment: dev
  shipyard:runtime_image: """ + PINNED_IMAGE + """
  shipyard:kubernetes:
    image_pull_secret: {ref: ghcr-pull}
  shipyard:registry:
    database:
      external_url: {ref: pg-credentials/uri}
    artifacts:
      s3_endpoint: https://s3.example.com
      bucket: ml-artifacts
      s3_credentials: {ref: s3-credentials}
"""


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with two more Kubernetes stacks."""
    root = copy_project(tmp_path_factory.mktemp("k8s") / "project")
    (root / "stacks" / "Pulumi.k8s-edge.yaml").write_text(EDGE_STACK)
    (root / "stacks" / "Pulumi.k8s-refs.yaml").write_text(REFS_STACK)
    return root


@pytest.fixture(scope="session")
def captured(project: Path) -> Callable[[str], Capture]:
    """The capture of a stack, evaluated once per session (each evaluation resets the SDK's state)."""
    cache: dict[str, Capture] = {}

    def get(stack: str) -> Capture:
        if stack not in cache:
            cache[stack] = run_capture(project, stack)
        return cache[stack]

    return get
