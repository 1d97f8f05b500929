"""Promotion between two stacks, end to end between two real MLflow servers on loopback: the exact version is
copied with its lineage and provenance, the downstream gates re-run on the downstream data, a failing gate leaves
the champion where it was, manual promotion waits for approval (and CT proposes), and a crash halfway leaves both
registries consistent and a rerun completes."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipeline_helpers import PROJECT, config_document, start_mlflow_server, stop

from pipelines import registry, steps
from pipelines.config import RunConfig, from_dict
from pipelines.lineage import TAG_COMMIT, TAG_DATASET_HASH, TAG_PACKAGE_HASH
from pipelines.promotion import (
    TAG_FROM,
    TAG_FROM_RUN,
    TAG_FROM_STACK,
    TAG_FROM_TRACKING,
    TAG_FROM_VERSION,
    TAG_ORIGIN,
    Source,
    approve_version,
    promote_between,
    public_uri,
)

DOWNSTREAM_DATA = "demo://classification?rows=1500&seed=11"


@pytest.fixture(scope="module")
def downstream_server(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> Iterator[str]:
    """A second real `mlflow server`: the downstream stack's registry."""
    root = tmp_path_factory.mktemp("mlflow-downstream")
    shutil.copyfile(migrated_store, root / "mlflow.db")
    url, process = start_mlflow_server(f"sqlite:///{root}/mlflow.db", root)
    yield url
    stop(process)


@pytest.fixture(scope="module")
def upstream(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`churn` trained, gated and champion in the upstream registry (v1)."""
    tmp = tmp_path_factory.mktemp("upstream")
    config = from_dict(config_document(tmp, tracking_uri=mlflow_server))
    result = steps.run(config)
    assert result.ok and result.data["outcome"] == "promoted", result.summary
    return {"config": config, "version": result.data["version"], "run_id": result.data["run_id"]}


def client(uri: str) -> Any:
    import mlflow

    return mlflow.MlflowClient(uri, registry_uri=uri)


def target(tmp: Path, uri: str, name: str, **overrides: Any) -> RunConfig:
    return from_dict(config_document(tmp, tracking_uri=uri, model_name=name, experiment=f"shipyard/{name}",
                                     dataset_uri=DOWNSTREAM_DATA, **overrides))


def source(upstream: dict[str, Any], uri: str, version: str | None = None) -> Source:
    return Source(stack="dev", tracking_uri=uri, model_name="churn", version=version)


def digests(uri: str, model: str, version: str, tmp: Path) -> dict[str, str]:
    """sha256 of every artifact file of a registered version."""
    import mlflow

    mlflow.set_tracking_uri(uri)  # a version's download URI may be a logged model's (models:/m-...) on that server
    mlflow.set_registry_uri(uri)
    base = client(uri).get_model_version_download_uri(model, version)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=base, dst_path=str(tmp), tracking_uri=uri))
    return {str(p.relative_to(local)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(local.rglob("*")) if p.is_file()}


def champion(uri: str, name: str) -> str | None:
    found = registry.alias_version(client(uri), name, "champion")
    return str(found.version) if found else None


def test_lineage_and_provenance_downstream_and_gates_rerun_there(
        upstream: dict[str, Any], mlflow_server: str, downstream_server: str, tmp_path: Path) -> None:
    config = target(tmp_path, downstream_server, "churn-auto")
    result = promote_between(source(upstream, mlflow_server), config, "staging")
    assert result.outcome == "promoted" and result.version == "1" and not result.resumed, result.lines
    up = client(mlflow_server).get_model_version("churn", upstream["version"])
    down = client(downstream_server).get_model_version("churn-auto", "1")
    for tag in (TAG_COMMIT, TAG_PACKAGE_HASH, TAG_DATASET_HASH, "estimator"):
        assert down.tags[tag] == up.tags[tag], tag
    assert down.tags["upstream.gate.passed"] == "true"
    assert down.tags["upstream.gate.thresholds"] == up.tags["gate.thresholds"]
    assert down.tags[TAG_FROM] == f"dev:churn:v{upstream['version']}" == down.tags[TAG_ORIGIN]
    assert (down.tags[TAG_FROM_STACK], down.tags[TAG_FROM_VERSION], down.tags[TAG_FROM_RUN],
            down.tags[TAG_FROM_TRACKING]) == ("dev", upstream["version"], upstream["run_id"], mlflow_server)
    # the downstream gates ran on the downstream data, in a run of their own, and are recorded on the version
    assert down.tags[registry.TAG_GATE_PASSED] == "true" and down.tags[registry.TAG_GATE_CHAMPION] == "none"
    gate_runs = client(downstream_server).search_runs(
        [client(downstream_server).get_experiment_by_name("shipyard/churn-auto").experiment_id],
        "tags.`shipyard.step` = 'promote-gates'")
    assert len(gate_runs) == 1 and gate_runs[0].data.tags["dataset.uri"] == DOWNSTREAM_DATA
    assert gate_runs[0].data.tags[TAG_DATASET_HASH] != up.tags[TAG_DATASET_HASH]
    assert champion(downstream_server, "churn-auto") == "1"
    import mlflow.models

    info = mlflow.models.get_model_info(client(downstream_server).get_model_version_download_uri("churn-auto", "1"))
    assert info.signature is not None and info.signature.inputs.input_names()
    # the exact artifacts (model, signature, input example, reference profiles), byte for byte; MLmodel names the
    # downstream logged model and run instead of the upstream ones, and nothing else changed in it
    theirs = digests(mlflow_server, "churn", upstream["version"], tmp_path / "up")
    ours = digests(downstream_server, "churn-auto", "1", tmp_path / "down")
    assert {k: v for k, v in ours.items() if k != "MLmodel"} == {k: v for k, v in theirs.items() if k != "MLmodel"}
    assert "model.skops" in ours and any(k.startswith("extra_files/") for k in ours)
    up_ml = yaml.safe_load(next((tmp_path / "up").rglob("MLmodel")).read_text())
    down_ml = yaml.safe_load(next((tmp_path / "down").rglob("MLmodel")).read_text())
    assert down.source == f"models:/{down_ml['model_id']}" and down_ml["model_id"] != up_ml["model_id"]
    assert up_ml["model_id"] == down.tags["promoted.from.model_id"]
    assert {k: v for k, v in down_ml.items() if k not in ("model_id", "run_id")} == \
        {k: v for k, v in up_ml.items() if k not in ("model_id", "run_id")}
    # promoting the same version again changes nothing
    again = promote_between(source(upstream, mlflow_server), config, "staging")
    assert (again.outcome, again.version, again.resumed) == ("unchanged", "1", True)


def test_a_failing_downstream_gate_leaves_the_champion_where_it_was(
        upstream: dict[str, Any], mlflow_server: str, downstream_server: str, tmp_path: Path) -> None:
    trained_here = steps.run(target(tmp_path, downstream_server, "churn-strict"))
    assert trained_here.data["outcome"] == "promoted"
    strict = target(tmp_path, downstream_server, "churn-strict", gates={
        "primary_metric": "roc_auc", "minimum": {"roc_auc": 0.999}, "maximum": {}, "challenger_margin": 0.0,
        "max_latency_ms": 5000.0})
    result = promote_between(source(upstream, mlflow_server), strict, "prod")
    assert result.outcome == "rejected" and result.version == "2", result.lines
    assert champion(downstream_server, "churn-strict") == "1"
    tags = client(downstream_server).get_model_version("churn-strict", "2").tags
    assert tags[registry.TAG_GATE_PASSED] == "false" and tags["gate.thresholds"] == "fail"
    assert tags[registry.TAG_GATE_CHAMPION] == "1"
    assert registry.alias_version(client(downstream_server), "churn-strict", "challenger").version == "2"


def test_manual_promotion_waits_for_approval_and_ct_proposes(
        upstream: dict[str, Any], mlflow_server: str, downstream_server: str, tmp_path: Path) -> None:
    manual = target(tmp_path, downstream_server, "churn-manual", promotion="manual")
    result = promote_between(source(upstream, mlflow_server), manual, "prod")
    assert result.outcome == "awaiting-approval" and result.ok, result.lines
    assert champion(downstream_server, "churn-manual") is None
    assert client(downstream_server).get_model_version("churn-manual", "1").tags[registry.TAG_APPROVAL] == "pending"
    move = approve_version(manual, "1", by="Ada <ada@example.test>", at="2026-12-03T18:00:00+00:00")
    assert move.moved and champion(downstream_server, "churn-manual") == "1"
    tags = client(downstream_server).get_model_version("churn-manual", "1").tags
    assert (tags[registry.TAG_APPROVED_BY], tags[registry.TAG_APPROVED_AT], tags[registry.TAG_APPROVAL]) == (
        "Ada <ada@example.test>", "2026-12-03T18:00:00+00:00", "approved")
    # continuous training in that stack proposes: the new version passes its gates and waits
    retrained = steps.run(manual, reason="schedule")
    assert retrained.ok and retrained.data["outcome"] == "proposed", retrained.summary
    assert champion(downstream_server, "churn-manual") == "1"
    assert any(line.startswith("proposed: v2 awaits approval") for line in retrained.summary)
    with pytest.raises(registry.PromotionRefused, match="gates failed"):
        client(downstream_server).set_model_version_tag("churn-manual", "2", registry.TAG_GATE_PASSED, "false")
        approve_version(manual, "2", by="x", at="now")
    assert champion(downstream_server, "churn-manual") == "1"


def _versions(uri: str, name: str) -> list[str]:
    try:
        return sorted(v.version for v in client(uri).search_model_versions(f"name='{name}'"))
    except Exception:  # no such model yet
        return []


def test_a_crash_halfway_leaves_both_registries_consistent_and_a_rerun_completes(
        upstream: dict[str, Any], mlflow_server: str, downstream_server: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = target(tmp_path, downstream_server, "churn-crash")
    up_before = (_versions(mlflow_server, "churn"), champion(mlflow_server, "churn"))
    import mlflow

    # 1. the upload dies: no downstream version at all
    def broken_upload(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected: network lost during upload")

    with monkeypatch.context() as patch:
        patch.setattr(mlflow.MlflowClient, "log_model_artifacts", broken_upload)
        with pytest.raises(RuntimeError, match="injected"):
            promote_between(source(upstream, mlflow_server), config, "staging")
    assert _versions(downstream_server, "churn-crash") == [] and champion(downstream_server, "churn-crash") is None
    # 2. the gate record dies after its first tag: the version exists, is not cleared, champion untouched
    real = registry.record_gates

    def half_recorded(client_: Any, name: str, version: str, decision: Any) -> None:
        gate = decision.gates[0]
        client_.set_model_version_tag(name, version, f"gate.{gate.gate}", "pass" if gate.passed else "fail")
        raise RuntimeError("injected: crash while recording gates")

    with monkeypatch.context() as patch:
        patch.setattr(registry, "record_gates", half_recorded)
        with pytest.raises(RuntimeError, match="injected"):
            promote_between(source(upstream, mlflow_server), config, "staging")
    assert _versions(downstream_server, "churn-crash") == ["1"]
    tags = client(downstream_server).get_model_version("churn-crash", "1").tags
    assert registry.TAG_GATE_PASSED not in tags and champion(downstream_server, "churn-crash") is None
    with pytest.raises(registry.PromotionRefused):
        registry.promote(client(downstream_server), "churn-crash", "1")
    assert registry.record_gates is real
    # the upstream registry was only read
    assert (_versions(mlflow_server, "churn"), champion(mlflow_server, "churn")) == up_before
    # 3. a rerun finds the version it registered and completes: no duplicate
    result = promote_between(source(upstream, mlflow_server), config, "staging")
    assert (result.outcome, result.version, result.resumed) == ("promoted", "1", True), result.lines
    assert _versions(downstream_server, "churn-crash") == ["1"] and champion(downstream_server, "churn-crash") == "1"


def test_only_a_version_that_passed_upstream_is_promoted(
        upstream: dict[str, Any], mlflow_server: str, downstream_server: str, tmp_path: Path) -> None:
    with pytest.raises(registry.RegistryError, match="has no champion"):
        promote_between(Source("dev", mlflow_server, "no-such-model"), target(tmp_path, downstream_server, "x"), "s")
    assert public_uri("https://user:token@mlflow.example.test:8443/x") == "https://mlflow.example.test:8443/x"


def test_the_commands_between_two_stacks_manual_by_default_in_prod(
        upstream: dict[str, Any], mlflow_server: str, downstream_server: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from infra import promote as cli

    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "pyproject.toml"):
        shutil.copy(PROJECT / name, project / name)
    shutil.copytree(PROJECT / "stacks", project / "stacks")
    (project / "stacks" / "Pulumi.promo-dev.yaml").write_text("config:\n  shipyard:target: local\n")
    (project / "stacks" / "Pulumi.promo-prod.yaml").write_text(
        "config:\n  shipyard:target: local\n  shipyard:environment: prod\n"
        "  shipyard:models:\n    - name: churn\n      pipeline: {gates: {max_latency_ms: 5000}}\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("SHIPYARD_TRACKING_URI_PROMO_DEV", mlflow_server)
    monkeypatch.setenv("SHIPYARD_TRACKING_URI_PROMO_PROD", downstream_server)
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    args = argparse.Namespace(model="churn", from_stack="promo-dev", to_stack="promo-prod", version=None, json=True)
    assert cli.promote(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "awaiting-approval" and champion(downstream_server, "churn") is None
    approve = argparse.Namespace(stack="promo-prod", model="churn", version=result["version"], json=True)
    assert cli.approve(approve) == 0
    approved = json.loads(capsys.readouterr().out)
    assert approved["approved_by"] == "octocat (GitHub Actions run 42)" and approved["promotion"]["moved"]
    assert champion(downstream_server, "churn") == result["version"]
    monkeypatch.delenv("SHIPYARD_TRACKING_URI_PROMO_DEV")
    assert cli.promote(args) == 1
    assert "the local stack 'promo-dev' is not running" in capsys.readouterr().err
