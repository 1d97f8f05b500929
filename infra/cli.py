"""The `shipyard` command line. Each subcommand imports what it needs only when it runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from infra.stackfile import SpecError, load_stack, stack_file_schema
from pipelines.plugins import resolve

#: subcommand -> "module:function" taking the parsed arguments and returning an exit code.
COMMANDS: dict[str, str] = {
    "validate": "infra.cli:validate",
    "plan": "infra.plan:command",
    "cost": "infra.cost:command",
    "diff": "infra.diff:command",
    "promote": "infra.promote:promote",
    "approve": "infra.promote:approve",
    "deploy": "infra.deploy:command",
    "schema": "infra.cli:schema",
    "package": "infra.cli:package",
    "up": "infra.local.commands:up",
    "down": "infra.local.commands:down",
    "status": "infra.local.commands:status",
    "predict": "infra.local.commands:predict",
    "drift": "infra.local.commands:drift",
}


def _stack_args(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    group = parser.add_mutually_exclusive_group(required=default is None)
    group.add_argument("--stack", "-s", default=default, help="stack name: stacks/Pulumi.<stack>.yaml")
    group.add_argument("--config", type=Path, help="a stack file anywhere")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="shipyard", description="One MLOps platform spec, any target.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="validate a stack's spec; exit 1 with located problems")
    _stack_args(p)
    p = sub.add_parser("plan", help="run the Pulumi program offline (mock runtime) and show what it declares")
    _stack_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = sub.add_parser("cost", help="monthly estimate per component and resource, idle and at maximum scale")
    _stack_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = sub.add_parser("diff", help="what differs between two stacks (spec, plan, cost), or a stack and a revision")
    p.add_argument("a", metavar="A", help="a stack (with --rev: the stack compared with itself at BASE)")
    p.add_argument("b", metavar="B", nargs="?", help="the other stack")
    p.add_argument("--rev", metavar="BASE", help="compare stack A at git revision BASE with the working tree")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--markdown", action="store_true", help="a Markdown section (for a pull-request comment)")
    p = sub.add_parser("promote", help="copy a model version that passed upstream into the next stack's registry; "
                                       "its gates decide")
    p.add_argument("--model", required=True, help="the model's name in both stacks' specs")
    p.add_argument("--from", dest="from_stack", required=True, metavar="STACK", help="the upstream stack")
    p.add_argument("--to", dest="to_stack", required=True, metavar="STACK", help="the downstream stack")
    p.add_argument("--version", default=None, help="the upstream version (default: the upstream champion)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("approve", help="approve a gated version in a stack with manual promotion: it becomes champion")
    p.add_argument("--stack", "-s", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("deploy", help="preview, up and smoke-test a stack (Pulumi Automation API; needs the CLI)")
    _stack_args(p)
    p.add_argument("--json", action="store_true")
    sub.add_parser("schema", help="print the JSON Schema of a stack file")
    p = sub.add_parser("package", help="build the content-addressed pipelines wheel")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: dist/)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("up", help="bring the local platform up (idempotent)")
    _stack_args(p, "local")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("down", help="stop every process of the local platform")
    _stack_args(p, "local")
    p.add_argument("--purge", action="store_true", help="also delete the state directory")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("status", help="what runs, where, which version serves, the last drift result")
    _stack_args(p, "local")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("predict", help="send a CSV/JSON file to a model's endpoint")
    _stack_args(p, "local")
    p.add_argument("--model", required=True)
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("drift", help="send shifted demo traffic to a model, then run its monitor")
    _stack_args(p, "local")
    p.add_argument("--model", required=True)
    p.add_argument("--shift", type=float, default=1.0, help="mean shift, in standard deviations")
    p.add_argument("--prior", type=float, default=None, help="positive-class share of the traffic")
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--json", action="store_true")
    return parser


def validate(args: argparse.Namespace) -> int:
    """`shipyard validate`: load and validate the stack (problems raise SpecError); say what the target ignores."""
    loaded = load_stack(args.stack, config_file=args.config)
    spec = loaded.spec
    print(f"{loaded.stack_file}: valid ({spec.target}, {spec.environment}, "
          f"{len(spec.models)} model(s): {', '.join(m.name for m in spec.models)})")
    for notice in loaded.notices:
        print(f"warning: {notice}", file=sys.stderr)
    if loaded.notices:
        print(f"{len(loaded.notices)} setting(s) not honoured by target {spec.target!r}.", file=sys.stderr)
    return 0


def schema(args: argparse.Namespace) -> int:
    """`shipyard schema`: the JSON Schema of a stack file."""
    print(json.dumps(stack_file_schema(), indent=2))
    return 0


def package(args: argparse.Namespace) -> int:
    """`shipyard package`: build (or reuse) the pipelines wheel of this tree."""
    from infra.packaging import build_wheel
    from infra.stackfile import find_project_dir

    built = build_wheel(find_project_dir(), args.out)
    if args.json:
        print(json.dumps({"path": str(built.path), "version": built.version, "sha256": built.sha256,
                          "content_hash": built.content_hash, "rebuilt": built.rebuilt}))
    else:
        state = "built" if built.rebuilt else "unchanged, reused"
        print(f"{built.path} ({state})\nversion {built.version}\nsha256  {built.sha256}")
    return 0


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    return resolve(COMMANDS[command])


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; spec problems print located messages and exit 1, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return _handler(args.command)(args)
    except SpecError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing was declared.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
