"""`shipyard plan`: what a stack would create, offline, and whether it passes the policies.

The real program runs under the SDK's mock runtime (`infra.plan_capture`); the captured graph is shown
as a tree grouped by component with counts per type, or as one JSON object (`--json`), and the
policies of `infra.policies` run over it. A mandatory violation makes the command exit 1. A program
that raises gives one paragraph naming the stack, the exception and where in `infra/` it was raised.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import sys
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.cost import estimate_plan
from infra.policies import Context, Graph, Violation, evaluate
from infra.problems import Notice
from infra.stackfile import SpecError, find_project_dir, load_stack

INFRA_DIR = Path(__file__).resolve().parent
#: Frames of the plan machinery itself, never the place a program error is reported at.
_OWN_FILES = {INFRA_DIR / "plan.py", INFRA_DIR / "plan_capture.py"}


@dataclass
class Plan:
    """A stack's captured resource graph, its outputs and the policy violations found in it."""

    stack: str
    target: str
    environment: str
    stack_file: Path
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    violations: list[Violation]
    #: Settings the target does not honour (by key), then anything else the program logged as a warning.
    warnings: list[Notice] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether a mandatory policy failed."""
        return any(v.mandatory for v in self.violations)

    def to_json(self) -> dict[str, Any]:
        """The object `plan --json` prints; resources sorted by URN for a stable output; `cost` is the estimate."""
        return {
            "stack": self.stack,
            "target": self.target,
            "environment": self.environment,
            "resources": sorted(self.resources, key=lambda r: r["urn"]),
            "outputs": self.outputs,
            "violations": [v.to_json() for v in self.violations],
            "warnings": [w.to_json() for w in self.warnings],
            "cost": estimate_plan(self).to_json(),
        }


class PlanError(Exception):
    """The stack's program raised while it was evaluated offline."""

    def __init__(self, stack: str, error: BaseException, engine_errors: list[str]):
        self.stack = stack
        self.error = error
        self.engine_errors = engine_errors
        super().__init__(describe_failure(stack, error, engine_errors))


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of an explicit `raise ... from ...` chain."""
    seen = {id(error)}
    while error.__cause__ is not None and id(error.__cause__) not in seen:
        error = error.__cause__
        seen.add(id(error))
    return error


def infra_frame(error: BaseException) -> str | None:
    """'infra/<file>.py:<line>' of the innermost frame of `error` inside infra/ (outside the plan itself)."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(INFRA_DIR) and path not in _OWN_FILES:
            return f"{path.relative_to(INFRA_DIR.parent)}:{frame.lineno}"
    return None


def _exception_text(error: BaseException) -> str:
    from pulumi import RunError  # a RunError's message is already meant for people

    text = str(error).strip()
    if isinstance(error, RunError) and text:
        return f"reported: {text}"
    return f"raised {type(error).__name__}: {text}".rstrip(": ")


def describe_failure(stack: str, error: BaseException, engine_errors: list[str]) -> str:
    """One paragraph: which stack, what was raised, where in infra/, and what the engine logged."""
    cause = root_cause(error)
    where = infra_frame(cause) or infra_frame(error)
    text = f"plan of stack {stack!r} failed: the Pulumi program {_exception_text(cause)}"
    if where:
        text += f" (at {where})"
    if engine_errors:
        text += ". Logged: " + "; ".join(engine_errors)
    return " ".join(text.split()) + ". No plan was produced; fix the program or the stack file and run it again."


class _EngineLog(logging.Handler):
    """Collects what the program logged through the mock engine (`pulumi.log.*` goes to the root logger)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "root":
            self.records.append(record)

    def messages(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@contextlib.contextmanager
def _engine_log() -> Iterator[_EngineLog]:
    """Route the engine's log records (and the SDK's asyncio noise) to a collector, not to the terminal."""
    root = logging.getLogger()
    handler = _EngineLog()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(previous, logging.WARNING))
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def build_plan(stack: str | None, config: Path | None = None, project_dir: Path | None = None) -> Plan:
    """Validate a stack, evaluate its program offline and run the policies over what it declares."""
    from infra.plan_capture import capture  # imports the Pulumi SDK: only once the spec is valid

    project_dir = project_dir or find_project_dir()
    loaded = load_stack(stack, config_file=config, project_dir=project_dir)
    with _engine_log() as log, contextlib.redirect_stdout(sys.stderr):
        try:
            captured = capture(loaded, project_dir)
        except SpecError:
            raise
        except Exception as exc:
            cause = root_cause(exc)
            if isinstance(cause, SpecError):
                raise cause from None
            gc.collect()  # the failed program's futures report "exception never retrieved" here, not on the terminal
            raise PlanError(loaded.stack, exc, log.messages(logging.ERROR)) from None
    resources = [r.to_json() for r in captured.resources]
    spec = loaded.spec
    notice_logs = {f"not honoured by target {spec.target!r}: {n}" for n in loaded.notices}
    logged = log.messages(logging.WARNING) + log.messages(logging.ERROR)
    violations = evaluate(Graph(resources, captured.outputs, Context.from_spec(spec)))
    return Plan(stack=loaded.stack, target=spec.target, environment=spec.environment, stack_file=loaded.stack_file,
                resources=resources, outputs=captured.outputs, violations=violations,
                warnings=loaded.notices + [Notice("", text) for text in logged if text not in notice_logs])


def _label(resource: dict[str, Any]) -> str:
    flags = [flag for flag in ("protect", "retain_on_delete") if resource.get(flag)]
    return f"{resource['type']}  {resource['name']}" + (f"  [{', '.join(flags)}]" if flags else "")


def render_tree(resources: list[dict[str, Any]]) -> list[str]:
    """The resources indented under their parents; components first, then by type and name."""
    urns = {r["urn"] for r in resources}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in resources:
        children[resource["parent"] if resource["parent"] in urns else ""].append(resource)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r["urn"] not in children, r["type"], r["name"]))
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for resource in children.get(parent, []):
            lines.append("  " * depth + _label(resource))
            walk(resource["urn"], depth + 1)

    walk("", 0)
    return lines


def _where(urn: str, by_urn: dict[str, dict[str, Any]]) -> str:
    resource = by_urn.get(urn)
    return f"{resource['type']}  {resource['name']}" if resource else "stack outputs"


def render(plan: Plan) -> str:
    """The human-readable plan: tree, counts per type, outputs, violations and a verdict."""
    by_urn = {r["urn"]: r for r in plan.resources}
    counts = Counter(r["type"] for r in plan.resources)
    width = max((len(t) for t in counts), default=0)
    lines = [f"Plan of stack {plan.stack} ({plan.target}, {plan.environment}) from {plan.stack_file}", "",
             f"Resources ({len(plan.resources)}):", *render_tree(plan.resources), "", "Counts per type:"]
    lines += [f"  {t:<{width}}  {n:>4}" for t, n in sorted(counts.items())]
    lines += ["", "Outputs:"]
    lines += [f"  {key}: {json.dumps(value, sort_keys=True)}" for key, value in plan.outputs.items()]
    if plan.warnings:
        lines += ["", f"Not honoured by target {plan.target!r}, or logged by the program:",
                  *(f"  warning: {w}" for w in plan.warnings)]
    mandatory = sum(v.mandatory for v in plan.violations)
    lines += ["", f"Policy violations: {mandatory} mandatory, {len(plan.violations) - mandatory} advisory"]
    lines += [f"  [{'MANDATORY' if v.mandatory else 'advisory'}] {v.policy}: {_where(v.urn, by_urn)}: {v.message}"
              for v in plan.violations]
    verdict = "FAILED: a mandatory policy is violated" if plan.failed else "passed"
    lines += ["", estimate_plan(plan).summary() + f" (`shipyard cost --stack {plan.stack}` for the detail)",
              "", f"Plan {verdict}."]
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    """`shipyard plan --stack NAME | --config FILE [--json]`: exit 1 on a mandatory violation or a failing program."""
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # the SDK's abandoned futures are not news here
    try:
        plan = build_plan(args.stack, args.config)
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(plan.to_json()))
        for warning in plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    else:
        print(render(plan))
    return 1 if plan.failed else 0
