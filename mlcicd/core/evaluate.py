"""Evaluation evidence for one model on the holdout: metrics, slices, calibration, latency, size,
and the paired bootstrap that compares a candidate with the champion on the same rows."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from mlcicd.core.metrics import binary_metrics
from mlcicd.core.train import predict


def expected_calibration_error(y_true, y_prob, bins: int = 10) -> float:
    """Mean |predicted - observed| over equal-frequency bins, weighted by bin size."""
    y_true, y_prob = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    if len(y_true) == 0:
        return math.nan
    order = np.argsort(y_prob, kind="stable")
    error = 0.0
    for part in np.array_split(order, min(bins, len(order))):
        error += len(part) * abs(y_prob[part].mean() - y_true[part].mean())
    return float(error / len(y_true))


def slice_metrics(frame: pd.DataFrame, y_true, y_prob, columns: list[str], metric: str, min_rows: int) -> dict[str, dict]:
    """Per value of each slice column: rows, positives and the metric (None when not judged, with why)."""
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    out: dict[str, dict] = {}
    for column in columns:
        values = frame[column].astype("string").fillna("<missing>").to_numpy()
        out[column] = {}
        for value in sorted(set(values)):
            mask = values == value
            rows, positives = int(mask.sum()), int(y_true[mask].sum())
            entry = {"rows": rows, "positives": positives, metric: None, "judged": False}
            if rows < min_rows:
                entry["why_not"] = f"only {rows} rows (< {min_rows})"
            elif positives in (0, rows):
                entry["why_not"] = "one class only"
            else:
                entry[metric] = binary_metrics(y_true[mask], y_prob[mask])[metric]
                entry["judged"] = True
            out[column][value] = entry
    return out


def measure_latency(booster, features, frame: pd.DataFrame, repeats: int = 30) -> dict[str, float]:
    """p95 wall time (ms) to score 1 row and 1,000 rows through the shared scoring path."""

    def p95(rows: pd.DataFrame) -> float:
        predict(booster, features, rows)  # warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict(booster, features, rows)
            times.append((time.perf_counter() - start) * 1000)
        return float(np.percentile(times, 95))

    batch = frame.iloc[np.resize(np.arange(len(frame)), 1000)]
    return {"one_row_p95_ms": p95(frame.iloc[:1]), "batch_1000_p95_ms": p95(batch)}


def model_evidence(
    booster, features, holdout: pd.DataFrame, target: str, slice_columns: list[str], metric: str, slice_min_rows: int,
    with_latency: bool = True,
) -> tuple[dict, np.ndarray]:
    """Everything the model gates judge, and the holdout probabilities (for the paired comparison)."""
    y_prob = predict(booster, features, holdout)
    y_true = holdout[target].to_numpy()
    evidence = {
        "metrics": binary_metrics(y_true, y_prob),
        "slices": slice_metrics(holdout, y_true, y_prob, slice_columns, metric, slice_min_rows),
        "calibration_error": expected_calibration_error(y_true, y_prob),
        "latency": measure_latency(booster, features, holdout) if with_latency else None,
        "size_bytes": len(booster.model_to_string().encode()),
    }
    return evidence, y_prob


def _grouped_sums(scores: np.ndarray, weights: np.ndarray, labels: np.ndarray):
    """Per distinct score (ascending), the weighted positives and negatives of each bootstrap round."""
    unique, inverse = np.unique(scores, return_inverse=True)
    rounds, groups = weights.shape[0], len(unique)
    index = (np.arange(rounds)[:, None] * groups + inverse[None, :]).ravel()
    pos = np.bincount(index, weights=(weights * labels).ravel(), minlength=rounds * groups).reshape(rounds, groups)
    neg = np.bincount(index, weights=(weights * (1 - labels)).ravel(), minlength=rounds * groups).reshape(rounds, groups)
    return pos, neg


def weighted_metric(metric: str, scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC or average precision for each row of `weights` (ties handled as scikit-learn does)."""
    pos, neg = _grouped_sums(scores, weights, labels)
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "roc_auc":
            below = np.cumsum(neg, axis=1) - neg
            return (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
        if metric == "pr_auc":  # thresholds from the highest score down
            pos_desc, all_desc = pos[:, ::-1], (pos + neg)[:, ::-1]
            precision = np.cumsum(pos_desc, axis=1) / np.cumsum(all_desc, axis=1)
            return np.nansum(pos_desc * precision, axis=1) / total_pos
    raise ValueError(f"no bootstrap for metric {metric!r}")


def paired_bootstrap(
    metric: str, labels, candidate, champion, *, rounds: int, confidence: float, seed: int = 0, chunk: int = 25
) -> dict[str, float]:
    """(candidate - champion) on the same resampled rows: the point estimate and a one-sided lower bound.

    Poisson(1) weights per row and round (the usual large-sample bootstrap), in chunks to bound memory.
    """
    labels = np.asarray(labels, dtype=float)
    candidate, champion = np.asarray(candidate, dtype=float), np.asarray(champion, dtype=float)
    ones = np.ones((1, len(labels)))
    point = float(weighted_metric(metric, candidate, labels, ones)[0] - weighted_metric(metric, champion, labels, ones)[0])
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, rounds, chunk):
        weights = rng.poisson(1.0, size=(min(chunk, rounds - start), len(labels))).astype(float)
        deltas.append(weighted_metric(metric, candidate, labels, weights) - weighted_metric(metric, champion, labels, weights))
    deltas = np.concatenate(deltas)
    deltas = deltas[np.isfinite(deltas)]
    if len(deltas) < rounds // 2:
        return {"delta": point, "lower": math.nan, "upper": math.nan, "rounds": int(len(deltas))}
    return {
        "delta": point,
        "lower": float(np.quantile(deltas, 1 - confidence)),
        "upper": float(np.quantile(deltas, confidence)),
        "rounds": int(len(deltas)),
    }
