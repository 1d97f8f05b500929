"""Training: one Pipeline with preprocessing; seeded; optional grid search; parameters checked by name."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.config import ConfigError, from_dict
from pipelines.demo import demo_frame
from pipelines.train import infer_features, train_model

FRAME = demo_frame("demo://classification?rows=800&seed=3&missing=0.05")


def _config(**overrides):
    return from_dict({"model_name": "m", "tracking_uri": "x", **overrides})


def test_pipeline_carries_preprocessing_and_handles_messy_rows() -> None:
    trained = train_model(FRAME, _config())
    assert trained.features.numeric == [f"num_{i}" for i in range(6)]
    assert trained.features.categorical == ["cat_0", "cat_1"]
    assert list(trained.pipeline.named_steps) == ["preprocess", "model"]
    messy = trained.split.X_test.head(3).copy()
    messy.loc[messy.index[0], "cat_0"] = "never-seen"
    messy.loc[messy.index[1], "num_0"] = np.nan
    assert np.isfinite(trained.pipeline.predict_proba(messy)).all()


def test_split_is_stratified_and_seeded() -> None:
    first, second = train_model(FRAME, _config()), train_model(FRAME, _config())
    assert first.split.X_test.index.equals(second.split.X_test.index)
    assert abs(first.split.y_test.mean() - FRAME["label"].mean()) < 0.02
    assert np.array_equal(first.pipeline.predict_proba(first.split.X_test),
                          second.pipeline.predict_proba(second.split.X_test))
    assert first.params["max_iter"] == 1000 and first.params["random_state"] == 42


def test_grid_search_picks_parameters_by_cross_validation() -> None:
    config = _config(estimator="random_forest_classifier", params={"n_estimators": 20},
                     search={"grid": {"max_depth": [1, 6]}, "folds": 3})
    trained = train_model(FRAME, config)
    assert trained.search["best_params"] == {"max_depth": 6}
    assert trained.search["candidates"] == 2 and trained.search["scoring"] == "roc_auc"
    assert trained.params["max_depth"] == 6


def test_regression_estimators() -> None:
    frame = demo_frame("demo://regression?rows=600&seed=2")
    for estimator in ("ridge", "hist_gradient_boosting_regressor"):
        trained = train_model(frame, _config(task="regression", estimator=estimator, target_column="target",
                                             params={}))
        assert trained.split.y_test.shape[0] == 120
        assert np.isfinite(trained.pipeline.predict(trained.split.X_test)).all()


def test_unknown_parameters_name_their_key() -> None:
    with pytest.raises(ConfigError) as caught:
        train_model(FRAME, _config(params={"C": 1.0, "learning_rat": 0.1}))
    assert caught.value.key == "params.learning_rat"
    with pytest.raises(ConfigError) as caught:
        train_model(FRAME, _config(search={"grid": {"depth": [1, 2]}}))
    assert caught.value.key == "search.grid.depth"


def test_integer_features_become_float_features() -> None:
    frame = FRAME.assign(num_0=FRAME["num_0"].round().astype("int64"))
    trained = train_model(frame, _config())
    assert trained.split.X_train["num_0"].dtype == np.float64
    assert infer_features(frame, "label").numeric[0] == "num_0"
