"""Every registered target keeps the protocol: pure rules (`check`, `ignored`) and a program (`build`)."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.merge import with_defaults
from infra.problems import Notice, Problem
from infra.spec import PlatformSpec
from infra.targets import TARGETS, load_target
from infra.targets.local import rules as local_rules

ROOT = Path(__file__).resolve().parents[2]
#: Regions the baseline spec of each target uses (targets without regions take none).
REGIONS = {"aws": "eu-west-1", "gcp": "europe-west1", "azure": "westeurope"}


#: Settings a target cannot do without, like a region: the project every GCP resource lives in, the repository a
#: Kubernetes stack pushes the runtime image it builds to.
REQUIRED = {"gcp": {"gcp": {"project": "acme-ml-dev"}},
            "kubernetes": {"kubernetes": {"image_repository": "localhost:5001/shipyard-runtime"}}}


def baseline(target: str, environment: str) -> PlatformSpec:
    overlay = {"target": target, "environment": environment, "region": REGIONS.get(target),
               "models": [{"name": "churn"}], **REQUIRED.get(target, {})}
    return PlatformSpec.model_validate(with_defaults({}, overlay)[0])


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_target_has_rules_and_a_program(target: str) -> None:
    rules = importlib.import_module(f"{TARGETS[target]}.rules")
    program = importlib.import_module(f"{TARGETS[target]}.program")
    for module, name in ((rules, "check"), (rules, "ignored"), (program, "build")):
        assert callable(getattr(module, name, None)), f"{module.__name__}.{name}"
    assert list(inspect.signature(program.build).parameters) == ["platform", "spec", "package", "image", "secrets"]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_rules_import_no_cloud_sdk(target: str) -> None:
    """`shipyard validate` stays fast: a target's rules load neither Pulumi nor a provider SDK."""
    code = (f"import importlib, json, sys; importlib.import_module('{TARGETS[target]}.rules'); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi'))))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_default_spec_is_built_as_written(target: str, environment: str) -> None:
    """Defaults never produce a problem, nor a notice about a setting nobody wrote."""
    spec = baseline(target, environment)
    problems = load_target(target).check(spec)
    notices = load_target(target).ignored(spec)
    assert all(isinstance(p, Problem) for p in problems) and all(isinstance(n, Notice) for n in notices)
    assert problems == [], problems
    if environment == "dev":
        assert notices == [], notices


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_path_a_target_names_exists_in_the_spec(target: str) -> None:
    """Problems and notices name real key paths (a typo there would point the user nowhere)."""
    from infra.keyhints import key_index

    known = {".".join(str(p) for p in path if p != -1) for paths in key_index().values() for path in paths}
    spec = PlatformSpec.model_validate(with_defaults({}, {
        "target": target, "environment": "prod", "region": REGIONS.get(target), "tags": {"team": "ml"},
        "training": {"min_nodes": 1, "max_nodes": 3, "schedule": "0 3 1 * 1"},
        "networking": {"allowed_cidrs": ["10.0.0.0/8"], "existing_network": "x"},
        "models": [{"name": "churn", "serving": {"min_replicas": 0, "auth": "api_key", "public": True,
                                                  "rollout": {"strategy": "canary"}},
                    "monitoring": {"alerts": [{"kind": "email", "address": "a@b.c"}]}}]})[0])
    named = [p.path for p in load_target(target).check(spec)] + [n.path for n in load_target(target).ignored(spec)]
    for path in named:
        plain = ".".join(part.split("[")[0] for part in path.split("."))
        assert any(plain == k or plain.startswith(k + ".") for k in known), path


@pytest.mark.parametrize("key", sorted(set(local_rules._PLATFORM) | {f"models[0].{k}" for k in local_rules._MODEL}))
def test_local_names_each_setting_it_ignores(key: str) -> None:
    """Every key in the local target's table, set away from its default, gets its notice (and only that one)."""
    values = {"tags": {"team": "ml"}, "runtime_image": "repo@sha256:" + "0" * 64,
              "protect": True, "networking.private": False, "networking.allowed_cidrs": ["10.0.0.0/8"],
              "networking.existing_network": "vpc-1", "training.size": "large", "training.min_nodes": 1,
              "training.max_nodes": 5, "training.gpu_count": 1, "training.spot": False,
              "training.schedule": "0 4 * * *", "registry.server_size": "large",
              "registry.database.size": "large", "registry.database.storage_gb": 100,
              "registry.database.high_availability": True, "registry.database.backup_retention_days": 9,
              "registry.database.external_url": {"secure": "v1:x"}, "registry.artifacts.versioning": False,
              "registry.artifacts.noncurrent_version_retention_days": 3,
              "registry.artifacts.s3_endpoint": "http://s3", "registry.artifacts.bucket": "b",
              "registry.artifacts.s3_credentials": {"secure": "v1:x"},
              "models[0].serving.min_replicas": 0, "models[0].serving.max_replicas": 9,
              "models[0].serving.target_cpu_utilization": 50, "models[0].serving.size": "large",
              "models[0].serving.rollout": {"strategy": "canary"}, "models[0].serving.public": True,
              "models[0].serving.auth": "api_key",
              "models[0].monitoring.alerts": [{"kind": "email", "address": "a@b.c"}]}
    overlay: dict = {"target": "local", "models": [{"name": "churn"}]}
    node, *parents = list(reversed(key.replace("[0]", "").split(".")))
    branch: dict = {node: values[key]}
    for parent in parents:
        branch = {parent: branch}
    if key == "training.gpu_count":
        branch["training"]["size"] = "gpu"
    if "models" in branch:
        overlay["models"] = [{"name": "churn", **branch.pop("models")}]
    spec = PlatformSpec.model_validate(with_defaults({}, {**overlay, **branch})[0])
    paths = {n.path for n in local_rules.ignored(spec)}
    assert key in paths, paths
    assert paths <= {key, "training.size"}, paths
