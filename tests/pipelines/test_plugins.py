"""The one `module:attr` resolver, and every registry that uses it resolving each of its names."""

from __future__ import annotations

import collections
import json
import re

import pytest
from pipeline_helpers import PROJECT

from pipelines.plugins import resolve


def test_resolve_gives_the_attribute_a_dotted_attribute_or_the_module() -> None:
    assert resolve("json:dumps") is json.dumps
    assert resolve("collections:OrderedDict.fromkeys") == collections.OrderedDict.fromkeys
    assert resolve("json") is json


@pytest.mark.parametrize(("reference", "message"), [
    ("no_such_module_xyz:thing", "No module named"),
    ("json:no_such_attribute", "json has no attribute 'no_such_attribute'"),
    ("json:", "not a 'module:attr' reference"),
    (":dumps", "not a 'module:attr' reference"),
])
def test_resolve_refuses_what_it_cannot_find_with_an_import_error(reference: str, message: str) -> None:
    with pytest.raises(ImportError, match=re.escape(message)):
        resolve(reference)


def test_every_registry_entry_resolves() -> None:
    from infra.cli import COMMANDS
    from infra.targets import TARGETS
    from pipelines.__main__ import SERVE
    from pipelines.catalog import ESTIMATORS, TRIGGERS
    from pipelines.sinks import SINKS

    references = {**{f"command {k}": v for k, v in COMMANDS.items()},
                  **{f"trigger {k}": v for k, v in TRIGGERS.items()},
                  **{f"sink {k}": v for k, v in SINKS.items()},
                  **{f"estimator {k}": e.cls for k, e in ESTIMATORS.items()},
                  "serve": SERVE}
    for name, reference in references.items():
        assert callable(resolve(reference)), name
    for name, package in TARGETS.items():
        for reference in (f"{package}.rules:check", f"{package}.rules:ignored", f"{package}.program:build"):
            assert callable(resolve(reference)), (name, reference)


def test_no_other_code_imports_by_name() -> None:
    """`importlib.import_module` and hand-split 'module:attr' strings live in the resolver only."""
    offenders = [str(path.relative_to(PROJECT)) for package in ("infra", "pipelines")
                 for path in sorted((PROJECT / package).rglob("*.py"))
                 if path.name != "plugins.py" and "import_module(" in path.read_text()]
    assert not offenders, offenders
