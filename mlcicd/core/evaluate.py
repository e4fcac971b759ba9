"""Evaluation evidence for one model on the holdout: metrics, slices, calibration, latency, size,
and the paired bootstrap that compares a candidate with the champion on the same rows."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from mlcicd.core.features import FeatureState, encode_target
from mlcicd.core.metrics import better_by, calibration_error, task_metrics, weighted_metric
from mlcicd.core.train import predict


def slice_metrics(frame: pd.DataFrame, labels, predictions, columns: list[str], metric: str, min_rows: int) -> dict[str, dict]:
    """Per value of each slice column: rows and the metric (None when not judged, with why)."""
    labels, predictions = np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float)
    out: dict[str, dict] = {}
    for column in columns:
        values = frame[column].astype("string").fillna("<missing>").to_numpy()
        out[column] = {}
        for value in sorted(set(values)):
            mask = values == value
            rows = int(mask.sum())
            entry = {"rows": rows, metric: None, "judged": False}
            if rows < min_rows:
                entry["why_not"] = f"only {rows} rows (< {min_rows})"
            else:
                score = float(weighted_metric(metric, labels[mask], predictions[mask], np.ones((1, rows)))[0])
                if math.isfinite(score):
                    entry[metric], entry["judged"] = score, True
                else:
                    entry["why_not"] = f"{metric} is undefined on these rows (for example a single class)"
            out[column][value] = entry
    return out


def measure_latency(booster, features, frame: pd.DataFrame, repeats: int) -> dict[str, float]:
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
    booster, features: FeatureState, holdout: pd.DataFrame, target: str, slice_columns: list[str], metric: str, slice_min_rows: int,
    latency_repeats: int | None,
) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """Everything the model gates judge, and the (labels, predictions) pair for the paired comparison.
    `latency_repeats` (gates.latency.repeats) times the scoring path; None skips it (the champion's evidence)."""
    predictions = predict(booster, features, holdout)
    labels = encode_target(holdout[target], features)
    evidence = {
        "task": features.task,
        "metrics": task_metrics(features.task, labels, predictions),
        "slices": slice_metrics(holdout, labels, predictions, slice_columns, metric, slice_min_rows),
        "calibration_error": calibration_error(features.task, labels, predictions),
        "latency": measure_latency(booster, features, holdout, latency_repeats) if latency_repeats else None,
        "size_bytes": len(booster.model_to_string().encode()),
    }
    return evidence, (labels, predictions)


def paired_bootstrap(
    metric: str, candidate: tuple, champion: tuple, *, rounds: int, confidence: float, seed: int = 0, chunk: int = 25
) -> dict[str, float]:
    """How much better the candidate is than the champion (positive = better) on the same resampled rows:
    the point estimate and a one-sided lower bound. `candidate` and `champion` are (labels, predictions).

    Poisson(1) weights per row and round (the usual large-sample bootstrap), in chunks to bound memory.
    """
    (y_new, p_new), (y_old, p_old) = candidate, champion
    ones = np.ones((1, len(y_new)))

    def gain(weights):
        return better_by(metric, weighted_metric(metric, y_new, p_new, weights), weighted_metric(metric, y_old, p_old, weights))

    point = float(gain(ones)[0])
    rng = np.random.default_rng(seed)
    deltas = np.concatenate(
        [gain(rng.poisson(1.0, size=(min(chunk, rounds - start), len(y_new))).astype(float)) for start in range(0, rounds, chunk)]
    )
    deltas = deltas[np.isfinite(deltas)]
    if len(deltas) < rounds // 2:
        return {"delta": point, "lower": math.nan, "upper": math.nan, "rounds": int(len(deltas))}
    return {
        "delta": point,
        "lower": float(np.quantile(deltas, 1 - confidence)),
        "upper": float(np.quantile(deltas, confidence)),
        "rounds": int(len(deltas)),
    }
