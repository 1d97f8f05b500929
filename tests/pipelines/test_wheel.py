"""The pipelines wheel: reproducible bytes, and it runs the whole pipeline alone in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from pipeline_helpers import PROJECT, config_document

from infra.packaging import build_wheel

#: Run inside the fresh environment: every declared dependency is installed at an allowed version
#: (what `pip check` checks, for this distribution), the code imported is the wheel's, and infra is absent.
CHECK = """
import importlib.metadata as md, importlib.util, json, pipelines
from packaging.requirements import Requirement
dist = md.distribution("shipyard-pipelines")
problems = []
for text in dist.requires or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        installed = md.version(req.name)
    except md.PackageNotFoundError:
        problems.append(f"{req.name}: not installed")
        continue
    if not req.specifier.contains(installed, prereleases=True):
        problems.append(f"{req.name} {installed} does not satisfy {req.specifier}")
print(json.dumps({"version": dist.version, "problems": problems, "file": pipelines.__file__,
                  "requires": dist.requires, "infra": importlib.util.find_spec("infra") is not None}))
"""


@pytest.mark.slow
def test_wheel_is_reproducible_and_runs_alone_in_a_fresh_venv(tmp_path: Path, client_for) -> None:
    first = build_wheel(PROJECT, tmp_path / "a")
    second = build_wheel(PROJECT, tmp_path / "b")
    assert first.rebuilt and second.rebuilt
    assert first.filename == second.filename and first.path.read_bytes() == second.path.read_bytes()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # `venv` bases a new environment on the base interpreter, so its "system site" is not this test
    # environment's: point it at our site-packages with a plain path entry. Plain entries do not process
    # that directory's .pth files, so the editable install of the source tree stays out of sight.
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "_shipyard_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(first.path)], check=True)
    assert (venv / "bin" / "shipyard-pipelines").is_file()

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "PYTHON", "MLFLOW_"))}
    check = json.loads(subprocess.run([str(python), "-c", CHECK], check=True, capture_output=True, text=True,
                                      cwd=outside, env=env).stdout)
    assert check["problems"] == []
    assert check["version"] == first.version and check["requires"] == list(first.requirements)
    assert check["file"].startswith(str(site)) and not check["infra"]

    document = config_document(outside)
    (outside / "run.json").write_text(json.dumps(document))
    run = subprocess.run([str(python), "-m", "pipelines", "run", "--config", "run.json"], capture_output=True,
                         text=True, cwd=outside, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "promoted: champion (none) -> v1" in run.stdout

    from pipelines.config import from_dict
    from pipelines.registry import alias_version

    client = client_for(from_dict(document))
    champion = alias_version(client, "churn", "champion")
    assert champion is not None
    assert champion.tags["package.version"] == first.version
    assert champion.tags["package.hash"] == first.content_hash
    assert champion.tags["git.commit"] == "unknown"  # an installed wheel does not guess a commit
