"""Batch scoring with the champion and, in shadow, the challenger: what each prediction means, and how often
the two would decide differently."""

from __future__ import annotations

import numpy as np

from mlcicd.core.tasks import task_of


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10, probabilities: bool = False) -> float:
    """Population stability index of `actual` against `expected`, on `expected`'s quantile bins, or for
    probabilities on `bins` equal-width bins of [0, 1] (quantile bins of near-zero probabilities turn tiny
    calibration differences between two good models into a large index).

    Each bin gets half a count more on both sides: a bin that one small sample happens to miss would
    otherwise weigh log(share / 1e-6), and two samples of 300 from one distribution read as a shift one
    time in six (a canary window is that small). With many rows the half count changes nothing visible."""
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if probabilities:
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
        if len(edges) < 3:
            return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    e, a = np.histogram(expected, edges)[0] + 0.5, np.histogram(actual, edges)[0] + 0.5
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def decisions(features, predictions: np.ndarray) -> dict[str, np.ndarray]:
    """What a model's predictions mean for the business, per task (`features`: the model's FeatureState). Binary: the
    probability and the decision at the model's own threshold (its operating point); multiclass: the most likely class
    and its probability; regression: the value."""
    return task_of(features.task).outputs(np.asarray(predictions, dtype=float), features.classes, features.threshold)


def shadow_comparison(task: str, champion: dict[str, np.ndarray], challenger: dict[str, np.ndarray]) -> dict[str, float]:
    """How often champion and challenger would decide differently on the same rows, and how far apart their
    score distributions are (PSI). Takes the outputs of `decisions` for each."""
    kind = task_of(task)
    a, b = np.asarray(champion[kind.score_key], dtype=float), np.asarray(challenger[kind.score_key], dtype=float)
    if not len(a):
        return {"rows": 0.0, "disagreement_rate": 0.0, "mean_abs_difference": 0.0, "psi": 0.0}
    return {
        "rows": float(len(a)),
        "disagreement_rate": float(np.mean(kind.disagree(champion, challenger, a, b))),
        "mean_abs_difference": float(np.mean(np.abs(a - b))),
        "psi": psi(a, b, probabilities=kind.is_classifier),
    }
