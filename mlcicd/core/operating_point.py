"""Operating points: the decision threshold a binary model is used at, chosen on the validation split (never the
holdout) by the rule in model.operating_point, and the paired comparison of two models each at its own threshold.

Rules: max_f1 (default), target_precision (the most recall with at least that precision), target_recall (the most
precision with at least that recall), min_cost (the fewest costed mistakes: costs.false_positive per false alarm,
costs.false_negative per miss) and fixed (the configured threshold).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mlcicd.core.stats import poisson_counts, resampling_plan, rescaled, rounds_per_chunk

DEFAULT_THRESHOLD = 0.5  # a model saved before operating points, or a validation split with a single class


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    rule: str
    precision: float  # on the validation split, at the threshold
    recall: float
    rows: int
    why: str  # how it was chosen, in words
    positives: int = 0  # in the validation split: a threshold chosen on few positives moves between retrains
    costs: tuple[float, float] = (1.0, 1.0)  # min_cost: per false alarm, per miss

    def to_dict(self) -> dict:
        return {**asdict(self), "costs": list(self.costs)}  # as JSON gives it back


def curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct threshold (highest first) with its true positives, false positives and false negatives."""
    y, p = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    last = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1]  # the last row of each run of equal scores
    tp = np.cumsum(y)[last]
    fp = np.cumsum(1 - y)[last]
    return p[last], tp, fp, y.sum() - tp


def rates_at(labels, scores, threshold: float) -> tuple[float, float]:
    """(precision, recall) of deciding positive at score >= threshold; NaN where undefined."""
    y, decided = np.asarray(labels, dtype=float) == 1, np.asarray(scores, dtype=float) >= threshold
    tp = float(np.sum(y & decided))
    precision = tp / decided.sum() if decided.sum() else math.nan
    recall = tp / y.sum() if y.sum() else math.nan
    return precision, recall


def choose(spec, labels, scores) -> OperatingPoint:
    """The threshold `spec` (an OperatingPointSpec) asks for, on these validation labels and scores."""
    y = np.asarray(labels, dtype=float)
    found = choose_on(spec, y, scores)
    return OperatingPoint(**{**found.to_dict(), "positives": int(y.sum()), "costs": (spec.costs.false_positive, spec.costs.false_negative)})


def choose_on(spec, y: np.ndarray, scores) -> OperatingPoint:
    rows = len(y)
    if spec.rule == "fixed":
        precision, recall = rates_at(y, scores, spec.threshold)
        return OperatingPoint(spec.threshold, "fixed", precision, recall, rows, f"fixed at {spec.threshold:g} (model.operating_point.threshold)")
    if rows == 0 or y.min() == y.max():
        precision, recall = rates_at(y, scores, DEFAULT_THRESHOLD)
        why = f"the validation split ({rows:,} rows) has a single class, so no threshold can be chosen on it: {DEFAULT_THRESHOLD:g} is used"
        return OperatingPoint(DEFAULT_THRESHOLD, spec.rule, precision, recall, rows, why)
    thresholds, tp, fp, fn = curve(y, scores)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    if spec.rule == "max_f1":
        best = int(np.argmax(2 * tp / (2 * tp + fp + fn)))
        why = f"the highest F1 on the validation split ({2 * tp[best] / (2 * tp[best] + fp[best] + fn[best]):.4f})"
    elif spec.rule == "min_cost":
        cost = spec.costs.false_positive * fp + spec.costs.false_negative * fn
        best = int(np.argmin(cost))
        why = (f"the lowest cost on the validation split ({cost[best]:g}: {spec.costs.false_positive:g} per false alarm, "
               f"{spec.costs.false_negative:g} per miss)")
    else:
        reached = precision >= spec.target if spec.rule == "target_precision" else recall >= spec.target
        if not reached.any():
            what = "precision" if spec.rule == "target_precision" else "recall"
            best = int(np.argmax(precision if spec.rule == "target_precision" else recall))
            why = (f"no threshold reaches the target {what} {spec.target:g} on the validation split; the closest is used "
                   f"({what} {(precision if what == 'precision' else recall)[best]:.4f})")
        else:
            candidates = np.nonzero(reached)[0]
            other = recall if spec.rule == "target_precision" else precision
            best = int(candidates[np.argmax(other[candidates])])
            why = (f"the most {'recall' if spec.rule == 'target_precision' else 'precision'} with "
                   f"{'precision' if spec.rule == 'target_precision' else 'recall'} at least {spec.target:g} on the validation split")
    return OperatingPoint(float(thresholds[best]), spec.rule, float(precision[best]), float(recall[best]), rows, why)


# What each rule promises, so what its gate holds the candidate to (the first is the rule's own objective). max_f1 and
# min_cost are judged on the measure they optimize: a threshold chosen on a small validation split moves between
# retrains, trading precision for recall along the same curve, and that trade is not a worse model. A target rule
# promises both its target and the most of the other.
GATED = {
    "max_f1": ("f1",), "min_cost": ("cost",), "target_precision": ("recall", "precision"), "target_recall": ("precision", "recall"),
    "fixed": ("precision", "recall"),
}
MEASURES = ("precision", "recall", "f1", "cost")


def compare(candidate: tuple, champion: tuple, *, costs: tuple[float, float] = (1.0, 1.0), rounds: int, confidence: float,
            seed: int = 0, chunk: int | None = None, max_rows: int | None = None) -> dict:
    """The candidate's decisions at its threshold against the champion's at its own, on the same resampled rows
    (Poisson bootstrap): precision, recall, F1 and the cost per row (`costs`: per false alarm, per miss). For each, both
    values, how much better the candidate is (for cost: the share of the champion's cost it saves) and that
    difference's one-sided lower bound and standard deviation. `candidate` and `champion` are (labels, scores, threshold).
    Above `max_rows` rows the resampling runs on a random subsample, its spread rescaled to all rows (stats.resampling_plan)."""
    y, p_new, t_new = candidate
    _, p_old, t_old = champion
    y = np.asarray(y, dtype=float) == 1
    new, old = np.asarray(p_new, dtype=float) >= t_new, np.asarray(p_old, dtype=float) >= t_old
    columns = np.vstack([y & new, new, y & old, old, y]).T.astype(float)  # per model: true positives, decided positive; positives
    fp_cost, fn_cost = costs

    def measure(weights: np.ndarray, columns: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        tp_new, pos_new, tp_old, pos_old, positives = (weights @ columns).T
        total = weights.sum(axis=1)
        out = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            out["precision"] = (tp_new / pos_new, tp_old / pos_old)
            out["recall"] = (tp_new / positives, tp_old / positives)
            out["f1"] = (2 * tp_new / (pos_new + positives), 2 * tp_old / (pos_old + positives))
            cost_new = (fp_cost * (pos_new - tp_new) + fn_cost * (positives - tp_new)) / total
            cost_old = (fp_cost * (pos_old - tp_old) + fn_cost * (positives - tp_old)) / total
            out["cost"] = (cost_new, cost_old)
            return {name: (mine, theirs, (theirs - mine) / theirs if name == "cost" else mine - theirs) for name, (mine, theirs) in out.items()}

    point = measure(np.ones((1, len(y))), columns)
    rows, plan = resampling_plan(len(y), {"all": np.arange(len(y))}, y, max_rows, seed)
    factor = plan["all"][1]
    if factor != 1.0:
        columns = columns[rows]
    on_subsample = measure(np.ones((1, len(rows))), columns) if factor != 1.0 else point
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in point}
    chunk = chunk or rounds_per_chunk(len(rows), rounds)
    for start in range(0, rounds, chunk):
        for name, (_, _, delta) in measure(poisson_counts(rng, (min(chunk, rounds - start), len(rows))).astype(float), columns).items():
            draws[name].append(delta)
    out = {"candidate_threshold": float(t_new), "champion_threshold": float(t_old), "rows": int(len(y)), "positives": int(y.sum()),
           "resampled_rows": len(rows)}
    for name, (mine, theirs, delta) in point.items():
        resampled = rescaled(np.concatenate(draws[name]), on_subsample[name][2][0], delta[0], factor)
        finite = resampled[np.isfinite(resampled)]
        enough = len(finite) >= rounds // 2
        out[name] = {
            "candidate": float(mine[0]), "champion": float(theirs[0]), "delta": float(delta[0]),
            "lower": float(np.quantile(finite, 1 - confidence)) if enough else math.nan,
            "sd": float(np.std(finite)) if enough else math.nan,
        }
    return out
