"""Names, ports and paths of the Kubernetes target: pure functions, one place.

Every object gets an explicit name (the namespace is the stack's scope), so in-cluster DNS names and
the run configuration can be computed before anything exists.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from infra import image
from infra.packaging import PipelinePackage
from infra.spec import PlatformSpec

MLFLOW_PORT = 5000
SERVING_PORT = 8080
POSTGRES_PORT = 5432
METRICS_PORT = 9102
DNS_PORT = 53
#: Ports the Kubernetes API server listens on (managed clusters: 443; kubeadm: 6443).
API_SERVER_PORTS = (443, 6443)

#: The one non-root user every container runs as (the runtime image creates it; pods ask for it).
RUNTIME_UID = image.RUNTIME_UID

WHEEL_DIR = "/opt/shipyard/wheel"
SITE_DIR = "/opt/shipyard/site"
CONFIG_DIR = "/etc/shipyard"
DATA_DIR = "/var/lib/shipyard/data"
ARTIFACTS_DIR = "/var/lib/mlflow/artifacts"
TMP_DIR = "/tmp"
#: Where Secrets are mounted as files, one directory per Secret volume (never as environment variables).
SECRETS_DIR = "/etc/shipyard-secrets"

MLFLOW = "mlflow"
POSTGRES = "postgresql"
POSTGRES_USER = "mlflow"
POSTGRES_DB = "mlflow"
BACKEND_SECRET = "mlflow-backend-store"
S3_SECRET = "mlflow-s3"
PULL_SECRET = "runtime-image-pull"
ARTIFACTS_CLAIM = "mlflow-artifacts"
DATA_CLAIM = "shipyard-data"
WHEEL_KEY = "pipelines.whl"
#: ConfigMaps hold at most 1 MiB; the base64 of the wheel must fit with room for metadata.
MAX_WHEEL_BYTES = 700 * 1024


def namespace_name(spec: PlatformSpec) -> str:
    """The stack's namespace: `kubernetes.namespace`, or `<name>-<environment>`."""
    return spec.k8s.namespace or spec.prefix


def short_hash(text: str | bytes, length: int = 8) -> str:
    """The first `length` hex digits of the SHA-256 of `text`."""
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:length]


def service_host(name: str, namespace: str, domain: str) -> str:
    """The cluster DNS name of a Service, in the cluster's DNS `domain` (`kubernetes.cluster_domain`)."""
    return f"{name}.{namespace}.svc.{domain}"


def service_url(name: str, namespace: str, domain: str, port: int) -> str:
    """The in-cluster HTTP URL of a Service."""
    return f"http://{service_host(name, namespace, domain)}:{port}"


def tracking_uri(namespace: str, domain: str) -> str:
    """The MLflow tracking server's URL inside the cluster."""
    return service_url(MLFLOW, namespace, domain, MLFLOW_PORT)


def serving_name(model: str) -> str:
    """Deployment / Service / HPA / PDB name of a model's endpoint."""
    return f"{model}-serving"


def train_cronjob(model: str) -> str:
    """The continuous-training CronJob of a model (at most 52 characters: model names are at most 40)."""
    return f"{model}-train"


def init_job(model: str, pod_inputs: Any) -> str:
    """The initial training Job: named by a hash of what its pod runs, so a change runs a new Job."""
    return f"{train_cronjob(model)}-init-{short_hash(json.dumps(pod_inputs, sort_keys=True, default=str))}"


def drift_cronjob(model: str) -> str:
    """The drift-monitoring CronJob of a model."""
    return f"{model}-drift"


def metrics_name(model: str) -> str:
    """The Deployment / Service exposing a model's drift metrics to Prometheus."""
    return f"{model}-drift-metrics"


#: The server paths a public Ingress routes: MLflow's scoring protocol only (never /health, /metrics or /-/*).
SCORING_PATHS = ("invocations", "ping")


def api_key_secret(model: str) -> str:
    """The Secret holding a model endpoint's API key."""
    return f"{model}-api-key"


def wheel_configmap(package: PipelinePackage) -> str:
    """The immutable ConfigMap carrying the wheel, named by the package's content hash."""
    return f"pipelines-{package.content_hash[:12]}"


def config_configmap(model: str, document: str) -> str:
    """The immutable ConfigMap carrying a model's run configuration, named by a hash of the document."""
    return f"{model}-config-{short_hash(document)}"


def config_file(model: str) -> str:
    """Where a pod finds the model's run configuration."""
    return f"{CONFIG_DIR}/{model}.json"


def inference_log_uri(model: str) -> str:
    """Where serving writes the model's inference log and the monitor reads it (the shared data volume)."""
    return f"{DATA_DIR}/inference/{model}"


def reports_uri(model: str) -> str:
    """Where the monitor writes the model's drift reports."""
    return f"{DATA_DIR}/reports/{model}"


def metrics_dir(model: str) -> str:
    """The directory holding the model's drift metrics in Prometheus text format."""
    return f"{DATA_DIR}/metrics/{model}"


#: The file (under `metrics_dir`) Prometheus scrapes; `.txt` makes the file server answer `text/plain`.
METRICS_FILE = "metrics.txt"

#: `app.kubernetes.io/component` of the pods that mount the shared data volume (serving writes the inference log;
#: the drift monitor and its metrics file server read it and write reports and metrics).
DATA_COMPONENTS = ("serving", "monitoring")
#: Node labels serving replicas spread over: nodes first, then zones (where nodes carry the label).
SPREAD_TOPOLOGY_KEYS = ("kubernetes.io/hostname", "topology.kubernetes.io/zone")


def data_access_mode(spec: PlatformSpec) -> str:
    """The shared data volume's access mode: ReadWriteMany on `kubernetes.shared_storage_class`; without one,
    ReadWriteOnce (which every storage class can do), and then every pod mounting it runs on one node."""
    return "ReadWriteMany" if spec.k8s.shared_storage_class else "ReadWriteOnce"


#: `app.kubernetes.io/name` of each workload (NetworkPolicies select on it).
APP_TRAINING = "training"
APP_SERVING = "serving"
APP_MONITOR = "drift-monitor"
APP_METRICS = "drift-metrics"
#: The workloads that call the tracking server.
MLFLOW_CLIENTS = (APP_TRAINING, APP_SERVING, APP_MONITOR)
