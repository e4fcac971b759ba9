"""Negative flips (backward compatibility, Bansal et al., AAAI 2019): on the same holdout rows, the share the champion
got right and the candidate gets wrong, each model at its own operating point (regression: rows whose absolute error
grows by more than a tolerance). Overall and per slice, each with a one-sided test of "more than the allowed rate"."""

from __future__ import annotations

import math

import numpy as np

from mlcicd.core.stats import normal_cdf, z_for


def rate_summary(flipped: np.ndarray, limit: float, confidence: float) -> dict:
    """The flip rate of a set of rows, its one-sided lower confidence bound (Wilson) and the p-value of the test
    "the rate is above `limit`" (small: it is, beyond noise)."""
    n, flips = len(flipped), int(np.sum(flipped))
    if n == 0:
        return {"rows": 0, "flips": 0, "rate": math.nan, "lower": math.nan, "p_above": 1.0}
    rate, z = flips / n, z_for(confidence)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    null_sd = math.sqrt(limit * (1 - limit) / n) if 0 < limit < 1 else 0.0
    p_above = 1 - normal_cdf((rate - limit) / null_sd) if null_sd else (0.0 if rate > limit else 1.0)
    return {"rows": n, "flips": flips, "rate": rate, "lower": max(0.0, centre - half), "p_above": p_above}


def negative_flips(task, labels, candidate, champion, thresholds: tuple[float, float], *, tolerance: float, limit: float,
                   confidence: float, slices: dict[str, np.ndarray] | None = None) -> dict:
    """Which rows flipped, summarized overall and for each slice mask (`task`: the Task object)."""
    y = np.asarray(labels, dtype=float)
    known = y >= 0 if task.is_classifier else np.isfinite(y)  # a class the model never saw cannot be got right by either
    flipped = task.negative_flips(y, np.asarray(candidate, dtype=float), np.asarray(champion, dtype=float), thresholds, tolerance) & known
    out = {**rate_summary(flipped[known], limit, confidence), "thresholds": list(thresholds), "tolerance": tolerance}
    if thresholds[0] != thresholds[1]:  # how many would flip with both at the champion's threshold: the rest is the threshold moving
        same = task.negative_flips(y, np.asarray(candidate, dtype=float), np.asarray(champion, dtype=float), (thresholds[1], thresholds[1]), tolerance)
        out["at_champion_threshold"] = int(np.sum(same & known))
    out["slices"] = {name: rate_summary(flipped[mask & known], limit, confidence) for name, mask in (slices or {}).items()}
    return out
