"""The policy pack's glue (policy-pack/shipyard_pack.py), without pulumi_policy and without the CLI.

The pack's `__main__` starts a gRPC server for the CLI, so it is not imported here; its shared
functions are, fed with objects shaped like pulumi_policy's `PolicyResource`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from plan_checks import ROOT
from pulumi.runtime import rpc

from infra.plan_capture import SECRET, UNKNOWN
from infra.policies import POLICIES

STACK_URN = "urn:pulumi:k8s-prod::shipyard::pulumi:pulumi:Stack::shipyard-k8s-prod"
PROD = {"environment": "prod", "models": ["churn"]}


@pytest.fixture(scope="module")
def pack() -> Iterator[ModuleType]:
    """policy-pack/shipyard_pack.py, imported by path (the pack's directory is not a package)."""
    spec = importlib.util.spec_from_file_location("shipyard_pack", ROOT / "policy-pack" / "shipyard_pack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through the module
    try:
        spec.loader.exec_module(module)
        assert "pulumi_policy" not in sys.modules, "the glue must not need pulumi_policy"
        yield module
    finally:
        del sys.modules[spec.name]


class Proxy(Mapping):
    """Like pulumi_policy's read-only props proxy: a Mapping, not a dict."""

    def __init__(self, target: dict[str, Any]):
        self._target = target

    def __getitem__(self, key: str) -> Any:
        value = self._target[key]
        return Proxy(value) if isinstance(value, dict) else tuple(value) if isinstance(value, list) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._target)

    def __len__(self) -> int:
        return len(self._target)


def policy_resource(type_: str, name: str, props: dict[str, Any], parent: Any = None, protect: bool = False) -> Any:
    urn = f"urn:pulumi:k8s-prod::shipyard::{type_}::{name}"
    return SimpleNamespace(resource_type=type_, name=name, urn=urn, props=Proxy(props), parent=parent,
                           dependencies=[], opts=SimpleNamespace(protect=protect, parent=None))


def stack_resources() -> list[Any]:
    stack = SimpleNamespace(resource_type="pulumi:pulumi:Stack", name="shipyard-k8s-prod", urn=STACK_URN,
                            props=Proxy({"tracking_uri": "http://mlflow:5000"}), parent=None, dependencies=[],
                            opts=SimpleNamespace(protect=False, parent=None))
    platform = policy_resource("shipyard:index:Platform", "shipyard-prod", {}, stack)
    registry = policy_resource("shipyard:index:ModelRegistry", "shipyard-prod-registry", {}, platform)
    pod = {"containers": [{"name": "postgres", "image": "postgres:16"}]}
    return [
        stack, platform, registry,
        policy_resource("kubernetes:apps/v1:StatefulSet", "postgresql", {"spec": {"template": {"spec": pod}}},
                        registry),
        policy_resource("kubernetes:core/v1:Service", "mlflow", {"spec": {"type": "NodePort"}}, registry),
        policy_resource("kubernetes:core/v1:Secret", "db", {"stringData": SECRET}, registry, protect=True),
    ]


def test_each_policy_is_registered_once_per_enforcement_level(pack: ModuleType) -> None:
    registrations = {(r.name, r.level) for r in pack.pack_policies()}
    assert registrations == {
        ("no-plaintext-secrets", "mandatory"), ("storage-encrypted", "mandatory"), ("no-public-access", "mandatory"),
        ("state-protected", "mandatory"), ("state-protected-advisory", "advisory"),
        ("images-pinned", "advisory"), ("resource-limits", "advisory"),
    }
    assert {r.policy.name for r in pack.pack_policies()} == {p.name for p in POLICIES}


def test_registrations_report_what_the_plan_reports_at_their_level(pack: ModuleType) -> None:
    reports: dict[str, list[tuple[str, str | None]]] = {}
    for registration in pack.pack_policies():
        found = reports.setdefault(registration.name, [])
        registration.validate(stack_resources(), PROD, lambda msg, urn=None, into=found: into.append((msg, urn)))
    assert [urn.rsplit("::", 1)[1] for _, urn in reports["state-protected"]] == ["postgresql"]
    assert reports["state-protected-advisory"] == []  # prod: the mandatory registration reports it
    assert [urn.rsplit("::", 1)[1] for _, urn in reports["no-public-access"]] == ["mlflow"]
    assert [m for m, _ in reports["images-pinned"]] == [
        "containers[postgres]: image 'postgres:16' is not pinned by digest"]
    assert len(reports["resource-limits"]) == 1
    assert reports["no-plaintext-secrets"] == reports["storage-encrypted"] == []


def test_graph_for_turns_policy_resources_into_the_plans_shape(pack: ModuleType) -> None:
    graph = pack.graph_for(stack_resources(), PROD)
    assert graph.outputs == {"tracking_uri": "http://mlflow:5000"}
    assert graph.stack_urn == STACK_URN
    statefulset = next(r for r in graph.resources if r["type"] == "kubernetes:apps/v1:StatefulSet")
    assert statefulset["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] == "postgres:16"
    assert isinstance(statefulset["inputs"]["spec"]["template"]["spec"]["containers"], list)
    assert statefulset["parent"].endswith("ModelRegistry::shipyard-prod-registry")
    assert graph.context.environment == "prod"


def test_context_comes_from_the_stack_file_without_policy_config(pack: ModuleType) -> None:
    context = pack.context_for(pack.stack_of(STACK_URN), None, ROOT)
    assert (context.environment, context.models) == ("prod", ("churn", "demand"))


def test_mask_wire_hides_secrets_and_marks_unknowns(pack: ModuleType) -> None:
    sentinel = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
    wire = {"password": {rpc._special_sig_key: rpc._special_secret_sig, "value": "hunter2"},
            "flags": [sentinel, True], "name": "db"}
    assert pack.mask_wire(wire, frozenset({sentinel})) == {"password": SECRET, "flags": [UNKNOWN, True], "name": "db"}


def _wire(value: Any) -> Any:
    """Plan JSON back to wire format: '[secret]' becomes a real secret (with a value the pack must not see)."""
    if value == SECRET:
        return {rpc._special_sig_key: rpc._special_secret_sig, "value": "not-for-policies"}
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    return [_wire(v) for v in value] if isinstance(value, list) else value


@pytest.mark.skipif(not os.environ.get("SHIPYARD_POLICY_PYTHON"),
                    reason="set SHIPYARD_POLICY_PYTHON to a Python with pulumi-policy (policy-pack/requirements.txt)")
def test_the_pack_serves_the_policies_over_grpc_as_the_cli_drives_it(pack: ModuleType, captured: Any) -> None:
    """Opt-in: start policy-pack/__main__.py with that Python and call it as the Pulumi CLI would."""
    import grpc
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    capture = captured("k8s-prod")
    resources = [r.to_json() for r in capture.resources]
    registry = next(r for r in resources if r["type"] == "shipyard:index:ModelRegistry")
    leak = {"urn": f"{registry['urn']}-leak", "type": "kubernetes:core/v1:Service", "name": "leak",
            "parent": registry["urn"], "dependencies": [], "protect": False,
            "inputs": {"spec": {"type": "NodePort"}, "metadata": {"annotations": {"db_password": "hunter2"}}}}
    stack = {"urn": STACK_URN, "type": "pulumi:pulumi:Stack", "name": "shipyard-k8s-prod", "parent": "",
             "dependencies": [], "protect": False, "inputs": capture.outputs}

    def message(resource: dict[str, Any]) -> Any:
        properties = struct_pb2.Struct()
        properties.update(_wire(resource["inputs"]))
        return analyzer_pb2.AnalyzerResource(
            type=resource["type"], urn=resource["urn"], name=resource["name"], properties=properties,
            parent=resource["parent"], dependencies=resource["dependencies"],
            options=analyzer_pb2.AnalyzerResourceOptions(protect=resource["protect"], parent=resource["parent"]))

    pack_dir = ROOT / "policy-pack"
    server = subprocess.Popen([os.environ["SHIPYARD_POLICY_PYTHON"], str(pack_dir / "__main__.py")], cwd=pack_dir,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty())
            reply = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(
                resources=[message(r) for r in (stack, *resources, leak)]))
    finally:
        server.kill()
        server.wait()
    assert {p.name for p in info.policies} == {r.name for r in pack.pack_policies()}
    found = sorted((d.policyName, d.urn) for d in reply.diagnostics)
    assert found == [("no-plaintext-secrets", leak["urn"]), ("no-public-access", leak["urn"])]
