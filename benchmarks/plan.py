"""Offline plan benchmark: `shipyard plan --stack k8s-dev` beside the bare cost of the imports it needs, in one run.

    .venv/bin/python benchmarks/plan.py [--runs 3] [--models 1,10,100]

(a) baseline: a fresh `python -c "import pulumi; import pulumi_kubernetes.<the modules the target uses>;
    import pulumi_random"`;
(b) project: the whole `shipyard plan --stack k8s-dev` process (the console script, output discarded); the
    ratio b/a;
(d) the Azure stack: `shipyard plan --stack azure-prod` beside the bare import of the azure-native modules it uses
    (printed after (c));
(c) growth: `shipyard plan --config FILE --json` on temporary stack files with 1, 10, 100 copies of the shared spec's
    first model (k8s-dev otherwise), and the time per added model; beside it the SDK floor: the same captured
    resources (same types, parents, inputs as plain dicts) registered by a bare program under echo mocks, in
    a fresh process, which is what the Pulumi SDK alone costs per model.
(d) GCP: `shipyard plan --stack gcp-dev` beside a fresh import of the pulumi_gcp modules the GCP target uses.

Every figure is the median of `--runs` fresh processes, as wall time and as CPU time (user + sys of the child):
on a shared 2-core machine wall time swings with the load, CPU time much less.
Targets: plan within 1.5x the bare import cost, under 60 ms per added model. It never fails on a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S_MODULES = ("core.v1", "apps.v1", "batch.v1", "autoscaling.v2", "policy.v1", "networking.v1", "rbac.v1")
BARE_IMPORT = "import pulumi; import " + ", ".join(f"pulumi_kubernetes.{m}" for m in K8S_MODULES) + \
    ", pulumi_random"
GCP_MODULES = ("artifactregistry", "cloudrunv2", "cloudscheduler", "compute", "eventarc", "kms", "monitoring",
               "organizations", "projects", "pubsub", "secretmanager", "serviceaccount", "servicenetworking", "sql",
               "storage", "workflows")
GCP_IMPORT = "import pulumi; import " + ", ".join(f"pulumi_gcp.{m}" for m in GCP_MODULES) + ", pulumi_random"
#: The azure-native modules the Azure target uses (subpackages load lazily; importing one loads it).
AZURE_MODULES = ("app", "applicationinsights", "authorization", "containerregistry", "dbforpostgresql", "keyvault",
                 "managedidentity", "monitor", "network", "operationalinsights", "privatedns", "resources", "storage")
AZURE_BARE_IMPORT = "import pulumi; import " + ", ".join(f"pulumi_azure_native.{m}" for m in AZURE_MODULES) + \
    ", pulumi_random"
TARGET_RATIO = 1.5
TARGET_PER_MODEL_MS = 60.0


@dataclass(frozen=True)
class Timing:
    """Wall and CPU (user + sys) seconds of one process, or the medians of several."""

    wall: float
    cpu: float

    def __str__(self) -> str:
        return f"{self.wall * 1000:7.0f} ms wall {self.cpu * 1000:7.0f} ms CPU"


def shipyard_command() -> list[str]:
    """The `shipyard` console script next to this Python, else `python -m infra.cli`."""
    script = Path(sys.executable).with_name("shipyard")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "infra.cli"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], stdout: Any = subprocess.DEVNULL) -> tuple[Timing, subprocess.CompletedProcess[str]]:
    """Time one process from start to exit; a failing command is reported, not timed silently."""
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True)
    timing = Timing(time.perf_counter() - start, _children_cpu() - cpu)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["(no message)"]
        print(f"  note: {' '.join(command[-3:])} exited {result.returncode}: {tail[0]}")
    return timing, result


def median_run(command: list[str], runs: int, stdout: Any = subprocess.DEVNULL) -> tuple[Timing, str]:
    """Medians over `runs` fresh processes, and the last run's standard output (when captured)."""
    results = [run(command, stdout) for _ in range(runs)]
    timings = [timing for timing, _ in results]
    median = Timing(statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings))
    return median, results[-1][1].stdout or ""


def many_models_stack(count: int) -> dict[str, Any]:
    """k8s-dev's stack file with `count` copies of the shared spec's first model, named m000, m001, ..."""
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.k8s-dev.yaml").read_text())
    model = yaml.safe_load((ROOT / "stacks" / "shipyard.yaml").read_text())["models"][0]
    stack["config"]["shipyard:models"] = [{**model, "name": f"m{i:03d}"} for i in range(count)]
    return stack


def replay(plan_json: Path) -> float:
    """CPU seconds the bare SDK takes to register a plan's resources under echo mocks (imports excluded)."""
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func

    resources = json.loads(plan_json.read_text())["resources"]
    order = {urn: i for i, urn in enumerate(_parents_first(resources))}
    resources.sort(key=lambda r: order[r["urn"]])

    class Echo(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
            return {}, None

    def program() -> None:
        made: dict[str, pulumi.Resource] = {}
        for r in resources:
            opts = pulumi.ResourceOptions(parent=made.get(r["parent"]), protect=r["protect"],
                                          depends_on=[made[d] for d in r["dependencies"] if d in made])
            made[r["urn"]] = (pulumi.ComponentResource(r["type"], r["name"], None, opts)
                              if r["type"].startswith("shipyard:")
                              else pulumi.CustomResource(r["type"], r["name"], r["inputs"], opts))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(Echo(), project="shipyard", stack="bench", preview=False)
    start = time.process_time()
    loop.run_until_complete(run_pulumi_func(program))
    return time.process_time() - start


def _parents_first(resources: list[dict[str, Any]]) -> list[str]:
    """URNs ordered so that every parent comes before its children (JSON output is sorted by URN)."""
    by_urn = {r["urn"]: r for r in resources}
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(urn: str) -> None:
        if urn in seen or urn not in by_urn:
            return
        visit(by_urn[urn]["parent"])
        seen.add(urn)
        ordered.append(urn)

    for urn in by_urn:
        visit(urn)
    return ordered


def growth(shipyard: list[str], counts: list[int], runs: int) -> None:
    """Plan time against the number of models, beside the SDK floor for the same resources."""
    print("  (c) growth with the number of models (shipyard plan --config FILE --json, k8s-dev otherwise)")
    plans: dict[int, Timing] = {}
    floors: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-plan-bench-") as tmp:
        for count in counts:
            stack = Path(tmp) / f"Pulumi.bench-{count}.yaml"
            stack.write_text(yaml.safe_dump(many_models_stack(count), sort_keys=False))
            plans[count], output = median_run([*shipyard, "plan", "--config", str(stack), "--json"], runs,
                                              stdout=subprocess.PIPE)
            plan_json = Path(tmp) / f"plan-{count}.json"
            plan_json.write_text(output)
            resources = len(json.loads(output)["resources"])
            _, floor = run([sys.executable, __file__, "--replay", str(plan_json)], stdout=subprocess.PIPE)
            floors[count] = float(floor.stdout)
            print(f"      {count:4d} model(s) {resources:5d} resources  plan {plans[count]}   "
                  f"SDK floor {floors[count] * 1000:7.0f} ms CPU")
    low, high = counts[0], counts[-1]
    if high > low:
        span = high - low
        wall = (plans[high].wall - plans[low].wall) / span * 1000
        cpu = (plans[high].cpu - plans[low].cpu) / span * 1000
        floor = (floors[high] - floors[low]) / span * 1000
        verdict = "within" if cpu < TARGET_PER_MODEL_MS else "OVER"
        print(f"      per added model ({low} -> {high}): {wall:.0f} ms wall, {cpu:.0f} ms CPU "
              f"(target < {TARGET_PER_MODEL_MS:.0f} ms: {verdict}); the SDK alone: {floor:.0f} ms CPU")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--models", default="1,10,100", help="model counts for the growth figures")
    parser.add_argument("--replay", type=Path, help=argparse.SUPPRESS)  # internal: one SDK-floor measurement
    args = parser.parse_args()
    if args.replay:
        print(replay(args.replay))
        return 0
    shipyard = shipyard_command()

    print(f"offline plan benchmark: medians of {args.runs} fresh processes, {sys.executable}")
    bare_command, plan_command = [sys.executable, "-c", BARE_IMPORT], [*shipyard, "plan", "--stack", "k8s-dev"]
    run(bare_command), run(plan_command)  # untimed warm-up: file-system caches, the pipelines wheel
    bare, _ = median_run(bare_command, args.runs)
    plan, _ = median_run(plan_command, args.runs)
    print(f"  (a) baseline  bare imports (pulumi, {len(K8S_MODULES)} k8s modules, random)  {bare}")
    print(f"  (b) project   shipyard plan --stack k8s-dev                       {plan}")
    ratio_wall, ratio_cpu = plan.wall / bare.wall, plan.cpu / bare.cpu
    verdict = "within" if ratio_cpu <= TARGET_RATIO else "OVER"
    print(f"      ratio b/a {ratio_wall:.2f} wall, {ratio_cpu:.2f} CPU  (target <= {TARGET_RATIO}: {verdict})")
    growth(shipyard, sorted(int(n) for n in args.models.split(",")), args.runs)
    gcp_bare, _ = median_run([sys.executable, "-c", GCP_IMPORT], args.runs)
    gcp_plan, _ = median_run([*shipyard, "plan", "--stack", "gcp-dev"], args.runs)
    print(f"  (d) GCP       bare imports (pulumi, {len(GCP_MODULES)} pulumi_gcp modules, random)  {gcp_bare}")
    print(f"                shipyard plan --stack gcp-dev                       {gcp_plan}")
    print(f"      ratio {gcp_plan.wall / gcp_bare.wall:.2f} wall, {gcp_plan.cpu / gcp_bare.cpu:.2f} CPU")
    azure_bare, _ = median_run([sys.executable, "-c", AZURE_BARE_IMPORT], args.runs)
    azure_plan, _ = median_run([*shipyard, "plan", "--stack", "azure-prod"], args.runs)
    print(f"  (e) azure     bare imports ({len(AZURE_MODULES)} azure-native modules)            {azure_bare}")
    print(f"                shipyard plan --stack azure-prod                     {azure_plan}")
    print(f"      ratio {azure_plan.wall / azure_bare.wall:.2f} wall, {azure_plan.cpu / azure_bare.cpu:.2f} CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
