"""The runtime image: built from the project's `Dockerfile` and pushed by the program, or pinned by the spec.

`runtime_image` unset (the default) means *build*: the program builds the project's Dockerfile (whose only
input besides the pinned base is the hash-locked dependency list `requirements/runtime.lock`) for
`linux/amd64`, tags it with a hash of those two files, pushes it to the target's registry and hands every
workload the pushed digest (`repo@sha256:...`), never the tag. `runtime_image: repo@sha256:<64 hex>` pins
an existing image instead and nothing is built. The local target runs no image.

This module decides (pure, no Pulumi: the spec and the targets' rules use it); `infra.components.RuntimeImage`
builds and pushes, with `pulumi-docker-build` (docs/image.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

DOCKERFILE = "Dockerfile"
LOCK = "requirements/runtime.lock"
#: Everything the build context admits (`.dockerignore` keeps the rest out); project copies need these.
CONTEXT_FILES = (DOCKERFILE, ".dockerignore", LOCK)
#: SageMaker, Fargate and most Kubernetes nodes run x86-64; one platform keeps the manifest a plain image.
PLATFORM = "linux/amd64"
#: The non-root user (uid = gid) the Dockerfile creates. The image itself runs as root, which SageMaker training
#: and hosting need (they write /opt/ml); Kubernetes pods and the ECS task run as this user.
RUNTIME_UID = 10001
#: Content tags start with this, so a person reading a registry listing knows what made the tag.
TAG_PREFIX = "deps-"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
#: A repository: an optional registry host (with port) and lowercase path components; no tag, no digest.
REPOSITORY = re.compile(rf"^(?:(?P<host>[a-zA-Z0-9.-]+(?::\d+)?)/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_REFERENCE = re.compile(r"^(?P<repo>[^@\s]+?)(?::(?P<tag>\w[\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference: repository, optional tag, optional digest."""

    repository: str
    tag: str | None
    digest: str | None


def parse_reference(image: str) -> ImageReference:
    """Split `repo[:tag][@sha256:...]`; ValueError for anything else."""
    match = _REFERENCE.match(image)
    if match is None or not REPOSITORY.match(match["repo"]):
        raise ValueError(f"{image!r} is not an image reference (repository[:tag][@sha256:<64 hex>])")
    return ImageReference(match["repo"], match["tag"], match["digest"])


def check_runtime_image(image: str, environment: str) -> str:
    """Validate a pinned `runtime_image`: a reference, and in staging and prod one carrying a digest."""
    reference = parse_reference(image)
    if reference.digest is None and environment != "dev":
        raise ValueError(
            f"{image!r} names no digest; {environment} runs an exact image: pin 'repository@sha256:<64 hex>' "
            "or leave runtime_image unset so the program builds and pushes the project's Dockerfile")
    return image


def registry_host(repository: str) -> str:
    """The registry a repository lives on (Docker's rule: a first component with '.' or ':', or localhost)."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def content_tag(dockerfile: bytes, lock: bytes) -> str:
    """The image's tag: a hash of the Dockerfile and the locked dependency list, its only inputs."""
    digest = hashlib.sha256()
    for part in (dockerfile, lock):
        digest.update(hashlib.sha256(part).digest())
    return f"{TAG_PREFIX}{digest.hexdigest()[:20]}"


@dataclass(frozen=True)
class ImagePlan:
    """What the program does about the runtime image: run `pinned` as is, or build `context` under `tag`."""

    pinned: str | None = None
    context: Path | None = None
    tag: str | None = None

    @property
    def builds(self) -> bool:
        """Whether the program builds and pushes the image."""
        return self.pinned is None

    @property
    def identity(self) -> str:
        """A plain string that changes exactly when the image does (the pin, or the content tag)."""
        return self.pinned or self.tag or ""


def decide(runtime_image: str | None, context: Path, dockerfile: bytes, lock: bytes) -> ImagePlan:
    """Build (the spec pins nothing) or run the pinned image; the tag comes from the build's inputs."""
    if runtime_image:
        return ImagePlan(pinned=runtime_image)
    return ImagePlan(context=context, tag=content_tag(dockerfile, lock))


def plan_image(runtime_image: str | None, project_dir: Path) -> ImagePlan:
    """`decide` over the project's files, which are read only when the image is built."""
    missing = [name for name in (DOCKERFILE, LOCK) if not (project_dir / name).is_file()]
    if not runtime_image and missing:
        raise FileNotFoundError(f"runtime_image is unset, so the program builds the runtime image, but "
                                f"{', '.join(missing)} is missing in {project_dir}")
    inputs = (b"", b"") if runtime_image else ((project_dir / DOCKERFILE).read_bytes(),
                                               (project_dir / LOCK).read_bytes())
    return decide(runtime_image, project_dir, *inputs)
