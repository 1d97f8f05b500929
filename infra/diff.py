"""`shipyard diff`: what differs between two stacks, or one stack between two git revisions.

- **Spec**: the validated specs (every default filled in), by key path; models by name
  (`models[churn].serving.max_replicas`). A difference is marked `environment` when both stacks' files say the
  same thing there (it comes only from the environment's defaults: prod protects its state, keeps two replicas...).
- **Plan**: the offline plans' resources by URN with the stack name and the `<name>-<environment>` prefix
  normalised (and the mock runtime's name-derived hashes masked), so `aws-staging` and `aws-prod` line up:
  resources added, removed, and changed inputs by path (JSON documents held in strings are compared parsed).
- **Cost**: both estimates (`infra.cost`) and their difference.

`--rev BASE` compares the stack as it is with the same stack at a git revision: the files at BASE are extracted
with `git archive` into a temporary directory; its spec is read with this tree's loader and its plan is made
by BASE's own code (`python -m` in that directory), so the plan difference is what merging the change would do.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.cost import Estimate, estimate, load_prices
from infra.image import CONTEXT_FILES
from infra.merge import written
from infra.stackfile import LoadedStack, SpecError, find_project_dir, load_stack
from infra.strict_yaml import read_yaml

#: Files a revision needs to load its stacks and make its plans.
REVISION_FILES = ("Pulumi.yaml", "pyproject.toml", "infra", "pipelines", "stacks",
                  *dict.fromkeys(name.split("/")[0] for name in CONTEXT_FILES))  # the image's build context
MISSING = object()
STACK_TOKEN = "{stack}"
PREFIX_TOKEN = "{prefix}"
_MOCK_HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,16}\b")
#: Paths per changed resource shown by the text renderings.
SHOWN = 6


def flatten(node: Any, path: str = "") -> dict[str, Any]:
    """Leaves of a JSON-like value by key path; `models` entries by name; other lists are leaves."""
    if isinstance(node, dict):
        if node.get("secure") is not None:
            return {path: "[secret]"}
        out: dict[str, Any] = {}
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "models" and not path and isinstance(value, list):
                for model in value:
                    name = model.get("name") if isinstance(model, dict) else None
                    out.update(flatten({k: v for k, v in model.items() if k != "name"}, f"models[{name}]")
                               if isinstance(model, dict) else {f"models[{name}]": model})
            elif key == "source" and set(node) <= {"secure", "ref", "source"}:
                continue  # where the loader found a secret: not a setting
            else:
                out.update(flatten(value, here))
        return out
    return {path: node}


@dataclass
class SpecChange:
    """One key path whose merged value differs."""

    path: str
    a: Any
    b: Any
    #: 'environment' when both stacks' files agree there (only the environment defaults differ), else 'stack'.
    source: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"path": self.path, "a": _plain(self.a), "b": _plain(self.b), "source": self.source}


def _plain(value: Any) -> Any:
    return None if value is MISSING else value


def _show(value: Any, path: str = "") -> str:
    if value is MISSING:
        return "(absent)"
    if re.fullmatch(r"models\[[^]]+\]", path):
        return "(model)"
    return json.dumps(value, sort_keys=True)


def spec_changes(a: dict[str, Any], b: dict[str, Any], written_a: dict[str, Any],
                 written_b: dict[str, Any]) -> list[SpecChange]:
    """Differences between two validated specs (as JSON), marked by where they come from."""
    flat_a, flat_b = flatten(a), flatten(b)
    user_a, user_b = flatten(written_a), flatten(written_b)
    models_a = {m["name"]: m for m in a.get("models", [])}
    models_b = {m["name"]: m for m in b.get("models", [])}
    changes = [SpecChange(f"models[{name}]", models_a.get(name, MISSING), models_b.get(name, MISSING), "stack")
               for name in sorted(set(models_a) ^ set(models_b))]
    alone = tuple(f"{c.path}." for c in changes)
    for path in sorted(set(flat_a) | set(flat_b)):
        if path.startswith(alone):
            continue  # a model only one side has is one change, above
        va, vb = flat_a.get(path, MISSING), flat_b.get(path, MISSING)
        if va != vb:
            from_files = user_a.get(path, MISSING) != user_b.get(path, MISSING)
            changes.append(SpecChange(path, va, vb, "stack" if from_files else "environment"))
    return changes


def normalise(value: Any, stack: str, prefix: str) -> Any:
    """A plan value with the stack name and resource-name prefix replaced by tokens and mock hashes masked."""
    if isinstance(value, dict):
        return {k: normalise(v, stack, prefix) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, stack, prefix) for v in value]
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "{[":
            try:
                return normalise(json.loads(text), stack, prefix)
            except ValueError:
                pass
        value = value.replace(f"urn:pulumi:{stack}::", f"urn:pulumi:{STACK_TOKEN}::").replace(prefix, PREFIX_TOKEN)
        return _MOCK_HASH.sub("<hash>", value)
    return value


def _leaves(node: Any, path: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        return {p: v for k, value in node.items() for p, v in _leaves(value, f"{path}.{k}" if path else k).items()}
    if isinstance(node, list) and node:
        return {p: v for i, value in enumerate(node) for p, v in _leaves(value, f"{path}[{i}]").items()}
    return {path: node}


@dataclass
class ResourceChange:
    """A resource in both plans whose inputs (or protection) differ."""

    urn: str
    type: str
    changes: list[tuple[str, Any, Any]]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"urn": self.urn, "type": self.type,
                "changes": [{"path": p, "a": _plain(a), "b": _plain(b)} for p, a, b in self.changes]}


@dataclass
class PlanDiff:
    """Resources added, removed and changed from plan A to plan B (normalised URNs)."""

    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"added": [{"urn": u, "type": t} for u, t in self.added],
                "removed": [{"urn": u, "type": t} for u, t in self.removed],
                "changed": [c.to_json() for c in self.changed]}


def plan_diff(a: list[dict[str, Any]], b: list[dict[str, Any]], names_a: tuple[str, str],
              names_b: tuple[str, str]) -> PlanDiff:
    """Compare two plans' resources; `names_*` are each plan's (stack, prefix)."""
    def keyed(resources: list[dict[str, Any]], names: tuple[str, str]) -> dict[str, dict[str, Any]]:
        return {normalise(r["urn"], *names): {"type": r["type"], "inputs": normalise(r["inputs"], *names),
                                              "protect": r.get("protect", False),
                                              "retain_on_delete": r.get("retain_on_delete", False)}
                for r in resources}

    ka, kb = keyed(a, names_a), keyed(b, names_b)
    diff = PlanDiff(added=[(u, kb[u]["type"]) for u in sorted(set(kb) - set(ka))],
                    removed=[(u, ka[u]["type"]) for u in sorted(set(ka) - set(kb))])
    for urn in sorted(set(ka) & set(kb)):
        la, lb = _leaves({k: v for k, v in ka[urn].items() if k != "type"}), \
            _leaves({k: v for k, v in kb[urn].items() if k != "type"})
        changes = [(p, la.get(p, MISSING), lb.get(p, MISSING)) for p in sorted(set(la) | set(lb))
                   if la.get(p, MISSING) != lb.get(p, MISSING)]
        if changes:
            diff.changed.append(ResourceChange(urn, ka[urn]["type"], changes))
    return diff


@dataclass
class Side:
    """One side of a comparison: a label, its spec (or the problems loading it) and its plan."""

    label: str
    stack: str
    prefix: str = ""
    target: str = ""
    region: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    written: dict[str, Any] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    #: The stack does not exist on this side (a new stack, compared with a revision before it): not a failure.
    absent: bool = False

    def estimate(self) -> Estimate | None:
        """The cost estimate of this side's plan (with this tree's price tables)."""
        if self.error or not self.target:
            return None
        return estimate(self.resources, stack=self.stack, target=self.target, region=self.region,
                        table=load_prices(self.target, self.region))


def _written(loaded: LoadedStack) -> dict[str, Any]:
    shared = read_yaml(loaded.shared_file)[0] if loaded.shared_file else {}
    return written(shared or {}, loaded.overlay)[0]


def side_from_loaded(label: str, loaded: LoadedStack, resources: list[dict[str, Any]]) -> Side:
    """A side from a loaded stack and its plan's resources."""
    spec = loaded.spec
    return Side(label=label, stack=loaded.stack, prefix=spec.prefix, target=spec.target, region=spec.region,
                spec=spec.model_dump(mode="json"), written=_written(loaded), resources=resources)


def current_side(stack: str, project_dir: Path) -> Side:
    """A stack of this tree: its spec and its offline plan."""
    from infra.plan import PlanError, build_plan

    try:
        loaded = load_stack(stack, project_dir=project_dir)
        plan = build_plan(stack, project_dir=project_dir)
    except SpecError as exc:
        return Side(label=stack, stack=stack, error="; ".join(str(p) for p in exc.problems))
    except PlanError as exc:
        return Side(label=stack, stack=stack, error=str(exc))
    return side_from_loaded(stack, loaded, plan.resources)


def extract_revision(project_dir: Path, rev: str, dest: Path) -> None:
    """The files a revision needs (REVISION_FILES that exist there), from `git archive`, into `dest`."""
    listed = subprocess.run(["git", "-C", str(project_dir), "ls-tree", "--name-only", rev], capture_output=True,
                            text=True)
    if listed.returncode != 0:
        raise ValueError(f"git cannot read revision {rev!r}: {listed.stderr.strip()}")
    present = [name for name in REVISION_FILES if name in listed.stdout.split()]
    archive = subprocess.run(["git", "-C", str(project_dir), "archive", "--format=tar", rev, "--", *present],
                             capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")


def revision_side(stack: str, rev: str, project_dir: Path) -> Side:
    """A stack as it was at a git revision: spec read with this loader, plan made by that revision's code."""
    label = f"{stack}@{rev}"
    with tempfile.TemporaryDirectory(prefix="shipyard-rev-") as tmp:
        root = Path(tmp)
        try:
            extract_revision(project_dir, rev, root)
        except (ValueError, subprocess.CalledProcessError) as exc:
            return Side(label=label, stack=stack, error=str(exc))
        if not (root / "stacks" / f"Pulumi.{stack}.yaml").is_file():
            return Side(label=label, stack=stack, error=f"stack {stack!r} does not exist at {rev}", absent=True)
        try:
            loaded = load_stack(stack, project_dir=root)
        except SpecError as exc:
            return Side(label=label, stack=stack, error="; ".join(str(p) for p in exc.problems))
        env = {**os.environ, "PYTHONPATH": str(root)}
        run = subprocess.run([sys.executable, "-c", "import sys; from infra.cli import main; sys.exit(main())",
                              "plan", "--stack", stack, "--json"], cwd=root, env=env, capture_output=True, text=True)
        try:
            document = json.loads(run.stdout)
        except ValueError:
            tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
            return Side(label=label, stack=stack, error=f"the plan at {rev} failed: {tail}")
        return side_from_loaded(label, loaded, document["resources"])


@dataclass
class StackDiff:
    """Everything that differs from side A to side B."""

    a: Side
    b: Side
    spec: list[SpecChange]
    plan: PlanDiff
    cost_a: Estimate | None
    cost_b: Estimate | None

    def cost_json(self) -> dict[str, Any] | None:
        """Both estimates' totals and their difference."""
        if self.cost_a is None or self.cost_b is None:
            return None
        out: dict[str, Any] = {"currency": self.cost_b.table.currency}
        for which in ("idle", "peak"):
            a, b = self.cost_a.total(which), self.cost_b.total(which)
            out[which] = {"a": round(a, 2), "b": round(b, 2), "delta": round(b - a, 2)}
        out["unknown"] = {"a": sum(self.cost_a.by_status("unknown").values()),
                          "b": sum(self.cost_b.by_status("unknown").values())}
        out["summary"] = {"a": self.cost_a.summary(), "b": self.cost_b.summary()}
        return out

    def to_json(self) -> dict[str, Any]:
        """The object `diff --json` prints."""
        return {"a": self.a.label, "b": self.b.label, "errors": {s.label: s.error for s in (self.a, self.b) if s.error},
                "spec": [c.to_json() for c in self.spec], "plan": self.plan.to_json(), "cost": self.cost_json()}


def compare(a: Side, b: Side) -> StackDiff:
    """The difference from A to B (what is unavailable on a side that failed to load is left empty)."""
    spec = spec_changes(a.spec, b.spec, a.written, b.written) if not (a.error or b.error) else []
    plan = plan_diff(a.resources, b.resources, (a.stack, a.prefix), (b.stack, b.prefix))
    return StackDiff(a, b, spec, plan, a.estimate(), b.estimate())


def _money(value: float) -> str:
    return f"{value:+,.2f}"


def render(diff: StackDiff, markdown: bool = False) -> str:
    """Text (or a Markdown section for a PR comment) of a diff."""
    head = f"### `{diff.a.label}` -> `{diff.b.label}`" if markdown else f"Diff {diff.a.label} -> {diff.b.label}"
    lines = [head, ""]
    lines += [f"error: {s.label}: {s.error}" for s in (diff.a, diff.b) if s.error]
    env = sum(c.source == "environment" for c in diff.spec)
    lines.append(f"Spec: {len(diff.spec)} difference(s), {env} only from the environment defaults")
    bullet = "- " if markdown else "  "
    for c in diff.spec:
        marker = "  (environment)" if c.source == "environment" else ""
        lines.append(f"{bullet}{c.path}: {_show(c.a, c.path)} -> {_show(c.b, c.path)}{marker}")
    p = diff.plan
    lines += ["", f"Plan: {len(p.added)} added, {len(p.removed)} removed, {len(p.changed)} changed"]
    lines += [f"{bullet}+ {t}  {u.rsplit('::', 1)[-1]}" for u, t in p.added]
    lines += [f"{bullet}- {t}  {u.rsplit('::', 1)[-1]}" for u, t in p.removed]
    for change in p.changed:
        shown = ", ".join(f"{path}: {_show(x)} -> {_show(y)}" for path, x, y in change.changes[:SHOWN])
        more = f" and {len(change.changes) - SHOWN} more" if len(change.changes) > SHOWN else ""
        lines.append(f"{bullet}~ {change.type}  {change.urn.rsplit('::', 1)[-1]}: {shown}{more}")
    cost = diff.cost_json()
    if cost:
        cur = cost["currency"]
        lines += ["", f"Cost ({cur}/month): idle {cost['idle']['a']:,.2f} -> {cost['idle']['b']:,.2f} "
                      f"({_money(cost['idle']['delta'])}), at maximum scale {cost['peak']['a']:,.2f} -> "
                      f"{cost['peak']['b']:,.2f} ({_money(cost['peak']['delta'])}); unknown resources "
                      f"{cost['unknown']['a']} -> {cost['unknown']['b']}", f"{bullet}{cost['summary']['b']}"]
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    """`shipyard diff A B` or `shipyard diff S --rev BASE`: exit 0; 1 when a side could not be loaded or planned
    (a stack that did not exist at BASE is not a failure: everything in it is added)."""
    import logging

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    project_dir = find_project_dir()
    if args.rev:
        if args.b:
            print("error: give one stack with --rev (it is compared with itself at that revision)", file=sys.stderr)
            return 2
        result = compare(revision_side(args.a, args.rev, project_dir), current_side(args.a, project_dir))
    else:
        if not args.b:
            print("error: name two stacks (diff A B), or one stack and --rev BASE", file=sys.stderr)
            return 2
        result = compare(current_side(args.a, project_dir), current_side(args.b, project_dir))
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(render(result, markdown=args.markdown))
    return 1 if (result.a.error and not result.a.absent) or result.b.error else 0
