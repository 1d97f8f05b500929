"""Promotion between stacks: the exact model version that passed upstream becomes downstream's challenger, the
downstream gates decide, and (with `promotion: auto`) it becomes champion, or (with `manual`) it waits for approval.

Steps, each safe to crash in and rerun (`promote_between` resumes from what the downstream registry holds):
1. read the upstream version (its champion by default) and refuse one without `gate.passed=true`;
2. copy its model artifacts (byte for byte but for the ids `MLmodel` names) into a new downstream logged model
   and run, and register them as a new version, alias
   `challenger`, carrying the upstream lineage tags (git commit, package hash, data hash...), the upstream gate
   results as `upstream.gate.*`, and the provenance (`promoted.from.*`: stack, model, version, run, tracking URI).
   The version is created in one call with its tags, so it exists whole or not at all; a crash before leaves at
   most a downstream run with no version;
3. run the downstream gates on the downstream data (the copied model never saw it: all of it is held out), in a
   run of their own, and record them on the version (`gate.passed` last);
4. if they passed: move `champion` (one alias update, as `pipelines.registry.promote`), or with `promotion: manual`
   tag the version `approval.state=pending` for `approve`.
The upstream registry is only read. A rerun finds the version by its `promoted.from` key and carries on.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pipelines import registry
from pipelines.config import RunConfig
from pipelines.gates import Decision
from pipelines.lineage import TAG_COMMIT

TAG_FROM = "promoted.from"
TAG_FROM_STACK = "promoted.from.stack"
TAG_FROM_MODEL = "promoted.from.model"
TAG_FROM_VERSION = "promoted.from.version"
TAG_FROM_RUN = "promoted.from.run"
TAG_FROM_TRACKING = "promoted.from.tracking_uri"
TAG_FROM_MODEL_ID = "promoted.from.model_id"
#: The first stack of a chain of promotions (dev -> staging -> prod): where the model was trained.
TAG_ORIGIN = "promoted.origin"
UPSTREAM = "upstream."
#: Upstream version tags carried over unchanged: the lineage and what the model is.
CARRIED_PREFIXES = ("git.", "package.", "dataset.", "mlflow.source.git", "estimator", "data.valid", TAG_ORIGIN)
STEP_COPY = "promote-copy"
STEP_GATES = "promote-gates"


@dataclass(frozen=True)
class Source:
    """Where the model comes from: a stack's registry, its model name, and a version (default: the alias's)."""

    stack: str
    tracking_uri: str
    model_name: str
    version: str | None = None
    alias: str = "champion"


@dataclass
class PromotionResult:
    """What a promotion did."""

    outcome: str
    source_version: str
    version: str | None = None
    resumed: bool = False
    decision: Decision | None = None
    move: registry.AliasMove | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the model made it (promoted, already champion, or waiting for approval)."""
        return self.outcome in ("promoted", "unchanged", "awaiting-approval")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"outcome": self.outcome, "ok": self.ok, "source_version": self.source_version, "version": self.version,
                "resumed": self.resumed, "gates": self.decision.to_dict() if self.decision else None,
                "promotion": self.move.to_dict() if self.move else None, "summary": self.lines}


def public_uri(uri: str) -> str:
    """A tracking URI without any user:password it may carry (recorded as provenance, never a secret)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


@contextlib.contextmanager
def _using(uri: str) -> Iterator[Any]:
    """MLflow's tracking and registry URIs set to `uri` for the block (restored after); yields a client on it."""
    import mlflow

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield mlflow.MlflowClient(uri, registry_uri=uri)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def key_of(source: Source, version: str) -> str:
    """The idempotency key of a promotion: '<stack>:<model>:v<version>'."""
    return f"{source.stack}:{source.model_name}:v{version}"


def read_source(source: Source, workdir: str) -> tuple[Any, str]:
    """The upstream version (refused unless its gates passed) and a local copy of its model artifacts."""
    import mlflow

    with _using(source.tracking_uri) as client:
        if source.version is not None:
            version = client.get_model_version(source.model_name, source.version)
        else:
            version = registry.alias_version(client, source.model_name, source.alias)
            if version is None:
                raise registry.RegistryError(f"{source.model_name} has no {source.alias} in stack {source.stack}: "
                                             "nothing to promote")
        if version.tags.get(registry.TAG_GATE_PASSED) != "true":
            raise registry.PromotionRefused(f"{source.model_name} v{version.version} in stack {source.stack} did not "
                                            "pass its gates there; only a version that did can be promoted")
        uri = client.get_model_version_download_uri(source.model_name, version.version)
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=workdir,
                                                    tracking_uri=source.tracking_uri)
    return version, local


def logged_model_id(version: Any) -> str:
    """The logged model a registered version serves ('' when it was registered from a run path)."""
    source = str(version.source or "")
    return getattr(version, "model_id", None) or (source.removeprefix("models:/") if source.startswith(
        "models:/m-") else "")


def carried_tags(source: Source, upstream: Any) -> dict[str, str]:
    """The downstream version's tags: upstream lineage, upstream gates as `upstream.gate.*`, and provenance."""
    tags = {k: v for k, v in upstream.tags.items() if k.startswith(CARRIED_PREFIXES)}
    tags.update({f"{UPSTREAM}{k}": v for k, v in upstream.tags.items() if k.startswith("gate.")})
    key = key_of(source, str(upstream.version))
    tags.update({TAG_FROM: key, TAG_FROM_STACK: source.stack, TAG_FROM_MODEL: source.model_name,
                 TAG_FROM_VERSION: str(upstream.version), TAG_FROM_RUN: upstream.run_id or "",
                 TAG_FROM_MODEL_ID: logged_model_id(upstream),
                 TAG_FROM_TRACKING: public_uri(source.tracking_uri)})
    tags.setdefault(TAG_ORIGIN, key)
    return tags


def find_promoted(client: Any, name: str, key: str) -> Any | None:
    """The downstream version an earlier run of this promotion registered, if any (newest first)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        if registry.is_missing(exc):
            return None
        raise
    matches = [v for v in versions if v.tags.get(TAG_FROM) == key]
    return max(matches, key=lambda v: int(v.version)) if matches else None


def relink(mlmodel: Path, *, model_id: str, run_id: str) -> None:
    """Point a copied MLmodel file at the downstream logged model and run; every other byte stays as it was."""
    text = mlmodel.read_text()
    text = re.sub(r"(?m)^model_id: .*$", f"model_id: {model_id}", text)
    mlmodel.write_text(re.sub(r"(?m)^run_id: .*$", f"run_id: {run_id}", text))


def copy_version(tracking: Any, config: RunConfig, tags: dict[str, str], local: str) -> str:
    """Upload the artifacts as a new downstream logged model (in a run of its own) and register it, with `tags`.

    The files are the upstream ones, byte for byte, except the two lines of `MLmodel` that name the logged model
    and the run (MLflow resolves them on the registry that serves the model; the upstream ids are in the tags).
    """
    from pipelines.pipeline import TAG_STEP

    client = tracking.client
    run_id = client.create_run(tracking.experiment_id, run_name=f"{config.model_name}-{STEP_COPY}",
                               tags={TAG_STEP: STEP_COPY, **tags}).info.run_id
    model_id = None
    try:
        model_id = client.create_logged_model(tracking.experiment_id, name="model", source_run_id=run_id,
                                              tags=tags).model_id
        relink(Path(local) / "MLmodel", model_id=model_id, run_id=run_id)
        client.log_model_artifacts(model_id, local)
        client.finalize_logged_model(model_id, "READY")
    except BaseException:
        if model_id is not None:
            client.finalize_logged_model(model_id, "FAILED")
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    version = registry.create_version(client, config.model_name, model_uri=f"models:/{model_id}", run_id=run_id,
                                      model_id=model_id, tags={**tags, "run_id": run_id})
    return str(version.version)


def run_gates(config: RunConfig, version: str, trigger: str) -> Decision:
    """Every gate of the downstream stack, for a copied version, on the downstream data; recorded on the version.

    Raises DataValidationError / DataError when the downstream data is refused (nothing is recorded then).
    """
    import mlflow.sklearn

    from pipelines.pipeline import PipelineRun
    from pipelines.tracking import connect
    from pipelines.train import Split, TrainedModel, infer_features, prepare_features
    from pipelines.validation import learn_profile

    state = PipelineRun(config=config, tracking=connect(config))
    with state.active(STEP_GATES, trigger=trigger):
        state.validate()
        assert state.dataset is not None
        frame = state.dataset.frame
        features = infer_features(frame, config.target_column)
        X, y = prepare_features(frame, features), frame[config.target_column]
        state.model_uri = f"models:/{config.model_name}/{version}"
        state.trained = TrainedModel(pipeline=mlflow.sklearn.load_model(state.model_uri), features=features,
                                     split=Split(X.iloc[:0], X, y.iloc[:0], y), params={})
        state.data_profile = learn_profile(frame, config.target_column)
        decision = state.evaluate()
        state.version = version
        state.record_gates()
        state.outcome = "evaluated"
    return decision


def _gates_current(client: Any, name: str, version: Any, alias: str) -> bool:
    """Whether the version's recorded gates compared against the champion that is champion now."""
    if version.tags.get(registry.TAG_GATE_PASSED) not in ("true", "false"):
        return False
    champion = registry.alias_version(client, name, alias)
    current = str(champion.version) if champion is not None else registry.NO_VERSION
    return version.tags.get(registry.TAG_GATE_CHAMPION) == current


def promote_between(source: Source, target: RunConfig, target_stack: str) -> PromotionResult:
    """Promote `source`'s version into the registry of `target` (see the module docstring); crash-safe, resumable."""
    from pipelines.data import DataError
    from pipelines.tracking import connect
    from pipelines.validation import DataValidationError

    with tempfile.TemporaryDirectory(prefix="shipyard-promote-") as workdir:
        upstream, local = read_source(source, workdir)
        tags = carried_tags(source, upstream)
        tracking = connect(target)
        client, name = tracking.client, target.model_name
        existing = find_promoted(client, name, tags[TAG_FROM])
        version = str(existing.version) if existing is not None else copy_version(tracking, target, tags, local)
    result = PromotionResult("registered", str(upstream.version), version, resumed=existing is not None)
    result.lines.append(f"{source.stack} {source.model_name} v{upstream.version} ({str(tags.get(TAG_COMMIT, '?'))[:12]}"
                        f") -> {target_stack} {name} v{version} (challenger)" + (", resumed" if existing else ""))
    current = client.get_model_version(name, version)
    if not _gates_current(client, name, current, target.alias):
        try:
            result.decision = run_gates(target, version, f"promotion from {tags[TAG_FROM]}")
        except (DataValidationError, DataError) as exc:
            result.outcome = "invalid-data"
            result.lines.append(f"downstream data refused: {exc}; {target.alias} unchanged")
            return result
        result.lines += result.decision.summary()
        current = client.get_model_version(name, version)
    if current.tags.get(registry.TAG_GATE_PASSED) != "true":
        result.outcome = "rejected"
        champion = registry.alias_version(client, name, target.alias)
        result.lines.append(f"rejected by the gates of {target_stack}: {target.alias} stays "
                            f"{'v' + str(champion.version) if champion else 'unset'}")
        return result
    if target.promotion == "manual":
        registry.propose(client, name, version)
        result.outcome = "awaiting-approval"
        result.lines.append(f"gates passed; {target_stack} requires approval: `shipyard approve --stack {target_stack} "
                            f"--model {name} --version {version}`")
        return result
    result.move = registry.promote(client, name, version, target.alias)
    result.outcome = "promoted" if result.move.moved else "unchanged"
    result.lines.append(f"{target.alias}: {'v' + result.move.previous if result.move.previous else '(none)'} -> "
                        f"v{version}" if result.move.moved else result.move.reason)
    return result


def approve_version(config: RunConfig, version: str, *, by: str, at: str) -> registry.AliasMove:
    """`registry.approve` on the configuration's registry."""
    from pipelines.tracking import connect

    return registry.approve(connect(config).client, config.model_name, version, by=by, at=at, alias=config.alias)
