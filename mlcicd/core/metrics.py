"""Evaluation metrics for the three tasks, each computed with per-row weights.

One implementation serves both the point estimate (weights of 1) and the paired bootstrap (Poisson
weights per round), so the gate compares exactly the number it reports. roc_auc and pr_auc sum their
weights in one of two ways (per distinct score, or in score order: whichever is cheaper for the
weights given) into one formula, `_ranking_value`; a test holds both to scikit-learn. A metric that is undefined
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


def dense_ranks(scores, order: np.ndarray | None = None) -> np.ndarray:
    """Each score's position among the distinct scores (equal scores share one). A ranking metric of any subset of the
    rows can be computed from these without sorting again: they keep the order and the ties. `order`: the scores'
    argsort, if known (score_order)."""
    scores = np.asarray(scores, dtype=float)
    order = score_order(scores) if order is None else order
    ordered = scores[order]
    starts = np.empty(len(scores), dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])  # each new distinct value
    ranks = np.empty(len(scores), dtype=np.intp)
    ranks[order] = np.cumsum(starts) - 1
    return ranks


def score_order(scores) -> np.ndarray:
    """The scores' stable argsort: one sort per model serves its ranks and its calibration bins."""
    return np.argsort(np.asarray(scores, dtype=float), kind="stable")


def _ranking_value(metric: str, pos: np.ndarray, below: np.ndarray, ties: np.ndarray, total_neg: np.ndarray) -> np.ndarray:
    """ROC AUC or average precision per round (ties handled as scikit-learn does), from each distinct score that positive
    rows have (columns, lowest score first): the positives' weight there (`pos`), the negatives' weight strictly below
    it (`below`) and at it (`ties`); `total_neg`: all the negatives' weight, per round."""
    total_pos = pos.sum(axis=1)
    if metric == "roc_auc":
        return (pos * (below + 0.5 * ties)).sum(axis=1) / (total_pos * total_neg)
    pos_at_or_above = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1]  # each threshold from the highest score down
    precision = pos_at_or_above / (pos_at_or_above + (total_neg[:, None] - below))
    return np.nansum(pos * precision, axis=1) / total_pos


def _ranked_by_groups(metric: str, y: np.ndarray, ranks: np.ndarray):
    """_ranking_value per row of weights from the rows' dense_ranks (of these rows or of a superset): one bincount per
    round and side over every distinct score, and no sort. Best for a single weighting (a point estimate)."""
    groups = int(ranks.max()) + 1 if len(ranks) else 0
    (pos_rows, neg_rows) = (np.flatnonzero(side) for side in (y == 1, y == 0))
    pos_groups, neg_groups = ranks[pos_rows], ranks[neg_rows]
    scored = np.unique(pos_groups)  # the distinct scores positives have

    def measure(weights: np.ndarray) -> np.ndarray:
        pos = np.vstack([np.bincount(pos_groups, weights=row, minlength=groups) for row in weights[:, pos_rows]])
        neg = np.vstack([np.bincount(neg_groups, weights=row, minlength=groups) for row in weights[:, neg_rows]])
        neg_to = np.cumsum(neg, axis=1)
        ties = neg[:, scored]
        return _ranking_value(metric, pos[:, scored], neg_to[:, scored] - ties, ties, neg_to[:, -1] if groups else np.zeros(len(weights)))

    return measure


def _ranked_by_order(metric: str, y: np.ndarray, scores: np.ndarray, columns: np.ndarray | None):
    """_ranking_value per row of weights, the rows sorted once here: each round sums the negatives' weights in score
    order and reads them at the scores positives have, so a round costs a pass over its weights and no bincount.
    Best for many rounds (a bootstrap). `columns`: each row's column in the weights (None: the rows' own order)."""
    order = np.argsort(scores, kind="stable")
    negatives, positives = order[y[order] == 0], order[y[order] == 1]  # each side in score order
    neg_scores, pos_scores = scores[negatives], scores[positives]
    starts = np.flatnonzero(np.r_[True, pos_scores[1:] != pos_scores[:-1]]) if len(positives) else np.array([], dtype=np.intp)
    distinct = pos_scores[starts]
    low, high = np.searchsorted(neg_scores, distinct, side="left"), np.searchsorted(neg_scores, distinct, side="right")
    neg_columns, pos_columns = (side if columns is None else columns[side] for side in (negatives, positives))

    sums: dict = {}  # the running sums' array, kept for the next round of the same shape (a new one costs page faults)

    def measure(weights: np.ndarray) -> np.ndarray:
        if not len(positives):
            return np.full(len(weights), np.nan)
        kind = np.int64 if weights.dtype.kind in "biu" else np.float64  # counts sum exactly, and 5x faster than floats
        if sums.get("shape") != (len(weights), kind):
            sums.update(shape=(len(weights), kind), array=np.zeros((len(weights), len(negatives) + 1), dtype=kind))
        neg_to = sums["array"]  # [:, k]: the weight of the k lowest negatives
        np.cumsum(_columns(weights, neg_columns), axis=1, dtype=kind, out=neg_to[:, 1:])
        pos = np.add.reduceat(_columns(weights, pos_columns), starts, axis=1, dtype=kind).astype(float)
        below = neg_to[:, low].astype(float)
        return _ranking_value(metric, pos, below, neg_to[:, high] - below, neg_to[:, -1].astype(float))

    return measure


def _columns(weights: np.ndarray, columns: np.ndarray | None) -> np.ndarray:
    """weights[:, columns], or the weights as they are when `columns` is None (the columns are known to be in range:
    np.take then skips the check, which costs more than the copy on a bootstrap's small-integer weights)."""
    return weights if columns is None else np.take(weights, columns, axis=1, mode="clip")


def prepared_metric(metric: str, labels, predictions, threshold: float = 0.5, ranks: np.ndarray | None = None,
                    columns: np.ndarray | None = None):
    """weighted_metric for fixed rows, as a function of the weights alone (rounds x columns, any numeric type: a
    bootstrap's are Poisson counts as small integers), with the work that depends only on the rows done once. roc_auc
    and pr_auc: with `ranks` (dense_ranks of these rows or of a superset), counted per distinct score (best for a single
    weighting); without, the rows are sorted here (best for a bootstrap's many rounds). `columns`: where these rows are
    among the weights' columns (default: all, in order)."""
    y = np.asarray(labels, dtype=float)
    columns = None if columns is None else np.asarray(columns, dtype=np.intp)
    if metric not in RANKING_METRICS:
        return lambda weights: weighted_metric(metric, y, predictions, _columns(np.atleast_2d(weights), columns), threshold)
    if ranks is not None:
        by_groups = _ranked_by_groups(metric, y, ranks)
        inner = lambda weights: by_groups(_columns(weights, columns).astype(float, copy=False))  # noqa: E731
    else:
        inner = _ranked_by_order(metric, y, np.asarray(predictions, dtype=float), columns)

    def measure(weights) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return inner(np.atleast_2d(np.asarray(weights)))

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


def calibration_error(task: str, labels, predictions, bins: int = 10, order: np.ndarray | None = None) -> float:
    """binary: expected calibration error of the probabilities; multiclass: of the top-class confidence;
    regression: |mean residual| / standard deviation of the target (calibration in the large). `order`: score_order of
    1-D predictions, if known."""
    y, pred = np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float)
    if len(y) == 0:
        return math.nan
    return task_of(task).calibration_error(y, pred, bins, order)
