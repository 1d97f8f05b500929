"""The program runs the way the Pulumi CLI runs it: `runpy.run_path` on the `main` directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What pulumi-language-python-exec does, under the SDK's mock runtime instead of an engine.
_AS_PULUMI_DOES = """
import asyncio, json, runpy, sys
from pathlib import Path
import pulumi
from pulumi.runtime.stack import run_pulumi_func
from infra.plan_capture import CapturingMonitor, _secret_config
from infra.plan_mocks import PlanMocks
from infra.stackfile import load_stack

root = Path(sys.argv[1])
loaded = load_stack("k8s-dev", project_dir=root)
loop = asyncio.new_event_loop(); asyncio.set_event_loop(loop)
config, secret_keys = _secret_config(loaded)
pulumi.runtime.set_all_config(config, secret_keys)
class Probe:
    # records the import path at the moment the program imports its own modules
    paths = []
    def find_spec(self, name, path=None, target=None):
        if name == "infra.program":
            self.paths.append(list(sys.path))
        return None
probe = Probe()
sys.meta_path.insert(0, probe)
sys.modules.pop("infra.program", None)
mocks = PlanMocks(loaded.spec); monitor = CapturingMonitor(mocks)
pulumi.runtime.set_mocks(mocks, project="shipyard", stack="k8s-dev", preview=False, monitor=monitor)
loop.run_until_complete(run_pulumi_func(lambda: runpy.run_path(str(root / "infra"), run_name="__main__")))
infra_dir = str((root / "infra").resolve())
shadowing = any(infra_dir in [str(Path(p or ".").resolve()) for p in paths] for paths in probe.paths)
print(json.dumps({"resources": len(monitor.captured), "probed": len(probe.paths), "infra_dir_on_path": shadowing}))
"""


def test_the_main_directory_runs_as_the_cli_runs_it() -> None:
    run = subprocess.run([sys.executable, "-c", _AS_PULUMI_DOES, str(ROOT)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["resources"] > 20
    # run_path puts infra/ first on sys.path, where infra/packaging.py and infra/secrets.py would shadow the
    # modules of the same names; __main__ takes it off before the program imports anything.
    assert result["probed"] == 1 and result["infra_dir_on_path"] is False
