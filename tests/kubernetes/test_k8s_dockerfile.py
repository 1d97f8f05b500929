"""The runtime image, without building it: a pinned base, a non-root user, exactly the pipelines' dependencies."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from k8s_helpers import ROOT

from infra.packaging import build_wheel, pipeline_requirements
from infra.targets.kubernetes import layout


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "Dockerfile"))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def pip_installed(parser: DockerfileParser) -> list[str]:
    """The requirement arguments of every `pip install` in RUN instructions."""
    found: list[str] = []
    for run in instructions(parser, "RUN"):
        lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for word in [*lexer, ";"]:
            if word not in ("&&", ";", "||", "|"):
                command.append(word)
                continue
            if "pip" in command and "install" in command:
                found += [w for w in command[command.index("install") + 1:] if not w.startswith("-")]
            command = []
    return found


def test_base_image_is_pinned_by_digest(dockerfile: DockerfileParser) -> None:
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", dockerfile.baseimage)
    assert len(instructions(dockerfile, "FROM")) == 1


def test_runs_as_the_non_root_user_the_pods_expect(dockerfile: DockerfileParser) -> None:
    user = instructions(dockerfile, "USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid == gid == str(layout.RUNTIME_UID)
    creates = " ".join(instructions(dockerfile, "RUN"))
    assert f"--uid {layout.RUNTIME_UID}" in creates and f"--gid {layout.RUNTIME_UID}" in creates


def test_installs_exactly_the_pipelines_extra_which_the_wheel_declares(dockerfile: DockerfileParser,
                                                                       tmp_path: Path) -> None:
    installed = pip_installed(dockerfile)
    extra = pipeline_requirements(ROOT)
    assert len(installed) == len(set(installed))
    assert set(installed) == set(extra)
    assert set(build_wheel(ROOT, tmp_path).requirements) == set(extra)


def test_no_code_goes_into_the_image(dockerfile: DockerfileParser) -> None:
    assert not instructions(dockerfile, "COPY") and not instructions(dockerfile, "ADD")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignored  # an empty build context: nothing from the repository can slip in


def test_the_image_can_run_the_registry_on_postgresql(dockerfile: DockerfileParser) -> None:
    names = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in pip_installed(dockerfile)}
    assert names & {"psycopg2", "psycopg2-binary"}
