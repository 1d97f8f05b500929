"""The model registry protocol: versions, gate records, promotion and rollback, crash-consistent.

Invariants, kept whatever step crashes:
- a new version gets the alias `challenger` when it is created;
- gate outcomes are version tags, `gate.passed` written last, so a version whose gates were not
  (completely) recorded has no `gate.passed=true`;
- `promote` refuses a version without `gate.passed=true`, and one whose gates compared against a champion
  that is no longer the champion (`gate.champion_version`);
- the champion alias moves in one `set_registered_model_alias` call, after the new version was tagged with
  the champion it replaces (`previous_champion`), so `rollback` is one alias update too;
- the registered model's `previous_champion` tag records the version replaced by the last alias move.
A crash before the alias moves leaves the old champion serving; rerunning the pipeline completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from pipelines.gates import Decision

CHALLENGER = "challenger"
TAG_APPROVAL = "approval.state"
TAG_APPROVED_BY = "approval.by"
TAG_APPROVED_AT = "approval.at"
PENDING = "pending"
APPROVED = "approved"
TAG_GATE_PASSED = "gate.passed"
TAG_GATE_CHAMPION = "gate.champion_version"
TAG_PREVIOUS_CHAMPION = "previous_champion"
TAG_ROLLED_BACK = "rolled_back_from"
NO_VERSION = "none"


class RegistryError(Exception):
    """A registry operation cannot proceed (nothing to roll back to, no such version...)."""


class PromotionRefused(RegistryError):
    """Promotion refused: the version is not (or no longer) cleared by its gates."""


@dataclass(frozen=True)
class AliasMove:
    """What an alias update did."""

    alias: str
    version: str
    previous: str | None
    moved: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"alias": self.alias, "version": self.version, "previous": self.previous, "moved": self.moved,
                "reason": self.reason}


def is_missing(exc: Exception) -> bool:
    """A missing model (RESOURCE_DOES_NOT_EXIST) or a missing alias (INVALID_PARAMETER_VALUE '... not found')."""
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_DOES_NOT_EXIST" or (code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc))


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None (no such model or alias)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    """Create the registered model unless it exists (safe against a concurrent creator)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return
    except MlflowException as exc:
        if not is_missing(exc):
            raise
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise


def create_version(client: MlflowClient, name: str, *, model_uri: str, run_id: str, model_id: str | None,
                   tags: dict[str, str]) -> ModelVersion:
    """Register a logged model as a new version carrying `tags`, and point `challenger` at it."""
    ensure_registered_model(client, name)
    version = client.create_model_version(name, source=model_uri, run_id=run_id, tags=tags, model_id=model_id)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def record_gates(client: MlflowClient, name: str, version: str, decision: Decision) -> None:
    """Write the gate outcomes onto the version; `gate.passed` last, so a partial record never clears it."""
    for gate in decision.gates:
        client.set_model_version_tag(name, version, f"gate.{gate.gate}", "pass" if gate.passed else "fail")
    client.set_model_version_tag(name, version, TAG_GATE_CHAMPION, decision.champion_version or NO_VERSION)
    client.set_model_version_tag(name, version, TAG_GATE_PASSED, "true" if decision.passed else "false")


def promote(client: MlflowClient, name: str, version: str, alias: str = "champion") -> AliasMove:
    """Move `alias` to `version` if its gates cleared it against the current champion; one alias update."""
    candidate = client.get_model_version(name, version)
    if candidate.tags.get(TAG_GATE_PASSED) != "true":
        state = candidate.tags.get(TAG_GATE_PASSED, "not recorded")
        raise PromotionRefused(f"{name} v{version}: gates {'failed' if state == 'false' else state}; "
                               f"only a version with gate.passed=true can become {alias}")
    current = alias_version(client, name, alias)
    current_v = str(current.version) if current is not None else None
    if current_v == str(version):
        return AliasMove(alias, str(version), current_v, False, f"v{version} already is {alias}")
    compared = candidate.tags.get(TAG_GATE_CHAMPION, NO_VERSION)
    if compared != (current_v or NO_VERSION):
        raise PromotionRefused(f"{name} v{version}: its gates compared against {alias} "
                               f"{compared if compared == NO_VERSION else 'v' + compared}, but {alias} is now "
                               f"{'v' + current_v if current_v else NO_VERSION}; rerun the pipeline")
    client.set_model_version_tag(name, version, TAG_PREVIOUS_CHAMPION, current_v or NO_VERSION)
    client.set_registered_model_alias(name, alias, str(version))  # the commit point
    client.set_registered_model_tag(name, TAG_PREVIOUS_CHAMPION, current_v or NO_VERSION)
    return AliasMove(alias, str(version), current_v, True, "gates passed")


def propose(client: MlflowClient, name: str, version: str) -> None:
    """Mark a gated version as waiting for approval (a stack with `promotion: manual`)."""
    client.set_model_version_tag(name, version, TAG_APPROVAL, PENDING)


def approve(client: MlflowClient, name: str, version: str, *, by: str, at: str,
            alias: str = "champion") -> AliasMove:
    """Record who approved `version` and when, then promote it (the same checks as `promote`; one alias update).

    The approval tags are written before the alias moves: a crash in between leaves the champion where it was
    and the approval recorded; approving again completes.
    """
    candidate = client.get_model_version(name, version)
    if candidate.tags.get(TAG_GATE_PASSED) != "true":
        state = candidate.tags.get(TAG_GATE_PASSED, "not recorded")
        raise PromotionRefused(f"{name} v{version}: gates {'failed' if state == 'false' else state}; "
                               "only a version that passed every gate can be approved")
    client.set_model_version_tag(name, version, TAG_APPROVED_BY, by)
    client.set_model_version_tag(name, version, TAG_APPROVED_AT, at)
    move = promote(client, name, version, alias)
    client.set_model_version_tag(name, version, TAG_APPROVAL, APPROVED)
    return move


def rollback(client: MlflowClient, name: str, alias: str = "champion") -> AliasMove:
    """Point `alias` back at the version the current one replaced; one alias update."""
    current = alias_version(client, name, alias)
    if current is None:
        raise RegistryError(f"{name} has no {alias}: nothing to roll back")
    current_v = str(current.version)
    target = current.tags.get(TAG_PREVIOUS_CHAMPION) or NO_VERSION
    if target == NO_VERSION:
        raise RegistryError(f"{name} v{current_v} replaced no earlier {alias}: nothing to roll back to")
    previous = client.get_model_version(name, target)
    if previous.tags.get(TAG_GATE_PASSED) != "true":
        raise PromotionRefused(f"{name} v{target} has no gate.passed=true; refusing to make it {alias}")
    client.set_registered_model_alias(name, alias, target)  # the commit point
    client.set_registered_model_tag(name, TAG_PREVIOUS_CHAMPION, current_v)
    client.set_model_version_tag(name, current_v, TAG_ROLLED_BACK, alias)
    return AliasMove(alias, target, current_v, True, f"rolled back from v{current_v}")
