"""The pipelines' name tables match the spec's, and the pipelines never import infra (they ship alone)."""

from __future__ import annotations

import ast

from pipeline_helpers import PROJECT

from infra import spec
from pipelines import catalog


def test_estimator_tables_hold_the_same_names_and_tasks() -> None:
    assert {name: entry.task for name, entry in catalog.ESTIMATORS.items()} == spec.ESTIMATORS


def test_metric_tables_hold_the_same_names_and_directions() -> None:
    assert catalog.METRICS == spec.METRICS


def test_every_estimator_class_exists_and_takes_its_defaults() -> None:
    from pipelines.train import _estimator_class

    for name, entry in catalog.ESTIMATORS.items():
        cls = _estimator_class(name)
        known = set(cls().get_params())
        assert set(entry.defaults) <= known, name
        assert entry.seed_param is None or entry.seed_param in known, name


def test_pipelines_never_import_infra() -> None:
    offenders = []
    for path in sorted((PROJECT / "pipelines").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(PROJECT)}:{node.lineno} imports {n}" for n in names
                          if n == "infra" or n.startswith("infra.")]
    assert not offenders, offenders
