"""The training pipeline's phases on one MLflow run: validate, train, evaluate, register, record gates, promote.

`PipelineRun` holds what the phases hand each other in memory; `PipelineRun.resume` rebuilds it from a
finished training run (its logged model, its dataset, the same seeded split), so the phases also run one
by one as separate steps (`train`, then `evaluate --run-id`, `register --run-id`, `promote`).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import gates as g
from pipelines import registry
from pipelines.config import RunConfig
from pipelines.data import DataError, Dataset, read_dataset
from pipelines.drift import build_profile
from pipelines.lineage import TAG_DATASET_HASH, TAG_DATASET_URI, lineage_tags
from pipelines.plots import close, evaluation_figures
from pipelines.tracking import Tracking, load_json_artifact
from pipelines.train import TrainedModel, infer_features, prepare_features, split_data, train_model
from pipelines.validation import DataValidationError, ValidationReport, learn_profile, validate

#: Files stored with each model version (under the logged model's `extra_files/`).
DATA_PROFILE = "data_profile.json"
REFERENCE_PROFILE = "reference_profile.json"
#: Run tags linking a run to its logged model.
TAG_MODEL_URI = "model.uri"
TAG_MODEL_ID = "model.id"
TAG_STEP = "shipyard.step"
TAG_TRIGGER = "shipyard.trigger"
TAG_OUTCOME = "shipyard.outcome"
GATES_ARTIFACT = "evaluation/gates.json"
VALIDATION_ARTIFACT = "validation/report.json"


def version_artifact(tracking: Tracking, name: str, version: str, filename: str) -> dict[str, Any] | None:
    """A JSON file stored with a model version (None if it has none)."""
    base = tracking.client.get_model_version_download_uri(name, version)
    return load_json_artifact(tracking.mlflow, f"{base.rstrip('/')}/extra_files/{filename}")


@dataclass
class PipelineRun:
    """One pass of the training pipeline for a configuration, on one MLflow run."""

    config: RunConfig
    tracking: Tracking
    run_id: str | None = None
    dataset: Dataset | None = None
    report: ValidationReport | None = None
    trained: TrainedModel | None = None
    data_profile: dict[str, Any] | None = None
    model_uri: str | None = None
    model_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    decision: g.Decision | None = None
    version: str | None = None
    promotion: registry.AliasMove | None = None
    outcome: str = "started"
    lineage: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------ the run
    @contextlib.contextmanager
    def active(self, step: str, trigger: str | None = None) -> Iterator[PipelineRun]:
        """This pipeline's MLflow run, started (or resumed) for the duration; FAILED if an exception escapes."""
        mlflow = self.tracking.mlflow
        tags = {TAG_STEP: step, **({TAG_TRIGGER: trigger} if trigger else {})}
        if self.run_id is None:
            run = mlflow.start_run(experiment_id=self.tracking.experiment_id, tags=tags,
                                   run_name=f"{self.config.model_name}-{step}")
        else:
            run = mlflow.start_run(run_id=self.run_id)
        with run:
            self.run_id = run.info.run_id
            yield self
            mlflow.set_tag(TAG_OUTCOME, self.outcome)

    @property
    def name(self) -> str:
        """The registered model's name."""
        return self.config.model_name

    def champion(self) -> Any:
        """The current champion version, or None."""
        return registry.alias_version(self.tracking.client, self.name, self.config.alias)

    # ------------------------------------------------------------------------------------------ phases
    def validate(self) -> ValidationReport:
        """Read the dataset and validate it against the champion's data profile (or basic rules, at first)."""
        mlflow = self.tracking.mlflow
        self.dataset = read_dataset(self.config.dataset_uri)
        self.lineage = lineage_tags(self.dataset.uri, self.dataset.content_hash, self.dataset.rows)
        mlflow.set_tags(self.lineage)
        champion = self.champion()
        reference = version_artifact(self.tracking, self.name, str(champion.version), DATA_PROFILE) \
            if champion else None
        self.report = validate(self.dataset.frame, target_column=self.config.target_column, task=self.config.task,
                               profile=reference)
        mlflow.log_dict(self.report.to_dict(), VALIDATION_ARTIFACT)
        mlflow.set_tags({"data.valid": str(self.report.passed).lower(),
                         "data.reference": f"v{champion.version}" if reference else "none"})
        if not self.report.passed:
            self.outcome = "invalid-data"
            raise DataValidationError(self.report)
        return self.report

    def train(self) -> TrainedModel:
        """Fit the pipeline and log it, with signature, input example and reference profiles, to the run."""
        mlflow = self.tracking.mlflow
        assert self.dataset is not None, "validate() first"
        cfg = self.config
        frame = self.dataset.frame
        self.trained = trained = train_model(frame, cfg)
        self._log_params(trained)
        self._log_dataset_input()
        self.data_profile = learn_profile(frame, cfg.target_column)
        profiles = {DATA_PROFILE: self.data_profile}
        predictions = trained.pipeline.predict(prepare_features(frame, trained.features))
        profiles[REFERENCE_PROFILE] = build_profile(frame, target_column=cfg.target_column,
                                                    predictions=np.asarray(predictions), task=cfg.task)
        info = self._log_model(trained, profiles)
        self.model_uri, self.model_id = info.model_uri, info.model_id
        mlflow.set_tags({TAG_MODEL_URI: info.model_uri, TAG_MODEL_ID: info.model_id or ""})
        return trained

    def _log_params(self, trained: TrainedModel) -> None:
        mlflow = self.tracking.mlflow
        cfg = self.config
        params: dict[str, Any] = {"estimator": cfg.estimator, "task": cfg.task, "test_size": cfg.test_size,
                                  "seed": cfg.seed, "target_column": cfg.target_column,
                                  "features.numeric": ",".join(trained.features.numeric),
                                  "features.categorical": ",".join(trained.features.categorical)}
        params.update({f"model.{k}": v for k, v in trained.params.items()})
        if trained.search is not None:
            params["search.grid"] = json.dumps(cfg.search.grid if cfg.search else {}, sort_keys=True)
            params["search.folds"] = trained.search["folds"]
            mlflow.log_metric("search.best_score", trained.search["best_score"])
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})

    def _log_dataset_input(self) -> None:
        mlflow = self.tracking.mlflow
        from mlflow.exceptions import MlflowException

        assert self.dataset is not None
        kwargs = {"targets": self.config.target_column, "name": self.config.model_name,
                  "digest": self.dataset.content_hash[:32]}
        try:
            data = mlflow.data.from_pandas(self.dataset.frame, source=self.dataset.uri, **kwargs)
        except MlflowException:  # a scheme MLflow has no source type for (demo://, memory://...)
            from mlflow.data.http_dataset_source import HTTPDatasetSource

            data = mlflow.data.from_pandas(self.dataset.frame, source=HTTPDatasetSource(self.dataset.uri), **kwargs)
        mlflow.log_input(data, context="training")

    def _log_model(self, trained: TrainedModel, profiles: dict[str, dict[str, Any]]) -> Any:
        import mlflow.sklearn
        import skops.io
        from mlflow.models import infer_signature

        X = trained.split.X_train
        signature = infer_signature(X, trained.pipeline.predict(X.head(100)))
        complete = X.dropna()
        example = (complete if len(complete) else X).head(5)
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(trained.pipeline))
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for filename, content in profiles.items():
                path = Path(tmp) / filename
                path.write_text(json.dumps(content, sort_keys=True, allow_nan=False, default=_plain))
                files.append(str(path))
            return mlflow.sklearn.log_model(
                trained.pipeline, name="model", signature=signature, input_example=example,
                serialization_format="skops", skops_trusted_types=trusted, extra_files=files,
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            )

    def evaluate(self) -> g.Decision:
        """Metrics on the held-out split, evaluation plots, and every gate; logged to the run."""
        mlflow = self.tracking.mlflow
        assert self.trained is not None and self.model_uri is not None, "train() first"
        cfg = self.config
        pipeline, split = self.trained.pipeline, self.trained.split
        classes = list(pipeline.classes_) if cfg.task == "classification" else None
        y_pred = pipeline.predict(split.X_test)
        proba = pipeline.predict_proba(split.X_test) if classes is not None else None
        self.metrics = g.compute_metrics(cfg.task, split.y_test, y_pred, proba, classes)
        mlflow.log_metrics({k: v for k, v in self.metrics.items() if np.isfinite(v)})
        self._log_figures(y_pred, proba, classes)
        gates = [g.threshold_gate(self.metrics, cfg.gates.minimum, cfg.gates.maximum)]
        champion = self.champion()
        gates.append(self._champion_gate(champion))
        gates.append(self._model_validation(classes))
        self.decision = g.Decision(gates=gates, champion_version=str(champion.version) if champion else None)
        mlflow.log_dict(self.decision.to_dict(), GATES_ARTIFACT)
        mlflow.set_tags({f"gate.{gate.gate}": "pass" if gate.passed else "fail" for gate in gates}
                        | {registry.TAG_GATE_PASSED: str(self.decision.passed).lower()})
        return self.decision

    def _log_figures(self, y_pred: Any, proba: Any, classes: list[Any] | None) -> None:
        assert self.trained is not None
        figures = evaluation_figures(self.config.task, self.trained.split.y_test, y_pred, proba, classes)
        try:
            for filename, figure in figures.items():
                self.tracking.mlflow.log_figure(figure, f"evaluation/{filename}")
        finally:
            close(figures)

    def _champion_gate(self, champion: Any) -> g.GateResult:
        cfg = self.config
        assert self.trained is not None
        if champion is None:
            return g.champion_gate(cfg.gates.primary_metric, self.metrics, None, cfg.gates.challenger_margin)
        split = self.trained.split
        version = str(champion.version)
        try:
            import mlflow.sklearn

            model = mlflow.sklearn.load_model(f"models:/{self.name}/{version}")
            classes = list(model.classes_) if cfg.task == "classification" else None
            theirs = g.compute_metrics(cfg.task, split.y_test, model.predict(split.X_test),
                                       model.predict_proba(split.X_test) if classes is not None else None, classes)
        except Exception as exc:  # any failure to score the champion must stop promotion, with the reason
            return g.champion_gate(cfg.gates.primary_metric, self.metrics, None,
                                   cfg.gates.challenger_margin, version, error=f"{type(exc).__name__}: {exc}")
        self.tracking.mlflow.log_metrics({f"champion.{k}": v for k, v in theirs.items() if np.isfinite(v)})
        return g.champion_gate(cfg.gates.primary_metric, self.metrics, theirs,
                               cfg.gates.challenger_margin, version)

    def _model_validation(self, classes: list[Any] | None) -> g.GateResult:
        """Checks on the logged model itself, loaded back as MLflow would serve it."""
        import mlflow.pyfunc

        assert self.trained is not None and self.model_uri is not None
        cfg, trained = self.config, self.trained
        features = trained.features
        served = mlflow.pyfunc.load_model(self.model_uri)
        schema = served.metadata.get_input_schema()
        checks = [g.signature_check(schema.input_names() if schema is not None else None, features.columns)]
        example = served.input_example
        try:
            checks.append(g.round_trip_check(trained.pipeline.predict(example), served.predict(example), cfg.task))
        except Exception as exc:  # the logged model must reproduce the pipeline; any failure is the finding
            checks.append(g.round_trip_check(np.array([]), None, cfg.task, error=f"{type(exc).__name__}: {exc}"))
        profile = self.data_profile or learn_profile(trained.split.X_train, None)
        edges = g.edge_rows(profile, features.numeric, features.categorical)
        try:
            checks.append(g.edge_check(served.predict(edges), len(edges), cfg.task, classes))
            proba = trained.pipeline.predict_proba(edges) if classes is not None else None
            checks.append(g.finite_proba_check(proba))
        except Exception as exc:  # a crash on edge rows is exactly what this check exists to catch
            checks.append(g.edge_check(None, len(edges), cfg.task, classes, error=f"{type(exc).__name__}: {exc}"))
        p50 = g.measure_latency(served.predict, trained.split.X_test.head(1))
        checks.append(g.latency_check(p50, cfg.gates.max_latency_ms))
        self.tracking.mlflow.log_metric("latency_p50_ms", p50)
        return g.model_validation_gate(checks)

    def register(self) -> str:
        """Register the logged model as a new version (alias `challenger`), carrying the run's lineage."""
        assert self.model_uri is not None and self.run_id is not None, "train() first"
        tags = {**self.lineage, "run_id": self.run_id, "estimator": self.config.estimator}
        if self.report is not None:
            tags["data.valid"] = str(self.report.passed).lower()
        version = registry.create_version(self.tracking.client, self.name, model_uri=self.model_uri,
                                          run_id=self.run_id, model_id=self.model_id, tags=tags)
        self.version = str(version.version)
        self.tracking.mlflow.set_tag("registered.version", self.version)
        return self.version

    def record_gates(self) -> None:
        """Write the gate decision onto the registered version (`gate.passed` last)."""
        assert self.version is not None, "register() first"
        if self.decision is None:
            raise registry.RegistryError(f"run {self.run_id} was never evaluated: run `evaluate --run-id` first")
        registry.record_gates(self.tracking.client, self.name, self.version, self.decision)

    def promote(self) -> registry.AliasMove | None:
        """Move the champion alias to this version if every gate passed; otherwise leave it.

        With `promotion: manual` a version that passed is proposed instead (`approval.state=pending`): the
        champion moves only through `shipyard approve`.
        """
        assert self.version is not None and self.decision is not None
        if not self.decision.passed:
            self.outcome = "rejected"
            return None
        if self.config.promotion == "manual":
            registry.propose(self.tracking.client, self.name, self.version)
            self.outcome = "proposed"
            return None
        self.promotion = registry.promote(self.tracking.client, self.name, self.version, self.config.alias)
        self.outcome = "promoted" if self.promotion.moved else "unchanged"
        return self.promotion

    # ------------------------------------------------------------------------------------------ resume
    @classmethod
    def resume(cls, config: RunConfig, tracking: Tracking, run_id: str, *, load_data: bool = True) -> PipelineRun:
        """Rebuild a trained run's state: its model, lineage, decision and (with `load_data`) data and split."""
        import mlflow.sklearn

        run = tracking.client.get_run(run_id)
        tags, params = run.data.tags, run.data.params
        model_uri = tags.get(TAG_MODEL_URI)
        if not model_uri:
            raise registry.RegistryError(f"run {run_id} logged no model (was it a training run?)")
        state = cls(config=config, tracking=tracking, run_id=run_id, model_uri=model_uri,
                    model_id=tags.get(TAG_MODEL_ID) or None,
                    lineage={k: v for k, v in tags.items() if k.startswith(("git.", "package.", "dataset.",
                                                                          "mlflow.source.git"))})
        gates = load_json_artifact(tracking.mlflow, f"{run.info.artifact_uri.rstrip('/')}/{GATES_ARTIFACT}")
        state.decision = g.Decision.from_dict(gates) if gates else None
        if not load_data:
            return state
        if tags.get(TAG_DATASET_URI) != config.dataset_uri:
            raise DataError(f"run {run_id} trained on {tags.get(TAG_DATASET_URI)}, the configuration names "
                            f"{config.dataset_uri}")
        dataset = read_dataset(config.dataset_uri)
        if dataset.content_hash != tags.get(TAG_DATASET_HASH):
            raise DataError(f"{config.dataset_uri} changed since run {run_id} trained on it "
                            f"(hash {dataset.content_hash[:12]} != {str(tags.get(TAG_DATASET_HASH))[:12]})")
        same = config.model_copy(update={"test_size": float(params.get("test_size", config.test_size)),
                                         "seed": int(params.get("seed", config.seed))})
        features = infer_features(dataset.frame, config.target_column)
        pipeline = mlflow.sklearn.load_model(model_uri)
        state.dataset = dataset
        state.config = same
        state.trained = TrainedModel(pipeline=pipeline, features=features,
                                     split=split_data(dataset.frame, same, features), params={})
        if state.model_id:
            location = tracking.mlflow.get_logged_model(state.model_id).artifact_location
            state.data_profile = load_json_artifact(tracking.mlflow,
                                                    f"{location.rstrip('/')}/extra_files/{DATA_PROFILE}")
        return state


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
