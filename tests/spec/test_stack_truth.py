"""Spec truth: every stack a platform team could write either validates exactly as it will be built, or fails
`shipyard validate` with every problem located (file and key path), exit 1, no traceback; and every setting
the target does not honour is said, by `validate`, `plan` and `plan --json`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli import main as cli
from infra.cron import Cron, normalize
from infra.problems import Notice
from infra.stackfile import SpecError, load_stack

ROOT = Path(__file__).resolve().parents[2]
SHARED = """\
name: shipyard
models:
  - name: churn
    pipeline:
      gates: {max_latency_ms: 250}
    serving: {max_replicas: 4}
    monitoring: {schedule: "*/15 * * * *"}
  - name: fraud
"""


@pytest.fixture(autouse=True)
def _in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--config FILE` reads the shared spec of the project the command runs in: the throwaway one."""
    monkeypatch.chdir(tmp_path)


def project(tmp_path: Path, stack: str, shared: str = SHARED) -> Path:
    """A throwaway project: the shared spec and one stack file (`stacks/Pulumi.test.yaml`, given as text)."""
    (tmp_path / "Pulumi.yaml").write_text("name: shipyard\nruntime: python\n")
    (tmp_path / "stacks").mkdir(exist_ok=True)
    (tmp_path / "stacks" / "shipyard.yaml").write_text(shared)
    path = tmp_path / "stacks" / "Pulumi.test.yaml"
    path.write_text(stack)
    return path


def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`shipyard validate --config PATH` in process: exit code, stdout, stderr."""
    code = cli(["validate", "--config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def refused(tmp_path: Path, stack: str, capsys: pytest.CaptureFixture[str], shared: str = SHARED) -> dict[str, str]:
    """Validate a stack that must be refused: exit 1, no traceback; {'file: key path': message}."""
    path = project(tmp_path, stack, shared)
    code, out, err = validate(path, capsys)
    assert code == 1 and out == "", (out, err)
    assert "Traceback" not in err and "nothing was declared" in err
    problems = {}
    for line in err.splitlines():
        if line.startswith("error: "):
            file, key, message = line.removeprefix("error: ").split(": ", 2)
            problems[f"{Path(file).name}: {key}"] = message
    return problems


K8S = "config:\n  shipyard:target: kubernetes\n  shipyard:kubernetes: {image_repository: localhost:5001/runtime}\n"
AWS = "config:\n  shipyard:target: aws\n  shipyard:region: eu-west-1\n"


# --------------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("key", ["shipyrad:environment", "Shipyard:environment", "shipyard-ml:environment"])
def test_a_misspelt_namespace_is_a_located_problem_with_a_hint(tmp_path, capsys, key: str) -> None:
    problems = refused(tmp_path, K8S + f"  {key}: prod\n", capsys)
    message = problems[f"Pulumi.test.yaml: {key}"]
    assert "unknown config namespace" in message and "did you mean 'shipyard:'?" in message


def test_provider_namespaces_stay_allowed(tmp_path, capsys) -> None:
    stack = K8S + "  kubernetes:context: kind-dev\n  aws:region: eu-west-1\n  gcp:project: p\n" \
                  "  azure-native:location: westeurope\n  pulumi:tags: {team: ml}\n"
    code, out, _ = validate(project(tmp_path, stack), capsys)
    assert code == 0 and "valid" in out


def test_a_duplicate_key_names_both_lines(tmp_path, capsys) -> None:
    stack = K8S + "  shipyard:registry: {workers: 2}\n  shipyard:environment: prod\n  shipyard:registry: {workers: 4}\n"
    problems = refused(tmp_path, stack, capsys)
    assert "given twice in one mapping (lines 4 and 6)" in problems["Pulumi.test.yaml: shipyard:registry"]


def test_a_duplicate_key_in_the_shared_spec_is_found_too(tmp_path, capsys) -> None:
    problems = refused(tmp_path, K8S, capsys, shared=SHARED + "training: {size: small}\ntraining: {size: large}\n")
    assert "lines 9 and 10" in problems["shipyard.yaml: training"]


@pytest.mark.parametrize(("stack", "key", "fragment"), [
    ("  shipyard:min_replicas: 2\n", "min_replicas", "belongs at 'models[].serving.min_replicas'"),
    ("  shipyard:models:\n    - {name: churn, min_replicas: 2}\n", "models[0].min_replicas",
     "belongs at 'models[0].serving.min_replicas'"),
    ("  shipyard:models:\n    - {name: churn, max_replica: 2}\n", "models[0].max_replica",
     "did you mean 'max_replicas', at 'models[0].serving.max_replicas'?"),
    ("  shipyard:training: {window_hours: 2}\n", "training.window_hours",
     "belongs at 'models[].monitoring.window_hours'"),
])
def test_a_key_at_the_wrong_level_says_where_it_belongs(tmp_path, capsys, stack: str, key: str,
                                                        fragment: str) -> None:
    problems = refused(tmp_path, K8S + stack, capsys)
    assert fragment in problems[f"Pulumi.test.yaml: {key}"]


# --------------------------------------------------------------------------------------------- values


def test_invalid_cidrs_are_refused_one_by_one(tmp_path, capsys) -> None:
    stack = K8S + "  shipyard:networking:\n    allowed_cidrs: [10.0.0.0/33, 300.1.2.0/24, 10.1.2.3/16, 10.0.0.0/8]\n"
    problems = refused(tmp_path, stack, capsys)
    assert set(problems) == {f"Pulumi.test.yaml: networking.allowed_cidrs[{i}]" for i in range(3)}
    assert "the network is '10.1.0.0/16'" in problems["Pulumi.test.yaml: networking.allowed_cidrs[2]"]


@pytest.mark.parametrize(("stack", "key", "fragment"), [
    ("config:\n  shipyard:target: aws\n  shipyard:region: eu-west-1a\n", "region",
     "is an availability zone; the region is 'eu-west-1'"),
    ("config:\n  shipyard:target: aws\n  shipyard:region: Europe\n", "region", "is not an AWS region"),
    (AWS + "  shipyard:networking: {existing_network: 10.0.0.0/16}\n", "networking.existing_network",
     "is not a VPC id"),
    (AWS + "  shipyard:aws: {vpc_cidr: 8.8.0.0/16}\n", "aws.vpc_cidr", "not a private range"),
    (K8S + "  shipyard:kubernetes: {namespace: " + "n" * 67 + "}\n", "kubernetes.namespace", "at most 63"),
    (AWS + "  shipyard:training: {schedule: '0 3 1 * MON'}\n", "training.schedule",
     "EventBridge cannot match day-of-month OR day-of-week"),
    (AWS + "  shipyard:models:\n    - {name: churn, serving: {public: true}}\n", "models[0].serving.public",
     "is not supported on target 'aws'"),
    (K8S + "  shipyard:models:\n    - {name: churn, serving: {auth: iam}}\n", "models[0].serving.auth",
     "'iam' is not available on Kubernetes"),
    (K8S + "  shipyard:kubernetes: {ingress_class: traefik}\n  shipyard:models:\n"
           "    - {name: churn, serving: {public: true, auth: api_key}}\n", "models[0].serving.public",
     "needs kubernetes.ingress_class 'nginx'"),
    (K8S + "  shipyard:registry:\n    database: {external_url: {ref: pg-credentials}}\n",
     "registry.database.external_url.ref", "'<secret>/<key>'"),
])
def test_values_the_cloud_would_refuse_fail_at_validate(tmp_path, capsys, stack: str, key: str,
                                                         fragment: str) -> None:
    problems = refused(tmp_path, stack, capsys)
    assert fragment in problems[f"Pulumi.test.yaml: {key}"], problems


def test_three_target_problems_are_reported_together(tmp_path, capsys) -> None:
    stack = AWS + ("  shipyard:networking: {existing_network: my-vpc}\n  shipyard:training: {schedule: '0 3 1 * 1'}\n"
                   "  shipyard:models:\n    - {name: churn, serving: {public: true}}\n")
    problems = refused(tmp_path, stack, capsys)
    assert set(problems) == {"Pulumi.test.yaml: networking.existing_network", "Pulumi.test.yaml: training.schedule",
                             "Pulumi.test.yaml: models[0].serving.public"}


def test_a_target_problem_from_the_shared_spec_is_located_there(tmp_path, capsys) -> None:
    shared = SHARED.replace("serving: {max_replicas: 4}", "serving: {max_replicas: 4, public: true}")
    problems = refused(tmp_path, AWS, capsys, shared=shared)
    assert set(problems) == {"shipyard.yaml: models[0].serving.public"}


@pytest.mark.parametrize(("expression", "normal"), [
    ("0 6 * * MON-FRI", "0 6 * * 1-5"), ("30 2 * jan,jul sun", "30 2 * 1,7 0"), ("@daily", "0 0 * * *"),
    ("0 3 ? * 7", "0 3 * * 0"), ("0 3 * * 5-7", "0 3 * * 0,5-6"), ("@hourly", "0 * * * *"),
])
def test_cron_names_ranges_and_macros_as_the_schedulers_accept_them(expression: str, normal: str) -> None:
    assert normalize(expression) == normal
    assert Cron.parse(normal) == Cron.parse(expression)


def test_cron_names_are_accepted_in_stacks(tmp_path, capsys) -> None:
    code, out, _ = validate(project(tmp_path, AWS + "  shipyard:training: {schedule: '0 6 * * MON-FRI'}\n"), capsys)
    assert code == 0, out


# --------------------------------------------------------------------------------------------- models merge


def test_a_fork_restates_only_what_it_changes(tmp_path) -> None:
    project(tmp_path, K8S + "  shipyard:models:\n    - {name: churn, serving: {max_replicas: 8}}\n")
    churn, fraud = load_stack("test", project_dir=tmp_path).spec.models
    assert churn.serving.max_replicas == 8
    assert churn.pipeline.gates.max_latency_ms == 250 and churn.monitoring.schedule == "*/15 * * * *"
    assert fraud.name == "fraud"


def test_models_are_added_and_removed_explicitly(tmp_path) -> None:
    project(tmp_path, K8S + "  shipyard:models:\n    - {name: fraud, remove: true}\n    - {name: demand}\n")
    assert [m.name for m in load_stack("test", project_dir=tmp_path).spec.models] == ["churn", "demand"]


def test_model_overlay_problems_are_located_at_the_index_written(tmp_path, capsys) -> None:
    stack = K8S + ("  shipyard:models:\n    - {name: fraud, serving: {min_replicas: 5, max_replicas: 2}}\n"
                   "    - {name: ghost, remove: true}\n    - {serving: {max_replicas: 2}}\n")
    problems = refused(tmp_path, stack, capsys)
    assert set(problems) == {"Pulumi.test.yaml: models[0].serving.max_replicas", "Pulumi.test.yaml: models[1].remove",
                             "Pulumi.test.yaml: models[2].name"}
    assert "must be >= min_replicas (5)" in problems["Pulumi.test.yaml: models[0].serving.max_replicas"]


# --------------------------------------------------------------------------------------------- notices


def test_validate_prints_the_notices(tmp_path, capsys) -> None:
    stack = AWS + "  shipyard:models:\n    - {name: churn, serving: {auth: api_key, min_replicas: 0}}\n"
    code, out, err = validate(project(tmp_path, stack), capsys)
    assert code == 0 and "valid" in out
    assert "warning: " in err and "models[0].serving.auth: 'api_key' is not used on AWS" in err
    assert "models[0].serving.min_replicas: 0 is raised to 1" in err


def test_plan_json_carries_the_warnings(tmp_path) -> None:
    path = project(tmp_path, "config:\n  shipyard:target: local\n  shipyard:tags: {team: ml}\n")
    run = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--config", str(path), "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    warnings = json.loads(run.stdout)["warnings"]
    assert {"file": str(path), "path": "tags", "message": "not used: no cloud resource carries tags"} in warnings
    assert "warning: " in run.stderr and "Traceback" not in run.stderr


def test_notices_are_located_like_problems() -> None:
    loaded = load_stack("local", project_dir=ROOT)
    assert all(isinstance(n, Notice) and n.file for n in loaded.notices)
    assert {(Path(n.file).name, n.path) for n in loaded.notices} >= {("shipyard.yaml", "tags")}


def test_nothing_is_declared_when_validation_fails(tmp_path) -> None:
    path = project(tmp_path, K8S + "  shipyrad:environment: prod\n")
    run = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--config", str(path), "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert "unknown config namespace" in run.stderr and "nothing was declared" in run.stderr
    assert "Traceback" not in run.stderr
    with pytest.raises(SpecError):
        load_stack("test", project_dir=tmp_path)


# --------------------------------------------------------------------------------------------- clean exit


def test_plan_leaves_no_event_loop_for_interpreter_exit() -> None:
    """The root cause of 'Exception ignored in BaseEventLoop.__del__': loops left unclosed for exit to finalize."""
    run = subprocess.run([sys.executable, "-W", "always::ResourceWarning", "-m", "infra.cli", "plan", "--stack",
                          "local", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "unclosed event loop" not in run.stderr and "Exception ignored" not in run.stderr


@pytest.mark.slow
def test_thirty_plans_exit_cleanly() -> None:
    for _ in range(30):
        run = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--stack", "local", "--json"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert "Exception ignored" not in run.stderr, run.stderr
