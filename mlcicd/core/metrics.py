"""Evaluation metrics for the three tasks, each computed with per-row weights.

One implementation serves both the point estimate (weights of 1) and the paired bootstrap (Poisson
weights per round), so the gate compares exactly the number it reports. A metric that is undefined
(one class in the labels, a constant target) is NaN, never a guess.

Predictions by task: binary, the probability of the positive class (n,); multiclass, a probability
matrix (n, classes); regression, the predicted value (n,). Labels: binary 0/1, multiclass the class
code (-1 for a class the model never saw), regression the value.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from mlcicd.core.tasks import TASKS, task_of

TASK_METRICS: dict[str, tuple[str, ...]] = {name: task.metrics for name, task in TASKS.items()}  # from the task table
CLASS_METRICS = frozenset(m for task in TASKS.values() if task.is_classifier for m in task.metrics)  # they judge predicted classes
HIGHER_IS_BETTER = frozenset({"roc_auc", "pr_auc", "f1", "accuracy", "macro_f1", "r2"})
EPS = 1e-7


def better_by(metric: str, candidate: float, reference: float) -> float:
    """How much better `candidate` is than `reference` (positive = better), whichever way the metric points."""
    return candidate - reference if metric in HIGHER_IS_BETTER else reference - candidate


RANKING_METRICS = ("roc_auc", "pr_auc")  # they depend on the scores' order alone


def dense_ranks(scores) -> np.ndarray:
    """Each score's position among the distinct scores (equal scores share one). A ranking metric of any subset of the
    rows can be computed from these without sorting again: they keep the order and the ties."""
    return np.unique(np.asarray(scores, dtype=float), return_inverse=True)[1]


def _ranked(metric: str, groups: int, positive: tuple, negative: tuple, weights: np.ndarray) -> np.ndarray:
    """ROC AUC or average precision per row of `weights` (ties handled as scikit-learn does), once the scores are ranked:
    `positive` and `negative` are (row positions, score group of each row) of the labels 1 and 0. Each round's weighted
    positives and negatives per distinct score, one bincount per round and side (a row of the other label would only
    add exact zeros, so the sums are the same to the bit)."""
    (pos_rows, pos_groups), (neg_rows, neg_groups) = positive, negative
    on_pos, on_neg = weights[:, pos_rows], weights[:, neg_rows]
    pos = np.vstack([np.bincount(pos_groups, weights=row, minlength=groups) for row in on_pos])
    neg = np.vstack([np.bincount(neg_groups, weights=row, minlength=groups) for row in on_neg])
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    if metric == "roc_auc":
        below = np.cumsum(neg, axis=1) - neg
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
    pos_desc, all_desc = pos[:, ::-1], (pos + neg)[:, ::-1]  # thresholds from the highest score down
    precision = np.cumsum(pos_desc, axis=1) / np.cumsum(all_desc, axis=1)
    return np.nansum(pos_desc * precision, axis=1) / total_pos


def prepared_metric(metric: str, labels, predictions, threshold: float = 0.5, ranks: np.ndarray | None = None):
    """weighted_metric for fixed rows, as a function of the weights alone, with the work that depends only on the rows
    done once: ranking the scores for roc_auc and pr_auc (what a bootstrap would otherwise repeat every chunk), or taking
    `ranks` (dense_ranks of a superset of these rows; best for a single weighting, since each round then counts over
    every distinct score of the superset)."""
    if metric not in RANKING_METRICS:
        return lambda weights: weighted_metric(metric, labels, predictions, weights, threshold)
    y = np.asarray(labels, dtype=float)
    if ranks is None:
        ranks = dense_ranks(predictions)
    groups = int(ranks.max()) + 1 if len(ranks) else 0
    sides = [np.flatnonzero(side) for side in (y == 1, y == 0)]
    positive, negative = ((rows, ranks[rows]) for rows in sides)

    def measure(weights) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return _ranked(metric, groups, positive, negative, np.atleast_2d(np.asarray(weights, dtype=float)))

    return measure


def _f1(weights: np.ndarray, truth: np.ndarray, predicted: np.ndarray, undefined: float) -> np.ndarray:
    tp = weights @ (truth & predicted).astype(float)
    fp = weights @ (~truth & predicted).astype(float)
    fn = weights @ (truth & ~predicted).astype(float)
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), undefined)


def weighted_metric(metric: str, labels, predictions, weights, threshold: float = 0.5, ranks: np.ndarray | None = None) -> np.ndarray:
    """The metric once per row of `weights` (shape rounds x rows); `ranks`: the scores' dense_ranks, if known."""
    y = np.asarray(labels, dtype=float)
    pred = np.asarray(predictions, dtype=float)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric in RANKING_METRICS:
            return prepared_metric(metric, y, pred, ranks=ranks)(w)
        if metric == "log_loss":
            if pred.ndim == 2:
                codes = np.clip(y, 0, None).astype(int)
                p = np.where(y >= 0, pred[np.arange(len(y)), codes], 0.0)
            else:
                p = np.where(y == 1, pred, 1 - pred)
            return w @ -np.log(np.clip(p, EPS, 1.0)) / total
        if metric == "brier":
            return w @ (pred - y) ** 2 / total
        if metric == "f1":
            return _f1(w, y == 1, pred >= threshold, undefined=0.0)
        if metric == "accuracy":
            return w @ (pred.argmax(axis=1) == y).astype(float) / total
        if metric == "macro_f1":  # classes absent from both labels and predictions are left out, as scikit-learn does
            predicted = pred.argmax(axis=1)
            per_class = np.vstack([_f1(w, y == k, predicted == k, undefined=np.nan) for k in range(pred.shape[1])])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(per_class, axis=0)
        if metric == "rmse":
            return np.sqrt(w @ (pred - y) ** 2 / total)
        if metric == "mae":
            return w @ np.abs(pred - y) / total
        if metric == "r2":
            mean = (w @ y) / total
            total_squares = (w * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
            residual = w @ (pred - y) ** 2
            return np.where(total_squares > 0, 1 - residual / np.where(total_squares > 0, total_squares, 1), np.nan)
    raise ValueError(f"unknown metric {metric!r}; known: {sorted({m for ms in TASK_METRICS.values() for m in ms})}")


def task_metrics(task: str, labels, predictions, threshold: float = 0.5, ranks: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of the task on all rows, plus the row count (and the positive rate for binary); `ranks`: the
    predictions' dense_ranks, if known (else each ranking metric sorts them)."""
    y = np.asarray(labels, dtype=float)
    ones = np.ones((1, len(y)))
    out = {}
    for metric in TASK_METRICS[task]:
        value = float(weighted_metric(metric, y, predictions, ones, threshold, ranks)[0]) if len(y) else math.nan
        out[metric] = value if math.isfinite(value) else math.nan
    out["rows"] = float(len(y))
    out.update(task_of(task).extra_metrics(y))
    return out


def calibration_error(task: str, labels, predictions, bins: int = 10) -> float:
    """binary: expected calibration error of the probabilities; multiclass: of the top-class confidence;
    regression: |mean residual| / standard deviation of the target (calibration in the large)."""
    y, pred = np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float)
    if len(y) == 0:
        return math.nan
    return task_of(task).calibration_error(y, pred, bins)
