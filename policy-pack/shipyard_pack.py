"""The policy pack's glue, without pulumi_policy: turn what the Pulumi CLI hands a stack policy into the
graph `infra.policies` checks, and say which policy reports at which enforcement level.

`__main__.py` imports pulumi_policy and wires these functions into a `PolicyPack`; tests import this
module alone (pulumi-policy cannot run without the CLI and pins protobuf/grpcio the project does not).

Differences from the offline plan, both from what pulumi-policy exposes:
- `retain_on_delete` is not in `PolicyResourceOptions`, so here only `protect` counts for state-protected;
- the stack's outputs are the props of its `pulumi:pulumi:Stack` resource when the CLI sends them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from infra.plan_capture import UNKNOWN, wire_to_plain
from infra.policies import POLICIES, Context, Graph, Level, Policy
from infra.stackfile import find_project_dir, load_stack

STACK_TYPE = "pulumi:pulumi:Stack"
PACK_DIR = Path(__file__).resolve().parent


class Report(Protocol):
    """pulumi_policy's ReportViolation: `(message, urn)`."""

    def __call__(self, message: str, urn: str | None = None) -> None: ...


def _mark_unknowns(wire: Any, unknowns: frozenset[str]) -> Any:
    if isinstance(wire, dict):
        return {k: _mark_unknowns(v, unknowns) for k, v in wire.items()}
    if isinstance(wire, list):
        return [_mark_unknowns(v, unknowns) for v in wire]
    return UNKNOWN if isinstance(wire, str) and wire in unknowns else wire


def mask_wire(wire: dict[str, Any], unknowns: frozenset[str] = frozenset()) -> Any:
    """Wire-format properties as the plan sees them: secrets '[secret]', unknown sentinels '[unknown]'.

    pulumi-policy would unwrap secrets into plaintext before a policy sees them; masking them first
    keeps `no-plaintext-secrets` meaningful and never hands a secret value to a policy.
    """
    return wire_to_plain(_mark_unknowns(wire, unknowns))


def plain(value: Any) -> Any:
    """pulumi-policy's read-only proxies (Mappings and Sequences) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


def resource_dict(resource: Any) -> dict[str, Any]:
    """A pulumi_policy `PolicyResource` as a captured resource dict (`plan --json`'s shape)."""
    parent = resource.parent.urn if resource.parent is not None else (resource.opts.parent or "")
    return {
        "urn": resource.urn, "type": resource.resource_type, "name": resource.name, "parent": parent,
        "dependencies": sorted(d.urn for d in resource.dependencies),
        "inputs": plain(resource.props), "protect": bool(resource.opts.protect), "retain_on_delete": False,
    }


def stack_of(urn: str) -> str:
    """'urn:pulumi:<stack>::<project>::<type>::<name>' -> '<stack>'."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


def context_for(stack: str, config: Mapping[str, Any] | None, project_dir: Path | None = None) -> Context:
    """The policies' context: from the policy config when it names an environment, else from the stack file."""
    if config and config.get("environment"):
        public = frozenset(config.get("public_models") or ())
        return Context(environment=config["environment"], private_network=config.get("private_network", True),
                       models=tuple(config.get("models") or public), public_models=public)
    project_dir = project_dir or find_project_dir(PACK_DIR)
    return Context.from_spec(load_stack(stack, project_dir=project_dir).spec)


def graph_for(resources: Iterable[Any], config: Mapping[str, Any] | None, project_dir: Path | None = None) -> Graph:
    """The graph of a stack as the CLI describes it to a stack validation policy."""
    nodes = list(resources)
    outputs = next((plain(r.props) for r in nodes if r.resource_type == STACK_TYPE), {})
    stack_urn = next((r.urn for r in nodes if r.resource_type == STACK_TYPE), "")
    graphed = [resource_dict(r) for r in nodes if r.resource_type != STACK_TYPE]
    urn = stack_urn or next((r["urn"] for r in graphed), "")
    return Graph(graphed, outputs, context_for(stack_of(urn), config, project_dir), stack_urn)


@dataclass(frozen=True)
class PackPolicy:
    """One policy registration of the pack: the pack's enforcement level is fixed per registration, so a
    policy whose level depends on the environment is registered once per level and reports only where
    that level applies."""

    name: str
    description: str
    level: Level
    policy: Policy

    def validate(self, resources: Iterable[Any], config: Mapping[str, Any] | None, report: Report,
                 project_dir: Path | None = None) -> None:
        """Report the policy's findings when its level in the stack's environment is this registration's."""
        graph = graph_for(resources, config, project_dir)
        if self.policy.level(graph.context.environment) != self.level:
            return
        for finding in self.policy.check(graph):
            report(finding.message, finding.urn or None)


def pack_policies(policies: Iterable[Policy] = POLICIES) -> list[PackPolicy]:
    """Every registration: '<name>' at its strictest level, '<name>-advisory' too when it is advisory somewhere."""
    registrations = []
    for policy in policies:
        levels = {policy.level(e) for e in ("dev", "staging", "prod")} | {policy.default}
        for level in ("mandatory", "advisory"):
            if level in levels:
                name = policy.name if level == "mandatory" or "mandatory" not in levels else f"{policy.name}-advisory"
                registrations.append(PackPolicy(name, policy.description, level, policy))
    return registrations


def validator(registration: PackPolicy) -> Callable[[Any, Report], None]:
    """A `StackValidation` callable for pulumi_policy: `(args, report_violation) -> None`."""
    def validate(args: Any, report_violation: Report) -> None:
        registration.validate(args.resources, args.get_config(), report_violation)
    return validate
