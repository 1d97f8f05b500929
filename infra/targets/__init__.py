"""The target registry: a target's name to the module that builds it, imported only when selected.

Each module exposes `build(platform, spec, package, secrets) -> TargetResources` (see `infra.targets.base`):
`secrets` (`infra.secrets.SecretValues`) holds the spec's decrypted secrets, read by the program.
"""

from __future__ import annotations

from types import ModuleType

from pipelines.plugins import resolve

#: Every target shipyard can build, and where it lives. Adding a target is one line here.
TARGETS: dict[str, str] = {
    "local": "infra.targets.local",
    "kubernetes": "infra.targets.kubernetes",
    "aws": "infra.targets.aws",
}


class UnknownTarget(ValueError):
    """The spec names a target no module implements."""


def load_target(name: str) -> ModuleType:
    """Import the module of target `name` (and only that one)."""
    try:
        dotted = TARGETS[name]
    except KeyError:
        raise UnknownTarget(
            f"target {name!r} is not available yet; available targets: {', '.join(sorted(TARGETS))}"
        ) from None
    return resolve(dotted)
