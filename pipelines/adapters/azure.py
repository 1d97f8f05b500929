"""Azure runtime adapters: drift metrics to Azure Monitor, retraining through the Container Apps jobs API,
and the contract between the Azure program and its containers (environment, wheel bootstrap, alert).

Datasets, inference logs and reports on `az://` / `abfs://` need no adapter: `pipelines.storage` reads and
writes every object store through fsspec (adlfs here), which takes the account from
`AZURE_STORAGE_ACCOUNT_NAME` and authenticates with the workload's managed identity (`AZURE_CLIENT_ID`), or
with `AZURE_STORAGE_CONNECTION_STRING` against Azurite. MLflow's artifacts live on `wasbs://` (its Azure
client reads the same variables; `abfss://` would need another SDK and ignores the connection string).

- `AzureMonitorSink` (`azure-monitor:<resource id>` in a run configuration's `sinks`): each metric of a
  monitoring run as an Azure Monitor custom metric on that resource (the platform's Application Insights),
  one request per metric name, posted to `$SHIPYARD_AZURE_MONITOR_ENDPOINT` (`https://<region>.monitoring.
  azure.com`, set by the program).
- `ContainerAppsJobTrigger` (`container-apps-job:<job resource id>`): start the model's training job through
  Azure Resource Manager (`$SHIPYARD_AZURE_ARM_ENDPOINT`, default management.azure.com).
- `DRIFT_ALERT`: the metric alert on the monitor's verdict, declared by the program from this definition.

Tokens come from azure-identity's DefaultAzureCredential (imported on first use), unless a credential is given.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import urllib.request
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import RunConfig
    from pipelines.sinks import Metric

MODEL_DIMENSION = "Model"
VERSION_DIMENSION = "Version"
#: The monitor's verdict: retraining is warranted (drift of major severity, or quality under its floor).
VERDICT_METRIC = "shipyard_retrain_warranted"
#: Azure Monitor accepts at most this many dimensions on a custom metric.
MAX_DIMENSIONS = 10
MONITOR_ENDPOINT_ENV = "SHIPYARD_AZURE_MONITOR_ENDPOINT"
ARM_ENDPOINT_ENV = "SHIPYARD_AZURE_ARM_ENDPOINT"
NAMESPACE_ENV = "SHIPYARD_METRIC_NAMESPACE"
ARM_ENDPOINT = "https://management.azure.com"
MONITOR_SCOPE = "https://monitoring.azure.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"
#: The Container Apps API version of the jobs `start` action (the one pulumi-azure-native 3.x declares jobs with).
CONTAINER_APPS_API_VERSION = "2025-02-02-preview"
#: The metric alert on the verdict: one datum of 1 in a five-minute window fires it; it does not resolve by
#: itself, so one drift episode is one notification.
DRIFT_ALERT: dict[str, Any] = {
    "metric_name": VERDICT_METRIC,
    "time_aggregation": "Maximum",
    "operator": "GreaterThanOrEqual",
    "threshold": 1.0,
    "window_size": "PT5M",
    "evaluation_frequency": "PT5M",
    "severity": 2,
    "auto_mitigate": False,
}
WHEEL_DIR = "/tmp/shipyard-pipelines"

#: Run by `python -c` in every Azure container before the pipelines: fetch the content-addressed wheel from
#: blob storage (fsspec + adlfs, the workload's identity), install it into a scratch directory and exec
#: `python -m pipelines <args>`. Only the image's dependencies are needed; nothing comes from the internet.
BOOTSTRAP = """\
import os, subprocess, sys
import fsspec
uri, args = sys.argv[1], sys.argv[2:]
wheel = os.path.join("/tmp", uri.rsplit("/", 1)[-1])
with fsspec.open(uri, "rb") as source, open(wheel, "wb") as target:
    target.write(source.read())
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                os.environ.get("SHIPYARD_WHEEL_DIR", "/tmp/shipyard-pipelines"), wheel], check=True)
os.environ["PYTHONPATH"] = os.environ.get("SHIPYARD_WHEEL_DIR", "/tmp/shipyard-pipelines")
os.execv(sys.executable, [sys.executable, "-m", "pipelines", *args])
"""


def bootstrap_command(package_uri: str, *args: str) -> list[str]:
    """The container command that installs the wheel at `package_uri` and runs `python -m pipelines <args>`."""
    return ["python", "-c", BOOTSTRAP, package_uri, *args]


def artifact_uri(account: str, container: str) -> str:
    """MLflow's artifact root in a blob container (wasbs://, which MLflow's Azure client and Azurite both take)."""
    return f"wasbs://{container}@{account}.blob.core.windows.net/"


def runtime_environment(*, account: str, client_id: str, region: str, namespace: str) -> dict[str, str]:
    """What every Azure container needs in its environment: the storage account adlfs uses, the user-assigned
    identity DefaultAzureCredential picks, the regional Azure Monitor endpoint and the metric namespace."""
    return {"AZURE_STORAGE_ACCOUNT_NAME": account, "AZURE_CLIENT_ID": client_id,
            MONITOR_ENDPOINT_ENV: f"https://{region}.monitoring.azure.com", NAMESPACE_ENV: namespace,
            "PYTHONUNBUFFERED": "1"}


def default_credential() -> Any:
    """azure-identity's DefaultAzureCredential (a managed identity in Azure, AZURE_CLIENT_ID picks which)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _post(url: str, body: Any, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text.strip() else {}


# ------------------------------------------------------------------------------------------- Azure Monitor


def dimension_name(label: str) -> str:
    """A metric label as a dimension name: 'feature' -> 'Feature', 'p_value' -> 'PValue'."""
    return "".join(part.capitalize() for part in label.split("_"))


def metric_requests(metrics: Iterable[Metric], *, namespace: str, model: str, version: str,
                    timestamp: dt.datetime) -> list[dict[str, Any]]:
    """The custom-metric request bodies of a monitoring run: one per (metric, dimension names), each series
    one gauge reading (min = max = sum, count 1). Non-finite values are dropped (Azure Monitor refuses them)."""
    grouped: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for metric in metrics:
        value = float(metric.value)
        if not math.isfinite(value):
            continue
        labels = sorted((dimension_name(k), str(v)[:256]) for k, v in metric.labels.items() if str(v) != "")
        dims = [(MODEL_DIMENSION, model), (VERSION_DIMENSION, str(version)), *labels][:MAX_DIMENSIONS]
        key = (metric.name, tuple(name for name, _ in dims))
        grouped.setdefault(key, []).append({"dimValues": [v for _, v in dims], "min": value, "max": value,
                                            "sum": value, "count": 1})
    moment = timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [{"time": moment, "data": {"baseData": {"metric": name, "namespace": namespace, "dimNames": list(dims),
                                                   "series": series}}}
            for (name, dims), series in grouped.items()]


def metric_namespace(platform: str, environment: str) -> str:
    """The custom-metric namespace of a platform's drift and quality metrics."""
    return f"shipyard/{platform}-{environment}"


class AzureMonitorSink:
    """Publishes a monitoring run's metrics as Azure Monitor custom metrics (`azure-monitor:<resource id>`)."""

    def __init__(self, resource_id: str | None = None, *, namespace: str | None = None, credential: Any = None,
                 endpoint: str | None = None) -> None:
        if not resource_id or not resource_id.startswith("/subscriptions/"):
            raise ValueError("the azure-monitor sink needs a resource id: 'azure-monitor:/subscriptions/...'")
        self.resource_id = resource_id
        self.namespace = namespace
        self._credential = credential
        self._endpoint = endpoint

    def emit(self, report_metrics: Iterable[Metric], *, model: str, version: str) -> None:
        """Post the metrics, one request per metric name."""
        endpoint = self._endpoint or os.environ.get(MONITOR_ENDPOINT_ENV)
        if not endpoint:
            raise RuntimeError(f"the azure-monitor sink needs ${MONITOR_ENDPOINT_ENV} "
                               "(https://<region>.monitoring.azure.com)")
        namespace = self.namespace or os.environ.get(NAMESPACE_ENV, "shipyard")
        bodies = metric_requests(report_metrics, namespace=namespace, model=model, version=version,
                                 timestamp=dt.datetime.now(dt.UTC))
        if not bodies:
            return
        token = (self._credential or default_credential()).get_token(MONITOR_SCOPE).token
        url = f"{endpoint.rstrip('/')}{self.resource_id}/metrics"
        for body in bodies:
            _post(url, body, token)


# --------------------------------------------------------------------------------------------- retraining


def job_start_url(job_id: str, arm: str = ARM_ENDPOINT) -> str:
    """The ARM URL that starts an execution of a Container Apps job."""
    return f"{arm.rstrip('/')}{job_id}/start?api-version={CONTAINER_APPS_API_VERSION}"


class ContainerAppsJobTrigger:
    """Starts the model's training job (`container-apps-job:<job resource id>`)."""

    def __init__(self, target: str = "", *, credential: Any = None, endpoint: str | None = None) -> None:
        if not target.startswith("/subscriptions/") or "/providers/Microsoft.App/jobs/" not in target:
            raise ValueError("the container-apps-job trigger needs a job resource id: "
                             "'container-apps-job:/subscriptions/.../providers/Microsoft.App/jobs/<name>'")
        self.target = target
        self._credential = credential
        self._endpoint = endpoint

    def start(self, reason: str, config: RunConfig) -> str:
        """Start an execution; returns `container-apps-job:<execution name>`."""
        arm = self._endpoint or os.environ.get(ARM_ENDPOINT_ENV, ARM_ENDPOINT)
        token = (self._credential or default_credential()).get_token(ARM_SCOPE).token
        response = _post(job_start_url(self.target, arm), {}, token)
        return f"container-apps-job:{response.get('name') or response.get('id') or '?'} ({reason})"
