"""One contract, one name table, an acyclic import graph; the pipelines never import infra (they ship alone)."""

from __future__ import annotations

import ast
import operator
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_helpers import PROJECT

from infra import spec
from pipelines import catalog, contract
from pipelines.config import RunConfig


def test_the_spec_sections_are_the_pipelines_contract() -> None:
    """infra builds its model on the contract's classes instead of holding copies of them."""
    fields = spec.ModelSpec.model_fields
    assert fields["pipeline"].annotation is contract.PipelineSpec
    assert issubclass(spec.ServingSpec, contract.ServingSettings)
    assert issubclass(spec.MonitoringSpec, contract.MonitoringSettings)
    assert issubclass(RunConfig, contract.PipelineSpec)
    assert RunConfig.model_fields["monitoring"].annotation is contract.MonitoringSettings
    # what the spec adds to the monitoring section is only what the compute never reads
    assert set(spec.MonitoringSpec.model_fields) - set(contract.MonitoringSettings.model_fields) == {
        "schedule", "alerts"}


def test_a_new_monitoring_setting_reaches_the_run_configuration() -> None:
    """Every field of the contract's monitoring section is written by infra and read back by the pipelines."""
    from infra.runconfig import pipeline_config

    platform = spec.PlatformSpec(target="local", models=[spec.ModelSpec(name="m")])
    document = pipeline_config(platform, platform.models[0], tracking_uri="x", inference_log_uri="l",
                               reports_uri="r", sinks=["stdout"], retrain="none")
    assert set(document["monitoring"]) == set(contract.MonitoringSettings.model_fields)


def test_metric_names_belong_to_one_task_and_lower_is_better_only_for_errors() -> None:
    names = [name for table in catalog.METRICS.values() for name in table]
    assert len(names) == len(set(names))
    assert {name for name in names if not catalog.higher_is_better(name)} == {"rmse", "mae", "log_loss"}


@pytest.mark.parametrize("metric", [m for table in catalog.METRICS.values() for m in table])
def test_is_worse_and_worse_operator_agree_with_the_direction(metric: str) -> None:
    better, worse = (0.6, 0.4) if catalog.higher_is_better(metric) else (0.4, 0.6)
    assert catalog.is_worse(metric, worse, 0.5) and not catalog.is_worse(metric, better, 0.5)
    assert not catalog.is_worse(metric, 0.5, 0.5)  # on the bound is not worse
    compare = {"<": operator.lt, ">": operator.gt}[catalog.worse_operator(metric)]
    assert compare(worse, 0.5) and not compare(better, 0.5) and not compare(0.5, 0.5)


def test_every_estimator_class_exists_and_takes_its_defaults() -> None:
    from pipelines.train import _estimator_class

    for name, entry in catalog.ESTIMATORS.items():
        cls = _estimator_class(name)
        known = set(cls().get_params())
        assert set(entry.defaults) <= known, name
        assert entry.seed_param is None or entry.seed_param in known, name


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PROJECT).with_suffix("").parts).removesuffix(".__init__")


def imported_names(source: str, package: str) -> list[str]:
    """Every dotted name a module's source imports, wherever the import sits (functions, `TYPE_CHECKING` too).

    `from pkg import a, b` gives `pkg.a`, `pkg.b` and `pkg`; `package` resolves relative imports.
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found += [*(f"{module}.{alias.name}" for alias in node.names), module]
    return found


def import_graph() -> dict[str, set[str]]:
    """`pipelines` module -> the `pipelines` modules it imports, at module level, in functions or for typing.

    `from pkg import name` is an edge to the module `pkg.name` when there is one, else to `pkg` itself.
    """
    files = {_module_name(p): p for p in (PROJECT / "pipelines").rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        names = imported_names(path.read_text(), package)
        for target in names:
            submodules = [n for n in names if n.startswith(f"{target}.") and n in files]
            if target in files and target != name and not submodules:
                graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_of_pipelines_is_acyclic() -> None:
    graph = import_graph()
    assert "pipelines.monitor" in graph["pipelines.steps"]  # the graph sees real edges
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_sees_imports_inside_functions() -> None:
    """A cycle hidden behind a function-level import (the old `config -> ... -> config`) is still a cycle."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    hidden = "import json\n\ndef f():\n    from pipelines.steps import run\n    from . import data\n"
    assert imported_names(hidden, "pipelines") == ["json", "pipelines.steps.run", "pipelines.steps",
                                                   "pipelines.data", "pipelines"]


def test_pipelines_never_import_infra() -> None:
    offenders = [f"{path.relative_to(PROJECT)} imports {name}"
                 for path in sorted((PROJECT / "pipelines").rglob("*.py"))
                 for name in imported_names(path.read_text(), _module_name(path))
                 if name == "infra" or name.startswith("infra.")]
    assert not offenders, offenders


def test_the_spec_imports_no_ml_library() -> None:
    """`shipyard validate` loads the contract from pipelines, and nothing heavy with it."""
    code = ("import sys, infra.spec, infra.runconfig; "
            "print(sorted(m for m in ('pandas', 'numpy', 'sklearn', 'mlflow', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
