"""`shipyard deploy`: preview, up, read the outputs and smoke-test them, with the Pulumi Automation API.

The Automation API drives the Pulumi CLI; without `pulumi` on PATH the command refuses in one sentence (exit 2)
before doing anything. After `up`, the smoke test reads the outputs contract (the same keys on every target):
- the registry answers at `tracking_uri` and each model's alias (`models.<m>.alias`) names a version;
- each endpoint (`endpoints.<m>`) answers the MLflow scoring protocol for that version's own serving example
  (from the registry) with one prediction per row.
SageMaker endpoints are called with SigV4 (the caller's AWS credentials); an endpoint with `auth: api_key` gets
`Authorization: Bearer $SHIPYARD_API_KEY`. `SHIPYARD_TRACKING_URI_<STACK>` and `SHIPYARD_ENDPOINT_<STACK>_<MODEL>`
override an output that is not reachable from where deploy runs (a cluster-internal URL behind a port-forward).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.promote import env_name, override_variable
from infra.stackfile import find_project_dir, load_stack

REFUSAL = ("shipyard deploy needs the Pulumi CLI on PATH (https://www.pulumi.com/docs/iac/download-install/); "
           "`shipyard plan` and `shipyard cost` work without it.")
SECRET = "[secret]"


@dataclass
class Check:
    """One smoke-test check."""

    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class SmokeReport:
    """Every check of a smoke test."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed (and there was something to check)."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks]}


def endpoint_override(stack: str, model: str) -> str:
    """The environment variable that overrides a model's endpoint URL."""
    return f"SHIPYARD_ENDPOINT_{env_name(stack)}_{env_name(model)}"


def invocations_url(endpoint: str) -> str:
    """The scoring URL of an endpoint output (SageMaker outputs are already the invocations URL)."""
    return endpoint if endpoint.rstrip("/").endswith("/invocations") else endpoint.rstrip("/") + "/invocations"


def scoring_payload(example: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The MLflow scoring request for a model's example, and its row count.

    `serving_input_example.json` is already a request (`{"dataframe_split": ...}`); an `input_example.json` in
    split orientation (`{"columns": ..., "data": ...}`) is wrapped.
    """
    request = example if any(k in example for k in ("dataframe_split", "dataframe_records", "inputs", "instances")) \
        else {"dataframe_split": example}
    body = request.get("dataframe_split") or {}
    rows = request.get("dataframe_records") or request.get("inputs") or request.get("instances") or body.get("data")
    return request, len(rows or [])


def smoke_test(outputs: Mapping[str, Any], *, champion: Callable[[str, str, str], tuple[str, dict[str, Any]] | None],
               post: Callable[[str, dict[str, Any]], tuple[int, Any]],
               overrides: Mapping[str, str] | None = None) -> SmokeReport:
    """Check the registry and every endpoint of a stack's outputs.

    - `champion(tracking_uri, registered_model, alias)`: (version, serving example) or None when the alias is unset;
      raises when the registry does not answer;
    - `post(url, request)`: (HTTP status, decoded body).
    `overrides` maps 'tracking_uri' or a model name to a URL to use instead of the output.
    """
    overrides = overrides or {}
    report = SmokeReport()
    tracking = overrides.get("tracking_uri") or outputs.get("tracking_uri")
    models = outputs.get("models") or {}
    if not isinstance(tracking, str) or tracking == SECRET:
        report.checks.append(Check("registry", False, "the stack exports no readable tracking_uri"))
        return report
    if not models:
        report.checks.append(Check("models", False, "the stack exports no models"))
    for name, model in sorted(models.items()):
        registered, alias = model.get("registered_model", name), model.get("alias", "champion")
        try:
            found = champion(tracking, registered, alias)
        except Exception as exc:  # any failure to reach the registry is the finding
            report.checks.append(Check(f"registry {registered}@{alias}", False, f"{tracking} did not answer: {exc}"))
            continue
        if found is None:
            report.checks.append(Check(f"registry {registered}@{alias}", False, f"{registered} has no {alias} yet "
                                                                               "(has training run?)"))
            continue
        version, example = found
        report.checks.append(Check(f"registry {registered}@{alias}", True, f"v{version} at {tracking}"))
        endpoint = overrides.get(name) or (outputs.get("endpoints") or {}).get(name) or model.get("endpoint")
        if not isinstance(endpoint, str) or endpoint == SECRET:
            report.checks.append(Check(f"endpoint {name}", False, "no endpoint URL in the outputs"))
            continue
        request, rows = scoring_payload(example)
        url = invocations_url(endpoint)
        try:
            status, body = post(url, request)
        except Exception as exc:  # unreachable, refused, timed out: the finding
            report.checks.append(Check(f"endpoint {name}", False, f"{url}: {exc}"))
            continue
        predictions = body.get("predictions") if isinstance(body, dict) else body
        ok = status == 200 and isinstance(predictions, list) and len(predictions) == rows
        detail = (f"{url}: {rows} row(s) scored by v{version}" if ok
                  else f"{url}: HTTP {status}, {str(body)[:200]} (expected {rows} prediction(s))")
        report.checks.append(Check(f"endpoint {name}", ok, detail))
    return report


def mlflow_champion(tracking_uri: str, name: str, alias: str) -> tuple[str, dict[str, Any]] | None:
    """The alias's version on a real registry and its serving example (MLflow's own files of that version)."""
    import mlflow

    from pipelines.registry import alias_version

    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    version = alias_version(client, name, alias)
    if version is None:
        return None
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    base = client.get_model_version_download_uri(name, version.version).rstrip("/")
    for filename in ("serving_input_example.json", "input_example.json"):
        with contextlib.suppress(Exception):
            return str(version.version), mlflow.artifacts.load_dict(f"{base}/{filename}")
    raise RuntimeError(f"{name} v{version.version} has no input example to send")


def http_post(url: str, request: dict[str, Any]) -> tuple[int, Any]:
    """POST a scoring request: SigV4 for SageMaker runtime URLs, a bearer key from $SHIPYARD_API_KEY if set."""
    import httpx

    body = json.dumps(request).encode()
    headers = {"Content-Type": "application/json"}
    if ".sagemaker." in url and "runtime" in url:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session()
        region = url.split("runtime.sagemaker.", 1)[1].split(".", 1)[0]
        signed = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(session.get_credentials(), "sagemaker", region).add_auth(signed)
        headers = dict(signed.headers)
    elif os.environ.get("SHIPYARD_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['SHIPYARD_API_KEY']}"
    response = httpx.post(url, content=body, headers=headers, timeout=60.0)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def plain_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Automation API outputs (`OutputValue`s) as plain values, secrets masked."""
    return {k: SECRET if getattr(v, "secret", False) else getattr(v, "value", v) for k, v in outputs.items()}


def command(args: argparse.Namespace) -> int:
    """`shipyard deploy --stack S [--json]`: 2 without the Pulumi CLI; 1 if up or the smoke test fails."""
    if shutil.which("pulumi") is None:
        print(f"error: {REFUSAL}", file=sys.stderr)
        return 2
    from pulumi import automation as auto

    project_dir = find_project_dir()
    loaded = load_stack(args.stack, config_file=args.config, project_dir=project_dir)  # refuse invalid stacks first

    def progress(line: str) -> None:
        print(f"[{loaded.stack}] {line.rstrip()}", file=sys.stderr)

    try:
        stack = auto.create_or_select_stack(stack_name=loaded.stack, work_dir=str(project_dir))
        progress("preview")
        preview = stack.preview(on_output=progress)
        progress("up")
        up = stack.up(on_output=progress)
    except auto.CommandError as exc:
        last = (str(exc).strip().splitlines() or ["no output"])[-1]
        print(f"error: pulumi preview/up of {loaded.stack} failed: {last}", file=sys.stderr)
        return 1
    outputs = plain_outputs(stack.outputs())
    overrides = {"tracking_uri": os.environ.get(override_variable(loaded.stack), "")}
    overrides.update({m.name: os.environ.get(endpoint_override(loaded.stack, m.name), "") for m in loaded.spec.models})
    progress("smoke test")
    report = smoke_test(outputs, champion=mlflow_champion, post=http_post,
                        overrides={k: v for k, v in overrides.items() if v})
    if args.json:
        print(json.dumps({"stack": loaded.stack, "preview": preview.change_summary,
                          "up": up.summary.resource_changes, "outputs": outputs, "smoke": report.to_json()}))
    else:
        print("\n".join(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in report.checks))
        print(f"deploy of {loaded.stack}: {'smoke test passed' if report.ok else 'SMOKE TEST FAILED'}")
    return 0 if report.ok else 1
