"""The registry protocol on a real (SQLite) store, without training: gate records, promotion, rollback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines import registry
from pipelines.gates import Decision, GateCheck, GateResult


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path):
    """One SQLite store for the module; each test registers its own model."""
    import mlflow

    path = tmp_path_factory.mktemp("registry") / "registry.db"
    shutil.copyfile(migrated_store, path)
    return mlflow.MlflowClient(f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return request.node.name.removeprefix("test_")[:60]


def _version(client, name: str, tmp_path: Path) -> str:
    return str(registry.create_version(client, name, model_uri=str(tmp_path / "model"), run_id=None, model_id=None,
                                       tags={"dataset.hash": "abc"}).version)


def _decision(passed: bool, champion: str | None) -> Decision:
    return Decision([GateResult("thresholds", [GateCheck("roc_auc >= 0.7", passed, 0.8, 0.7)])],
                    champion_version=champion)


def _champion(client, name: str) -> str | None:
    version = registry.alias_version(client, name, "champion")
    return None if version is None else str(version.version)


def test_new_versions_are_challengers_and_ungated_ones_are_refused(client, name: str, tmp_path: Path) -> None:
    assert registry.alias_version(client, name, "champion") is None  # no model yet: None, not an error
    v1 = _version(client, name, tmp_path)
    assert registry.alias_version(client, name, "champion") is None  # a model without the alias: None too
    assert str(registry.alias_version(client, name, registry.CHALLENGER).version) == v1
    with pytest.raises(registry.PromotionRefused, match="not recorded"):
        registry.promote(client, name, v1)
    registry.record_gates(client, name, v1, _decision(False, None))
    with pytest.raises(registry.PromotionRefused, match="failed"):
        registry.promote(client, name, v1)
    assert _champion(client, name) is None


def test_promotion_records_the_previous_champion_and_rollback_is_one_move(client, name: str, tmp_path: Path) -> None:
    v1 = _version(client, name, tmp_path)
    registry.record_gates(client, name, v1, _decision(True, None))
    first = registry.promote(client, name, v1)
    assert (first.moved, first.previous, _champion(client, name)) == (True, None, v1)
    v2 = _version(client, name, tmp_path)
    registry.record_gates(client, name, v2, _decision(True, v1))
    registry.promote(client, name, v2)
    assert _champion(client, name) == v2
    assert client.get_model_version(name, v2).tags[registry.TAG_PREVIOUS_CHAMPION] == v1
    assert client.get_registered_model(name).tags[registry.TAG_PREVIOUS_CHAMPION] == v1
    assert not registry.promote(client, name, v2).moved  # idempotent
    back = registry.rollback(client, name)
    assert (back.version, back.previous, _champion(client, name)) == (v1, v2, v1)
    assert client.get_model_version(name, v2).tags[registry.TAG_ROLLED_BACK] == "champion"
    assert client.get_registered_model(name).tags[registry.TAG_PREVIOUS_CHAMPION] == v2
    with pytest.raises(registry.RegistryError, match="nothing to roll back to"):
        registry.rollback(client, name)  # v1 replaced nothing


def test_gates_against_a_champion_that_has_since_changed_are_stale(client, name: str, tmp_path: Path) -> None:
    v1, v2 = _version(client, name, tmp_path), _version(client, name, tmp_path)
    registry.record_gates(client, name, v1, _decision(True, None))
    registry.record_gates(client, name, v2, _decision(True, None))  # compared against "no champion"
    registry.promote(client, name, v1)
    with pytest.raises(registry.PromotionRefused, match="rerun the pipeline"):
        registry.promote(client, name, v2)
    assert _champion(client, name) == v1


def test_a_partial_gate_record_never_clears_a_version(client, name: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = _version(client, name, tmp_path)
    real = client.set_model_version_tag

    def crash_on_gate_passed(model, version, key, value):
        if key == registry.TAG_GATE_PASSED:
            raise RuntimeError("killed")
        return real(model, version, key, value)

    monkeypatch.setattr(client, "set_model_version_tag", crash_on_gate_passed)
    with pytest.raises(RuntimeError):
        registry.record_gates(client, name, v1, _decision(True, None))
    monkeypatch.undo()
    assert client.get_model_version(name, v1).tags["gate.thresholds"] == "pass"
    with pytest.raises(registry.PromotionRefused):
        registry.promote(client, name, v1)
