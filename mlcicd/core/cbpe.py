"""Performance before labels arrive: confidence-based performance estimation (CBPE, as in NannyML) for binary models.

A calibrated model's probability p is the chance that the row is positive, so the confusion matrix it will turn out to
have is expected from the scores alone: at each threshold, expected true positives sum(p), false positives sum(1 - p).
ROC AUC and average precision follow from the expected curve; precision, recall and F1 from the expected counts at the
model's threshold. The spread comes from the same assumption: labels drawn from the probabilities (Monte Carlo), the
metric computed on each draw. The estimate is only as good as the calibration (the calibration gate checks it at
training time), and under concept drift (p(y|x) changes) it cannot see the change: when the labels arrive, the realized
metric is recorded next to the estimate, so its error is on record.

Not the `nannyml` package: its 0.13.1 would downgrade LightGBM 4.7 to 4.5 and bring xgboost, cloud filesystems and a
telemetry client into the environment.
"""

from __future__ import annotations

import math

import numpy as np

ESTIMATED = ("roc_auc", "pr_auc", "f1", "precision", "recall")


def expected_metric(metric: str, probabilities, threshold: float = 0.5) -> float:
    """The metric a calibrated binary model is expected to show on these rows, from its probabilities alone."""
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    if len(p) == 0 or p.sum() == 0 or (1 - p).sum() == 0:
        return math.nan
    if metric in ("roc_auc", "pr_auc"):
        from mlcicd.core.operating_point import curve

        _, tp, fp, _ = curve(p, p)  # the ROC/PR curve with each row counting p as a positive and 1 - p as a negative
        positives, negatives = tp[-1], fp[-1]
        tpr, fpr = np.r_[0.0, tp / positives], np.r_[0.0, fp / negatives]
        if metric == "roc_auc":
            return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        return float(np.sum(np.diff(tpr) * (tp / (tp + fp))))
    decided = p >= threshold
    tp, fp, fn = float(p[decided].sum()), float((1 - p[decided]).sum()), float(p[~decided].sum())
    if metric == "precision":
        return tp / (tp + fp) if tp + fp else math.nan
    if metric == "recall":
        return tp / (tp + fn) if tp + fn else math.nan
    if metric == "f1":
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    raise ValueError(f"CBPE estimates {', '.join(ESTIMATED)}; not {metric!r}")


def estimate(metric: str, probabilities, threshold: float = 0.5, *, draws: int = 200, seed: int = 0, confidence: float = 0.95,
             sample_rows: int = 5_000) -> dict:
    """The expected metric and the two-sided range it would fall in if the labels followed the probabilities. The range is
    simulated on at most `sample_rows` rows and narrowed to the full row count (spread shrinks with the square root)."""
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    value = expected_metric(metric, p, threshold)
    rng = np.random.default_rng(seed)
    sample = p if len(p) <= sample_rows else rng.choice(p, sample_rows, replace=False)
    simulated = np.asarray([_realized(metric, (rng.random(len(sample)) < sample).astype(float), sample, threshold) for _ in range(draws)])
    simulated = simulated[np.isfinite(simulated)]
    out = {"metric": metric, "estimate": value, "rows": int(len(p)), "confidence": confidence, "low": math.nan, "high": math.nan, "sd": math.nan}
    if len(simulated) >= draws // 2 and math.isfinite(value):
        shrink = math.sqrt(len(sample) / len(p))
        tail = (1 - confidence) / 2
        centre = float(np.mean(simulated))
        out.update({"low": value + (float(np.quantile(simulated, tail)) - centre) * shrink,
                    "high": value + (float(np.quantile(simulated, 1 - tail)) - centre) * shrink, "sd": float(np.std(simulated)) * shrink})
    return out


def _realized(metric: str, labels: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """The metric the model would show if these were the labels."""
    from mlcicd.core.metrics import weighted_metric

    if labels.sum() in (0, len(labels)):
        return math.nan
    if metric in ("precision", "recall"):
        from mlcicd.core.operating_point import rates_at

        precision, recall = rates_at(labels, p, threshold)
        return precision if metric == "precision" else recall
    return float(weighted_metric(metric, labels, p, np.ones((1, len(p))), threshold)[0])


def realized_next_to_estimates(ledger: dict, labeled: dict[str, tuple]) -> list[str]:
    """Fill in the realized metric of every estimate in `ledger` (prediction file -> entry) whose labels have arrived:
    `labeled` maps a prediction file to (labels, probabilities) of its rows that now have labels. Returns the files filled."""

    filled = []
    for source, (labels, probabilities) in labeled.items():
        entry = ledger.get(source)
        if entry is None or entry.get("realized") is not None or len(labels) == 0:
            continue
        y, p = np.asarray(labels, dtype=float), np.asarray(probabilities, dtype=float)
        value = _realized(entry["metric"], y, p, entry.get("threshold", 0.5))
        entry.update({"realized": value if math.isfinite(value) else None, "labeled_rows": int(len(y)),
                      "error": value - entry["estimate"] if math.isfinite(value) else None})
        filled.append(source)
    return filled
