"""`shipyard plan`: the tree, the JSON object, exit codes, and errors that are one located paragraph."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from plan_checks import ROOT, stacks_by_target, target_module

from infra import targets
from infra.plan import build_plan, command, describe_failure, render_tree, root_cause

FAKE_STACK = """\
config:
  shipyard:target: gcp
  shipyard:region: europe-west1
  shipyard:tags: {{fake: {mode}}}
"""
PLAN_KEYS = {"stack", "target", "environment", "resources", "outputs", "violations", "warnings", "cost"}
RESOURCE_KEYS = {"urn": str, "type": str, "name": str, "parent": str, "dependencies": list, "inputs": dict,
                 "protect": bool, "retain_on_delete": bool}
VIOLATION_KEYS = {"policy": str, "urn": str, "message": str, "mandatory": bool}
WARNING_KEYS = {"file": str, "path": str, "message": str}


@pytest.fixture
def fake_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """A stack file for the fake target (registered as 'gcp' for this test) in the given mode."""
    monkeypatch.setitem(targets.TARGETS, "gcp", "plan_fake_target")

    def make(mode: str) -> Path:
        path = tmp_path / f"Pulumi.fake-{mode}.yaml"
        path.write_text(FAKE_STACK.format(mode=mode))
        return path

    return make


def run_command(config: Path, as_json: bool = False) -> int:
    return command(argparse.Namespace(stack=None, config=config, json=as_json))


def check_schema(document: dict[str, Any]) -> None:
    """`plan --json`: exactly the documented keys and types, resources sorted by URN."""
    assert set(document) == PLAN_KEYS
    for resource in document["resources"]:
        assert {k: type(v) for k, v in resource.items()} == RESOURCE_KEYS, resource["urn"]
        assert all(isinstance(d, str) for d in resource["dependencies"])
    urns = [r["urn"] for r in document["resources"]]
    assert urns == sorted(urns) and len(set(urns)) == len(urns)
    for violation in document["violations"]:
        assert {k: type(v) for k, v in violation.items()} == VIOLATION_KEYS
    for warning in document["warnings"]:
        assert {k: type(v) for k, v in warning.items()} == WARNING_KEYS
    assert isinstance(document["outputs"], dict)


def test_human_output_is_a_tree_by_component_with_counts_outputs_and_verdict(
        fake_stack: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(fake_stack("ok")) == 0
    out = capsys.readouterr().out.splitlines()
    assert "shipyard:index:Platform  shipyard-dev" in out
    assert "  shipyard:index:ModelRegistry  shipyard-dev-registry" in out
    assert "    kubernetes:core/v1:Service  mlflow" in out
    assert "    kubernetes:core/v1:ConfigMap  wheel" in out
    counts = out[out.index("Counts per type:") + 1:out.index("Outputs:") - 1]
    assert any(line.split() == ["shipyard:index:ServingEndpoint", "1"] for line in counts)
    assert '  endpoints: {"churn": "http://churn:8080"}' in out
    assert out[-1] == "Plan passed."


def test_a_mandatory_violation_exits_1_and_is_in_the_json(
        fake_stack: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(fake_stack("public"), as_json=True) == 1
    document = json.loads(capsys.readouterr().out)
    check_schema(document)
    assert [(v["policy"], v["mandatory"]) for v in document["violations"] if v["mandatory"]] == [
        ("no-public-access", True)]
    assert document["violations"][0]["urn"].endswith("kubernetes:core/v1:Service::mlflow")


@pytest.mark.parametrize(("mode", "expected"), [
    ("raise-in-infra", ["raised ValueError: registry.database.external_url: a reference", "(at infra/secrets.py:"]),
    ("log-error", ["reported: declaring the fake platform failed", "Logged: the fake cluster refused the namespace"]),
    ("apply-error", ["KeyError:", "no such key 'mlflow'"]),
])
def test_a_failing_program_is_one_located_paragraph_then_the_next_plan_works(
        fake_stack: Callable[[str], Path], capsys: pytest.CaptureFixture[str], mode: str, expected: list[str]) -> None:
    assert run_command(fake_stack(mode), as_json=True) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    message = captured.err.strip()
    assert message.startswith(f"error: plan of stack 'fake-{mode}' failed: the Pulumi program ")
    assert "\n" not in message and "Traceback" not in message
    for part in expected:
        assert part in message
    # The SDK's global state was reset: the same process plans the next stack cleanly.
    assert not build_plan(None, fake_stack("ok"), ROOT).failed


def test_render_tree_indents_children_under_their_parent_components_first() -> None:
    def r(urn: str, parent: str, type_: str = "t:m:T") -> dict[str, Any]:
        return {"urn": urn, "parent": parent, "type": type_, "name": urn, "protect": urn == "db"}

    lines = render_tree([r("a", "stack"), r("db", "b"), r("b", "a", "x:m:Component"), r("c", "a")])
    assert lines == ["t:m:T  a", "  x:m:Component  b", "    t:m:T  db  [protect]", "  t:m:T  c"]


def test_describe_failure_reports_the_innermost_cause() -> None:
    try:
        try:
            {}["missing"]
        except KeyError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert isinstance(root_cause(outer), KeyError)
        text = describe_failure("dev", outer, ["first", "second"])
    assert text.startswith("plan of stack 'dev' failed: the Pulumi program raised KeyError: 'missing'. Logged: first")
    assert "\n" not in text


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_plan_json_via_the_cli_is_one_object_matching_the_schema() -> None:
    stack = "k8s-dev" if "k8s-dev" in stacks_by_target(ROOT).get("kubernetes", []) else "local"
    target_module("kubernetes" if stack == "k8s-dev" else "local")
    result = _cli("plan", "--stack", stack, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # one object, nothing else on stdout
    check_schema(document)
    assert (document["stack"], document["environment"]) == (stack, "dev")
    assert not [v for v in document["violations"] if v["mandatory"]]
    assert "Traceback" not in result.stderr


def test_a_misspelt_or_invalid_stack_file_is_located_exit_1_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  shipyard:target: kubernetes\n  shipyard:modles: []\n"
                   "  shipyard:training: {min_nodes: 3, max_nodes: 1}\n")
    result = _cli("plan", "--config", str(bad), "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{bad}: modles: unknown key; did you mean 'models'?" in result.stderr
    assert f"{bad}: training.max_nodes: must be >= min_nodes (3)" in result.stderr
    assert "Traceback" not in result.stderr

    missing = _cli("plan", "--stack", "k8s-dve")
    assert missing.returncode == 1
    assert "no such stack file" in missing.stderr and "k8s-dev" in missing.stderr
    assert "Traceback" not in missing.stderr
