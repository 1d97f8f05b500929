"""`python -m pipelines STEP` and the `shipyard-pipelines` console script.

Steps: validate-data, train, evaluate, register, promote, rollback, monitor, run, retrain, serve.
Configuration: `--config PATH_OR_URI`, else $SHIPYARD_RUN_CONFIG, with `SHIPYARD_<KEY>` overrides
(see `pipelines.config`). A configuration error prints the key at fault and exits 2; a step that fails
(invalid data, refused promotion) exits 1; a challenger rejected by the gates exits 3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

from pipelines import steps
from pipelines.config import ConfigError, load_config
from pipelines.plugins import resolve

#: The model server owns its arguments; it is imported only when asked for.
SERVE = "pipelines.serving.server:main"
STEPS = ("validate-data", "train", "evaluate", "register", "promote", "rollback", "monitor", "run", "retrain",
         "serve")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every step except `serve` (which owns its arguments)."""
    parser = argparse.ArgumentParser(prog="shipyard-pipelines", description="shipyard's ML pipeline steps.")
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="run configuration (path or URI); default $SHIPYARD_RUN_CONFIG")
    common.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_parser("validate-data", parents=[common], help="validate the dataset")
    sub.add_parser("train", parents=[common], help="validate and train; logs the model to a new run")
    p = sub.add_parser("evaluate", parents=[common], help="metrics, plots and gates for a training run")
    p.add_argument("--run-id", required=True)
    p = sub.add_parser("register", parents=[common], help="register an evaluated run's model (alias challenger)")
    p.add_argument("--run-id", required=True)
    p = sub.add_parser("promote", parents=[common], help="move the champion alias to a gated version")
    p.add_argument("--version", help="model version (default: the challenger)")
    sub.add_parser("rollback", parents=[common], help="point the champion alias back at the previous champion")
    p = sub.add_parser("monitor", parents=[common], help="drift and quality of the champion's traffic")
    p.add_argument("--reason", help="'schedule' when a schedule (not a drift check) triggered this pass")
    p = sub.add_parser("run", parents=[common], help="validate-data, train, evaluate, register, gates, promote")
    p.add_argument("--reason", default=None, help="what triggered this run (recorded on the run)")
    p = sub.add_parser("retrain", parents=[common], help="run, tagged with the reason that triggered it")
    p.add_argument("--reason", default="manual", help="drift, quality, schedule, manual...")
    sub.add_parser("serve", help="serve the champion (arguments: `serve --help`)")
    return parser


def _dispatch(args: argparse.Namespace, config: Any) -> Any:
    handlers: dict[str, Callable[[], Any]] = {
        "validate-data": lambda: steps.validate_data(config),
        "train": lambda: steps.train(config),
        "evaluate": lambda: steps.evaluate(config, args.run_id),
        "register": lambda: steps.register(config, args.run_id),
        "promote": lambda: steps.promote(config, args.version),
        "rollback": lambda: steps.rollback(config),
        "monitor": lambda: steps.monitor(config, reason=args.reason),
        "run": lambda: steps.run(config, reason=args.reason),
        "retrain": lambda: steps.retrain(config, reason=args.reason),
    }
    return handlers[args.step]()


def main(argv: list[str] | None = None) -> int:
    """Run one step; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        return int(resolve(SERVE)(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        # With --json, stdout carries exactly one JSON object: whatever else a step prints goes to stderr.
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            result = _dispatch(args, config)
    except ConfigError as exc:
        print(f"error: configuration: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        print("\n".join(result.summary))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
