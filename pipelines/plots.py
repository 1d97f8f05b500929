"""Evaluation plots logged with each run: confusion matrix and ROC for classifiers, residuals for regressors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def evaluation_figures(task: str, y_true: Sequence[Any], y_pred: Sequence[Any], proba: np.ndarray | None = None,
                       classes: Sequence[Any] | None = None) -> dict[str, Any]:
    """File name -> matplotlib Figure for this task's evaluation plots."""
    plt = _pyplot()
    figures: dict[str, Any] = {}
    if task == "classification":
        from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

        fig, ax = plt.subplots(figsize=(4.5, 4))
        ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=classes, ax=ax, colorbar=False)
        ax.set_title("Confusion matrix (held-out)")
        figures["confusion_matrix.png"] = fig
        if proba is not None and classes is not None:
            fig, ax = plt.subplots(figsize=(4.5, 4))
            y = np.asarray(y_true)
            for i, label in enumerate(classes):
                if len(classes) == 2 and i == 0:
                    continue
                RocCurveDisplay.from_predictions(y == label, proba[:, i], ax=ax, name=f"class {label}")
            ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
            ax.set_title("ROC (held-out)")
            figures["roc_curve.png"] = fig
    else:
        y = np.asarray(y_true, dtype=float)
        p = np.asarray(y_pred, dtype=float)
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
        left.scatter(p, y - p, s=6, alpha=0.4)
        left.axhline(0.0, color="grey", linewidth=1)
        left.set_xlabel("predicted")
        left.set_ylabel("residual (actual - predicted)")
        left.set_title("Residuals vs predicted (held-out)")
        right.hist(y - p, bins=40)
        right.set_xlabel("residual")
        right.set_title("Residual distribution")
        fig.tight_layout()
        figures["residuals.png"] = fig
    return figures


def close(figures: dict[str, Any]) -> None:
    """Release the figures' memory."""
    plt = _pyplot()
    for fig in figures.values():
        plt.close(fig)
