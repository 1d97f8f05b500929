"""The runtime image decision, without a Pulumi runtime: build or pinned, the content tag, and what validation
refuses in `runtime_image`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_spec import MINIMAL, ROOT, STACKS, problems_of, write_stack

from infra.image import (
    DOCKERFILE,
    LOCK,
    content_tag,
    decide,
    parse_reference,
    plan_image,
    registry_host,
)
from infra.stackfile import load_stack

DIGEST = "sha256:" + "ab" * 32


def test_unset_builds_under_a_tag_of_the_dockerfile_and_the_lock_and_a_pin_builds_nothing(tmp_path: Path) -> None:
    built = decide(None, tmp_path, b"FROM python\n", b"numpy==2.0 --hash=sha256:00\n")
    assert built.builds and built.context == tmp_path and built.tag == built.identity
    assert built.tag == content_tag(b"FROM python\n", b"numpy==2.0 --hash=sha256:00\n")
    assert built.tag.startswith("deps-") and len(built.tag) == len("deps-") + 20
    pinned = decide(f"ghcr.io/acme/runtime@{DIGEST}", tmp_path, b"", b"")
    assert not pinned.builds and pinned.tag is None and pinned.identity == f"ghcr.io/acme/runtime@{DIGEST}"


def test_the_tag_changes_exactly_when_the_dockerfile_or_the_lock_does() -> None:
    tag = content_tag(b"FROM a", b"x==1")
    assert content_tag(b"FROM a", b"x==1") == tag
    assert len({tag, content_tag(b"FROM b", b"x==1"), content_tag(b"FROM a", b"x==2"),
                content_tag(b"FROM ax", b"==1")}) == 4  # the two files' bytes cannot slide into each other


def test_plan_image_reads_the_project_files_only_to_build(tmp_path: Path) -> None:
    assert plan_image(None, ROOT).tag == content_tag((ROOT / DOCKERFILE).read_bytes(), (ROOT / LOCK).read_bytes())
    assert plan_image(f"r@{DIGEST}", tmp_path).pinned == f"r@{DIGEST}"  # no Dockerfile here: not needed
    shutil.copy(ROOT / DOCKERFILE, tmp_path / DOCKERFILE)
    with pytest.raises(FileNotFoundError, match=r"requirements/runtime\.lock is missing"):
        plan_image(None, tmp_path)


def test_references_and_registries() -> None:
    ref = parse_reference(f"localhost:5001/ml/runtime:1.0@{DIGEST}")
    assert (ref.repository, ref.tag, ref.digest) == ("localhost:5001/ml/runtime", "1.0", DIGEST)
    assert parse_reference("ghcr.io/acme/runtime").tag is None
    for bad in ("Runtime:1", "ghcr.io/acme/runtime@sha256:abc", "a b", ""):
        with pytest.raises(ValueError, match="not an image reference"):
            parse_reference(bad)
    assert registry_host("localhost:5001/runtime") == "localhost:5001"
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert registry_host(f"{ecr}/x") == ecr
    assert registry_host("acme/runtime") == registry_host("runtime") == "docker.io"


@pytest.mark.parametrize("environment", ["staging", "prod"])
@pytest.mark.parametrize("image", ["ghcr.io/acme/runtime:1.0", "ghcr.io/acme/runtime"])
def test_staging_and_prod_refuse_an_image_without_digest(tmp_path: Path, environment: str, image: str) -> None:
    problems = problems_of(tmp_path, {**MINIMAL, "environment": environment, "runtime_image": image})
    assert set(problems) == {"runtime_image"}
    assert "names no digest" in problems["runtime_image"] and "leave runtime_image unset" in problems["runtime_image"]


def test_a_digest_is_accepted_everywhere_and_a_tag_in_dev(tmp_path: Path) -> None:
    for environment, image in (("prod", f"ghcr.io/acme/runtime@{DIGEST}"), ("prod", f"r:1@{DIGEST}"),
                               ("dev", "shipyard-runtime:dev")):
        write_stack(tmp_path, {**MINIMAL, "environment": environment, "runtime_image": image})
        assert load_stack("test", project_dir=tmp_path).spec.runtime_image == image


def test_malformed_images_and_repositories_are_located(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {**MINIMAL, "runtime_image": "ghcr.io/acme/runtime@sha256:123",
                                      "kubernetes": {"image_repository": "ghcr.io/acme/runtime:1.0"}})
    assert set(problems) == {"runtime_image", "kubernetes.image_repository"}
    assert "not an image reference" in problems["runtime_image"]
    assert "is not a repository" in problems["kubernetes.image_repository"]


@pytest.mark.parametrize("stack", STACKS)
def test_no_shipped_stack_pins_a_digest_nobody_pushed(stack: str) -> None:
    """Every shipped stack builds its image (a pinned digest in a shipped file could only be made up)."""
    assert load_stack(stack, project_dir=ROOT).spec.runtime_image is None
