"""Batch scoring with the champion and, in shadow, the challenger: how often would they decide differently?"""

from __future__ import annotations

import numpy as np


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected`, on `expected`'s quantile bins."""
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def shadow_comparison(champion: np.ndarray, challenger: np.ndarray, threshold: float) -> dict[str, float]:
    """Disagreement of decisions and the shift between the two prediction distributions on the same rows."""
    champion, challenger = np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)
    return {
        "rows": float(len(champion)),
        "disagreement_rate": float(np.mean((champion >= threshold) != (challenger >= threshold))) if len(champion) else 0.0,
        "mean_abs_difference": float(np.mean(np.abs(champion - challenger))) if len(champion) else 0.0,
        "psi": psi(champion, challenger),
        "champion_positive_rate": float(np.mean(champion >= threshold)) if len(champion) else 0.0,
        "challenger_positive_rate": float(np.mean(challenger >= threshold)) if len(champion) else 0.0,
    }
