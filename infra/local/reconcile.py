"""Decisions of `up` and `down`, as pure functions of what is wanted and what was observed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from infra.local.layout import ProcessSpec

Action = Literal["keep", "start", "restart"]


@dataclass(frozen=True)
class Observed:
    """What `up` found of one recorded process."""

    alive: bool
    healthy: bool
    fingerprint: str | None


@dataclass(frozen=True)
class Decision:
    """What to do with one process, and why (shown to the user)."""

    name: str
    action: Action
    reason: str


def decide(spec: ProcessSpec, observed: Observed | None) -> Decision:
    """Start what is not running, restart what changed or stopped answering, keep the rest."""
    if observed is None:
        return Decision(spec.name, "start", "not started yet")
    if not observed.alive:
        return Decision(spec.name, "start", "not running (exited or killed)")
    if observed.fingerprint != spec.fingerprint:
        return Decision(spec.name, "restart", "its command or configuration changed")
    if not observed.healthy:
        return Decision(spec.name, "restart", f"running but not answering {spec.health_url}")
    return Decision(spec.name, "keep", "healthy")


def stale(recorded: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """Recorded processes the spec no longer has (a removed model's server): to stop."""
    keep = set(wanted)
    return sorted(name for name in recorded if name not in keep)


def choose_port(planned: int, recorded: int | None, ours_alive: bool, is_free: Callable[[int], bool],
                free_port: Callable[[], int]) -> int:
    """The port of a process: its recorded one while our process holds it, else the planned one (or the
    recorded one) when free, else any free port (recorded in the state so every URL follows)."""
    if recorded is not None and ours_alive:
        return recorded
    for candidate in (planned, recorded):
        if candidate is not None and is_free(candidate):
            return candidate
    return free_port()


def needs_install(installed_version: str | None, wheel_version: str, venv_ok: bool) -> bool:
    """Whether the wheel must be (re)installed into the compute environment."""
    return not venv_ok or installed_version != wheel_version


def unmet_requirements(requirements: Iterable[str], installed: Mapping[str, str | None]) -> list[str]:
    """Requirements whose distribution is missing or whose installed version does not satisfy them.

    `installed` maps a distribution name to its installed version (None: not installed)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    problems = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = installed.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{text}: not installed")
        elif requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{text}: {version} is installed")
    return problems
