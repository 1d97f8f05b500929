"""The target registry: a target's name to the package that implements it, imported only when selected.

Every target package has two modules, held to them by the conformance suite:

- `rules`: `check(spec) -> list[Problem]`, what this target refuses, each located by key path (the stack
  loader runs it, so `shipyard validate`, `shipyard plan` and `pulumi up` refuse exactly the same stacks and
  report every problem at once); `ignored(spec) -> list[Notice]`, every setting of the spec the target does
  not honour, by key, with what happens instead (printed by `validate` and `plan`, listed under `warnings`
  by `plan --json`, logged as warnings by `pulumi up`). Pure and cheap: no cloud SDK.
- `program`: `build(platform, spec, package, image, secrets) -> TargetResources`, which declares the
  platform (the cloud SDK loads here, only when a stack is built). `image` (`infra.image.ImagePlan`) says
  whether to build the runtime image or run a pinned one; `secrets` (`infra.secrets.SecretValues`) holds
  the spec's decrypted secrets, read by the program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.plugins import resolve

if TYPE_CHECKING:
    import pulumi

    from infra.image import ImagePlan
    from infra.packaging import PipelinePackage
    from infra.problems import Notice, Problem
    from infra.secrets import SecretValues
    from infra.spec import PlatformSpec
    from infra.targets.base import TargetResources

#: Every target shipyard can build, and where it lives. Adding a target is one line here.
TARGETS: dict[str, str] = {
    "local": "infra.targets.local",
    "kubernetes": "infra.targets.kubernetes",
    "aws": "infra.targets.aws",
    "gcp": "infra.targets.gcp",
    "azure": "infra.targets.azure",
}


class UnknownTarget(ValueError):
    """The spec names a target no module implements."""


@dataclass(frozen=True)
class Target:
    """One registered target: its rules, and its program imported only when a stack is built."""

    name: str
    package: str

    def check(self, spec: PlatformSpec) -> list[Problem]:
        """What this target refuses in `spec`, located by key path."""
        return resolve(f"{self.package}.rules:check")(spec)

    def ignored(self, spec: PlatformSpec) -> list[Notice]:
        """The settings of `spec` this target does not honour, with what happens instead."""
        return resolve(f"{self.package}.rules:ignored")(spec)

    def build(self, platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage,
              image: ImagePlan, secrets: SecretValues) -> TargetResources:
        """Declare the platform (imports the target's program and its cloud SDK)."""
        return resolve(f"{self.package}.program:build")(platform, spec, package, image, secrets)


def load_target(name: str) -> Target:
    """The registered target `name`; nothing of it is imported until it is used."""
    try:
        return Target(name, TARGETS[name])
    except KeyError:
        raise UnknownTarget(
            f"target {name!r} is not available yet; available targets: {', '.join(sorted(TARGETS))}"
        ) from None
