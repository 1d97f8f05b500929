"""The init container's install command and the main container's import path, run for real on the built wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from k8s_helpers import ROOT

from infra.packaging import build_wheel
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.workload import PipelinesRuntime, install_wheel_container


def test_the_wheel_installs_offline_and_pipelines_runs_from_the_site_dir(tmp_path: Path) -> None:
    package = build_wheel(ROOT, tmp_path / "dist")
    runtime = PipelinesRuntime(image="runtime", wheel_configmap="cm", wheel_filename=package.filename,
                               config_configmap="cfg", model="churn")
    command = install_wheel_container(runtime).command
    site = tmp_path / "site"
    # The pod's paths, mapped into the temporary directory; `python` is this interpreter (the image's role).
    argv = [sys.executable if word == "python" else word for word in command]
    argv = [str(site) if word == layout.SITE_DIR else word for word in argv]
    argv[-1] = str(package.path)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(argv, check=True, env=env, capture_output=True, cwd=tmp_path)
    assert (site / "pipelines" / "__main__.py").is_file()
    probe = subprocess.run([sys.executable, "-c", "import pipelines; print(pipelines.__file__)"],
                           env={**env, "PYTHONPATH": str(site)}, cwd=tmp_path, capture_output=True, text=True,
                           check=True)
    assert Path(probe.stdout.strip()).is_relative_to(site)
    usage = subprocess.run([sys.executable, "-m", "pipelines", "--help"], env={**env, "PYTHONPATH": str(site)},
                           cwd=tmp_path, capture_output=True, text=True)
    assert usage.returncode == 0 and "monitor" in usage.stdout and "serve" in usage.stdout
