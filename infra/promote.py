"""`shipyard promote` and `shipyard approve`: a model version moves between stacks through their registries.

Each stack's registry is found through the outputs contract's `tracking_uri`: for a local stack, the running
local platform's registry; for a deployed stack, `pulumi stack output tracking_uri` (the Pulumi CLI);
`SHIPYARD_TRACKING_URI_<STACK>` (the stack name upper-cased, non-alphanumerics as '_') overrides both, e.g.
for a registry reached through a tunnel. The work itself is `pipelines.promotion`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import getpass
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from infra.runconfig import pipeline_config
from infra.spec import ModelSpec
from infra.stackfile import LoadedStack, find_project_dir, load_stack

if TYPE_CHECKING:
    from pipelines.config import RunConfig

ENV_PREFIX = "SHIPYARD_TRACKING_URI_"
#: Exit code of a promotion the downstream gates (or data validation) refused, as `python -m pipelines run`.
EXIT_REJECTED = 3


class PromotionError(Exception):
    """A promotion cannot start: a stack, model or registry is missing; one sentence."""


def env_name(text: str) -> str:
    """A name as part of an environment variable: upper-cased, non-alphanumerics as '_'."""
    return re.sub(r"[^A-Z0-9]", "_", text.upper())


def override_variable(stack: str) -> str:
    """The environment variable that names a stack's tracking URI explicitly."""
    return ENV_PREFIX + env_name(stack)


def stack_output(stack: str, key: str, project_dir: Path) -> str:
    """One output of a deployed stack, through the Pulumi CLI."""
    if shutil.which("pulumi") is None:
        raise PromotionError(f"stack {stack!r} is deployed with Pulumi and the `pulumi` CLI is not on PATH to read "
                             f"its {key!r} output; install it or set {override_variable(stack)}")
    done = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", stack, "--cwd", str(project_dir)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise PromotionError(f"`pulumi stack output --stack {stack}` failed: {done.stderr.strip()[-300:]}")
    value = json.loads(done.stdout or "{}").get(key)
    if not isinstance(value, str) or not value:
        raise PromotionError(f"stack {stack!r} exports no {key!r} (is it deployed?)")
    return value


def tracking_uri(loaded: LoadedStack, project_dir: Path, env: Mapping[str, str] = os.environ) -> str:
    """The registry URL of a stack (see the module docstring)."""
    explicit = env.get(override_variable(loaded.stack))
    if explicit:
        return explicit
    if loaded.spec.target == "local":
        from infra.local import layout as lay
        from infra.local.state import State

        state = State.load(lay.Layout(lay.state_dir(project_dir, loaded.stack, env)).state_file)
        if lay.REGISTRY not in state.ports or lay.REGISTRY not in state.processes:
            raise PromotionError(f"the local stack {loaded.stack!r} is not running: `shipyard up --stack "
                                 f"{loaded.stack}` first")
        return lay.url(state.ports[lay.REGISTRY])
    return stack_output(loaded.stack, "tracking_uri", project_dir)


def model_of(loaded: LoadedStack, name: str) -> ModelSpec:
    """A model of a stack by name."""
    for model in loaded.spec.models:
        if model.name == name:
            return model
    known = ", ".join(m.name for m in loaded.spec.models)
    raise PromotionError(f"stack {loaded.stack!r} has no model {name!r} (models: {known})")


def run_config(loaded: LoadedStack, model: ModelSpec, uri: str) -> RunConfig:
    """The run configuration of a stack's model, on its registry, for steps run from here (no serving, no sinks)."""
    from pipelines.config import from_dict

    return from_dict(pipeline_config(loaded.spec, model, tracking_uri=uri, inference_log_uri="", reports_uri="",
                                     sinks=["stdout"], retrain="none"))


def caller(env: Mapping[str, str] = os.environ) -> str:
    """Who is acting: the GitHub actor (with the run), else git's configured user, else the login name."""
    if env.get("GITHUB_ACTOR"):
        return f"{env['GITHUB_ACTOR']} (GitHub Actions run {env.get('GITHUB_RUN_ID', '?')})"

    def git(key: str) -> str:
        try:
            return subprocess.run(["git", "config", key], capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    name, email = git("user.name"), git("user.email")
    if name or email:
        return f"{name} <{email}>".strip() if email else name
    return env.get("USER") or getpass.getuser()


def _print(data: dict[str, object], lines: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data))
    else:
        print("\n".join(lines))


def promote(args: argparse.Namespace) -> int:
    """`shipyard promote --model NAME --from STACK --to STACK [--version V]`: 0 promoted or awaiting approval,
    3 refused by the downstream gates or data, 1 anything else."""
    from pipelines.promotion import Source, promote_between
    from pipelines.registry import RegistryError

    project_dir = find_project_dir()
    try:
        upstream = load_stack(args.from_stack, project_dir=project_dir)
        downstream = load_stack(args.to_stack, project_dir=project_dir)
        up_model, down_model = model_of(upstream, args.model), model_of(downstream, args.model)
        source = Source(stack=upstream.stack, tracking_uri=tracking_uri(upstream, project_dir),
                        model_name=up_model.registered_model, version=args.version, alias=up_model.serving.alias)
        target = run_config(downstream, down_model, tracking_uri(downstream, project_dir))
        with contextlib.redirect_stdout(sys.stderr):  # MLflow prints run links: keep stdout for the result
            result = promote_between(source, target, downstream.stack)
    except (PromotionError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print(result.to_dict(), result.lines, args.json)
    return 0 if result.ok else EXIT_REJECTED if result.outcome in ("rejected", "invalid-data") else 1


def approve(args: argparse.Namespace) -> int:
    """`shipyard approve --stack S --model NAME --version V`: record who and when, then move the champion."""
    from pipelines.promotion import approve_version
    from pipelines.registry import RegistryError

    project_dir = find_project_dir()
    who = caller()
    at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    try:
        loaded = load_stack(args.stack, project_dir=project_dir)
        model = model_of(loaded, args.model)
        config = run_config(loaded, model, tracking_uri(loaded, project_dir))
        with contextlib.redirect_stdout(sys.stderr):
            move = approve_version(config, args.version, by=who, at=at)
    except (PromotionError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    line = (f"{config.model_name} {config.alias}: {'v' + move.previous if move.previous else '(none)'} -> "
            f"v{move.version}, approved by {who} at {at}" if move.moved else f"{config.model_name}: {move.reason}")
    _print({"approved_by": who, "approved_at": at, "promotion": move.to_dict()}, [line], args.json)
    return 0
