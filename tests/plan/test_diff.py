"""`shipyard diff`: real stack pairs, crafted overlays (added model, changed bound, changed target, environment
only), one stack against a git revision, and the pure pieces (flattening, normalisation)."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from plan_checks import ROOT

from infra.diff import command, compare, current_side, flatten, normalise, plan_diff, revision_side

K8S_DEV = (ROOT / "stacks" / "Pulumi.k8s-dev.yaml").read_text()
MORE = K8S_DEV + """\
  shipyard:models:
    - name: churn
      serving: {max_replicas: 8}
    - name: fraud
      pipeline: {dataset_uri: "demo://classification?rows=500&seed=3"}
"""
STAGING = K8S_DEV.replace("shipyard:environment: dev", "shipyard:environment: staging")
LOCAL_AS_K8S = (ROOT / "stacks" / "Pulumi.local.yaml").read_text().replace(
    "shipyard:target: local", "shipyard:target: kubernetes") + (
    "  shipyard:kubernetes: {image_repository: localhost:5001/shipyard-runtime}\n")


@pytest.fixture(scope="module")
def project(project_copy: Callable[[Mapping[str, str]], Path]) -> Path:
    return project_copy({"k8s-more": MORE, "k8s-staging": STAGING, "local-k8s": LOCAL_AS_K8S})


def by_path(diff: object) -> dict[str, object]:
    return {c.path: c for c in diff.spec}  # type: ignore[attr-defined]


def test_flatten_keys_models_by_name_and_masks_secrets() -> None:
    flat = flatten({"models": [{"name": "a", "serving": {"min_replicas": 1}}], "registry": {
        "database": {"external_url": {"secure": "v1:abc", "ref": None, "source": "registry.database.external_url"}}}})
    assert flat == {"models[a].serving.min_replicas": 1, "registry.database.external_url": "[secret]"}


def test_normalise_replaces_stack_and_prefix_and_masks_mock_hashes_and_parses_json_strings() -> None:
    value = {"urn": "urn:pulumi:aws-prod::shipyard::aws:s3/bucket:Bucket::shipyard-prod-artifacts",
             "policy": '{"Resource": "arn:aws:s3:::shipyard-prod-artifacts-a0091c1/*"}'}
    assert normalise(value, "aws-prod", "shipyard-prod") == {
        "urn": "urn:pulumi:{stack}::shipyard::aws:s3/bucket:Bucket::{prefix}-artifacts",
        "policy": {"Resource": "arn:aws:s3:::{prefix}-artifacts-<hash>/*"}}


def test_plan_diff_finds_added_removed_and_changed_inputs() -> None:
    a = [{"urn": "urn:pulumi:x::p::t::x-dev-a", "type": "t", "inputs": {"n": 1.0}},
         {"urn": "urn:pulumi:x::p::t::x-dev-gone", "type": "t", "inputs": {}}]
    b = [{"urn": "urn:pulumi:y::p::t::x-prod-a", "type": "t", "inputs": {"n": 2.0}, "protect": True},
         {"urn": "urn:pulumi:y::p::t::x-prod-new", "type": "t", "inputs": {}}]
    diff = plan_diff(a, b, ("x", "x-dev"), ("y", "x-prod"))
    assert diff.added == [("urn:pulumi:{stack}::p::t::{prefix}-new", "t")]
    assert diff.removed == [("urn:pulumi:{stack}::p::t::{prefix}-gone", "t")]
    assert [(c.urn, c.changes) for c in diff.changed] == [
        ("urn:pulumi:{stack}::p::t::{prefix}-a", [("inputs.n", 1.0, 2.0), ("protect", False, True)])]


def test_added_model_and_changed_bound(project: Path) -> None:
    diff = compare(current_side("k8s-dev", project), current_side("k8s-more", project))
    spec = by_path(diff)
    assert set(spec) == {"models[fraud]", "models[churn].serving.max_replicas"}
    assert spec["models[churn].serving.max_replicas"].a == 4 and spec["models[churn].serving.max_replicas"].b == 8
    assert spec["models[fraud]"].source == "stack" and spec["models[fraud]"].b["name"] == "fraud"
    added = {u.rsplit("::", 1)[-1] for u, _ in diff.plan.added}
    assert "{prefix}-fraud-serving" in added and "fraud-serving" in added and not diff.plan.removed
    hpa = next(c for c in diff.plan.changed if c.urn.endswith("HorizontalPodAutoscaler::churn-serving"))
    assert ("inputs.spec.maxReplicas", 4.0, 8.0) in hpa.changes
    document = diff.to_json()
    assert document["cost"]["idle"]["delta"] == 0.0  # an existing cluster: requests change, no price
    assert json.dumps(document)


def test_environment_only_differences_are_marked(project: Path) -> None:
    diff = compare(current_side("k8s-dev", project), current_side("k8s-staging", project))
    spec = by_path(diff)
    assert spec["environment"].source == "stack"
    assert spec["registry.database.backup_retention_days"].source == "environment"
    assert (spec["registry.database.backup_retention_days"].a, spec["registry.database.backup_retention_days"].b) \
        == (1, 7)
    assert {c.source for p, c in spec.items() if p != "environment"} == {"environment"}


def test_changed_target(project: Path) -> None:
    diff = compare(current_side("local", project), current_side("local-k8s", project))
    spec = by_path(diff)
    assert (spec["target"].a, spec["target"].b) == ("local", "kubernetes")
    added_types = {t for _, t in diff.plan.added}
    assert "kubernetes:apps/v1:Deployment" in added_types and "kubernetes:apps/v1:StatefulSet" in added_types


def test_real_pair_staging_to_prod_on_aws_shows_the_cost_difference() -> None:
    diff = compare(current_side("aws-staging", ROOT), current_side("aws-prod", ROOT))
    spec = by_path(diff)
    assert spec["protect"].source == "environment" and spec["protect"].b is True
    assert spec["models[demand]"].a is not None and "(absent)" not in str(spec["models[demand]"].b)
    rds = next(c for c in diff.plan.changed if c.type == "aws:rds/instance:Instance")
    assert ("inputs.instanceClass", "db.t4g.micro", "db.t4g.medium") in rds.changes
    cost = diff.cost_json()
    assert cost is not None and cost["idle"]["delta"] > 0 and cost["peak"]["b"] >= cost["idle"]["b"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_one_stack_against_a_git_revision(tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["cp", "-r", str(project), str(repo)], check=True)
    subprocess.run(["cp", "-r", str(ROOT / "infra"), str(repo / "infra")], check=True)
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@example.test", "-c", "user.name=t", "add", "-A")
    git(repo, "-c", "user.email=t@example.test", "-c", "user.name=t", "commit", "-qm", "base")
    stack_file = repo / "stacks" / "Pulumi.k8s-more.yaml"
    stack_file.write_text(stack_file.read_text().replace("max_replicas: 8", "max_replicas: 6"))
    diff = compare(revision_side("k8s-more", "HEAD", repo), current_side("k8s-more", repo))
    assert diff.a.label == "k8s-more@HEAD" and not diff.a.error
    assert [(c.path, c.a, c.b) for c in diff.spec] == [("models[churn].serving.max_replicas", 8, 6)]
    assert [c.urn.rsplit("::", 1)[-1] for c in diff.plan.changed] == ["churn-serving"]
    assert not diff.plan.added and not diff.plan.removed
    new = revision_side("brand-new", "HEAD", repo)
    assert new.error == "stack 'brand-new' does not exist at HEAD" and new.absent
    monkeypatch.chdir(repo)
    assert command(argparse.Namespace(a="k8s-more", b=None, rev="HEAD", json=False, markdown=True)) == 0
    out = capsys.readouterr().out
    assert out.startswith("### `k8s-more@HEAD` -> `k8s-more`")
    assert "- models[churn].serving.max_replicas: 8 -> 6" in out
    assert command(argparse.Namespace(a="k8s-more", b=None, rev="no-such-rev", json=True, markdown=False)) == 1
    assert "git cannot read revision 'no-such-rev'" in json.loads(capsys.readouterr().out)["errors"][
        "k8s-more@no-such-rev"]
