"""The runtime image, without building it: a pinned base, the non-root user the pods ask for, root for SageMaker,
exactly the hash-locked closure of the pipelines' dependencies."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from k8s_helpers import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from infra.image import CONTEXT_FILES, DOCKERFILE, LOCK, RUNTIME_UID
from infra.packaging import build_wheel, pipeline_requirements
from infra.targets.kubernetes import workload


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / DOCKERFILE))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def pip_installs(parser: DockerfileParser) -> list[list[str]]:
    """Every `pip install` command of the RUN instructions, as words (the entrypoint script's is quoted: not one)."""
    found: list[list[str]] = []
    for run in instructions(parser, "RUN"):
        lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for word in [*lexer, ";"]:
            if word not in ("&&", ";", "||", "|"):
                command.append(word)
                continue
            if "pip" in command and "install" in command:
                found.append(command)
            command = []
    return found


def test_base_image_is_pinned_by_digest(dockerfile: DockerfileParser) -> None:
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", dockerfile.baseimage)
    assert len(instructions(dockerfile, "FROM")) == 1


def test_creates_the_non_root_user_the_pods_ask_for_and_stays_root_for_sagemaker(dockerfile: DockerfileParser) -> None:
    creates = " ".join(instructions(dockerfile, "RUN"))
    assert f"--uid {RUNTIME_UID}" in creates and f"--gid {RUNTIME_UID}" in creates
    # SageMaker runs the image's default user and writes /opt/ml: no USER, so root; pods and ECS ask for the uid.
    assert instructions(dockerfile, "USER") == []
    pod = workload.pod_security()
    container = workload.container_security()
    assert pod.run_as_user == pod.run_as_group == container.run_as_user == RUNTIME_UID
    assert pod.run_as_non_root and container.run_as_non_root


def test_installs_the_hash_locked_dependency_list_and_nothing_else(dockerfile: DockerfileParser) -> None:
    assert instructions(dockerfile, "COPY") == [f"{LOCK} /tmp/runtime.lock"]
    (install,) = pip_installs(dockerfile)
    assert install == ["python", "-m", "pip", "install", "--no-cache-dir", "--require-hashes", "-r",
                       "/tmp/runtime.lock"]


def test_the_context_admits_only_the_dockerfile_and_the_lock(dockerfile: DockerfileParser) -> None:
    """An otherwise empty build context: nothing from the repository can slip in, and the content tag (a hash of
    these two files) covers everything the image is built from."""
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert [line for line in ignored if not line.startswith("#")][-3:] == ["*", f"!{DOCKERFILE}", f"!{LOCK}"]
    assert set(CONTEXT_FILES) == {DOCKERFILE, LOCK, ".dockerignore"}
    assert not instructions(dockerfile, "ADD")


def test_the_lock_pins_with_hashes_a_closure_covering_the_pipelines_extra() -> None:
    """Every entry is `name==version` with sha256 hashes, and every requirement of pyproject's `pipelines`
    extra (which the wheel declares too) is in it at a version its specifier allows."""
    entries = locked(ROOT / LOCK)
    assert len(entries) > 50
    for name, (_, hashes) in entries.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    extra = [Requirement(r) for r in pipeline_requirements(ROOT)]
    for requirement in extra:
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement} is not in {LOCK}"
        assert requirement.specifier.contains(entries[name][0], prereleases=True), (requirement, entries[name][0])


def test_the_lock_is_for_the_image_python(dockerfile: DockerfileParser) -> None:
    header = (ROOT / LOCK).read_text().splitlines()[1]
    base = re.match(r"python:(\d+\.\d+)-", dockerfile.baseimage)
    assert base and f"--python-version {base[1]}" in header and "--python-platform x86_64-manylinux" in header
    assert "--generate-hashes" in header


def locked(path: Path) -> dict[str, tuple[Version, list[str]]]:
    """`name -> (version, hashes)` of a `--generate-hashes` lock file."""
    text = path.read_text().replace("\\\n", " ")
    entries: dict[str, tuple[Version, list[str]]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, *options = line.split()
        name, sep, version = spec.partition("==")
        assert sep, f"{line!r} is not pinned with =="
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=")]
        entries[canonicalize_name(name)] = (Version(version), hashes)
    return entries


def test_the_wheel_declares_the_pipelines_extra(tmp_path: Path) -> None:
    assert set(build_wheel(ROOT, tmp_path).requirements) == set(pipeline_requirements(ROOT))


def test_the_image_can_run_the_registry_on_postgresql() -> None:
    assert {"psycopg2", "psycopg2-binary"} & set(locked(ROOT / LOCK))
