"""The command line: `serve` hands over to the model server; start-up stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.__main__ import STEPS, build_parser, main


def test_serve_dispatches_to_the_model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.serving.server as server

    seen = []
    monkeypatch.setattr(server, "main", lambda argv: seen.append(argv) or 0)
    assert main(["serve", "--config", "run.json", "--host", "0.0.0.0", "--port", "8080"]) == 0
    assert seen == [["--config", "run.json", "--host", "0.0.0.0", "--port", "8080"]]


def test_every_step_has_a_subcommand() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert set(commands) == set(STEPS)


def test_configuration_errors_do_not_import_mlflow_or_sklearn() -> None:
    code = ("import sys\nfrom pipelines.__main__ import main\nrc = main(['run'])\n"
            "print(rc, 'mlflow' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["2", "False", "False"]
    assert "model_name: is required" in out.stderr
