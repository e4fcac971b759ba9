"""The drift gate's statistics, per column, with numpy and scipy on whole arrays: no Evidently on the gate's path.

Each column gets the test Evidently's DataDriftPreset would choose by default, with Evidently's thresholds and
comparisons, so the two agree column by column (mlcicd_tests/test_drift_stats.py checks it on the simulator's
scenarios); Evidently's HTML page is built apart, after the gate (pipeline/monitoring).

| reference rows | numeric, > 5 distinct values | numeric, at most 5 | categorical |
|---|---|---|---|
| more than 1,000 | Wasserstein distance / std of the reference, drifted at >= 0.1 | Jensen-Shannon distance >= 0.1 | Jensen-Shannon >= 0.1 |
| 1,000 or fewer | Kolmogorov-Smirnov p <= 0.05 | chi-squared p < 0.05 (z-test of proportions p < 0.05 for two values) | the same |

Jensen-Shannon uses 30 Sturges-binned buckets for numbers with more than 20 distinct reference values, else one
bucket per value. Missing and infinite values are left out first, as Evidently does. The population stability index
(PSI, on ten reference-quantile buckets) is reported beside each column's verdict, for people used to reading it;
it decides nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SMALL = 1000  # Evidently's switch from tests to distances, on the reference's rows
DISTANCE_THRESHOLD = 0.1
P_VALUE_THRESHOLD = 0.05
METHODS = {  # the names Evidently gives them in its report
    "wasserstein": "Wasserstein distance (normed)",
    "jensenshannon": "Jensen-Shannon distance",
    "ks": "K-S p_value",
    "chisquare": "chi-square p_value",
    "z": "Z-test p_value",
}


def _finite(values: pd.Series, numeric: bool) -> pd.Series:
    if numeric:
        values = pd.to_numeric(values, errors="coerce").astype("float64")
        return values[np.isfinite(values.to_numpy())]
    return values.dropna()


def _counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each side's row count per value, over the values either side has."""
    keys = pd.unique(pd.concat([reference, current], ignore_index=True))
    return tuple(side.value_counts().reindex(keys, fill_value=0).to_numpy() for side in (reference, current))


def _shares(reference: pd.Series, current: pd.Series, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each side's share of rows per bucket, as Evidently's get_binned_data without filling zeros."""
    if numeric and reference.nunique() > 20:
        edges = np.histogram_bin_edges(np.concatenate([reference.to_numpy(), current.to_numpy()]), bins="sturges")
        return np.histogram(reference, edges)[0] / len(reference), np.histogram(current, edges)[0] / len(current)
    ref, cur = _counts(reference, current)
    return ref / len(reference), cur / len(current)


def _jensen_shannon(reference: pd.Series, current: pd.Series, numeric: bool) -> float:
    from scipy.spatial import distance

    return float(distance.jensenshannon(*_shares(reference, current, numeric)))


def _wasserstein(reference: pd.Series, current: pd.Series) -> float:
    from scipy import stats

    return float(stats.wasserstein_distance(reference, current) / max(float(np.std(reference)), 0.001))


def _ks(reference: pd.Series, current: pd.Series) -> float:
    from scipy import stats

    return float(stats.ks_2samp(reference, current)[1])


def _chi_square(reference: pd.Series, current: pd.Series) -> float:
    from scipy import stats

    ref, observed = _counts(reference, current)
    return float(stats.chisquare(observed, ref / len(reference) * len(current))[1])


def _z_test(reference: pd.Series, current: pd.Series) -> float:
    from scipy.stats import norm

    keys = sorted(set(reference.unique()) | set(current.unique()))
    if len(keys) < 2:
        return 1.0
    first = keys[0]  # the share of rows with the smallest value, on each side
    n1, n2 = len(reference), len(current)
    p1, p2 = float((reference == first).mean()), float((current == first).mean())
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0 if p1 == p2 else 0.0
    return float(2 * (1 - norm.cdf(abs((p1 - p2) / spread))))


def psi(reference: pd.Series, current: pd.Series, numeric: bool, buckets: int = 10) -> float:
    """Population stability index: sum of (current share - reference share) * ln(current / reference) over buckets
    (numbers: reference deciles; categories: one bucket each), an empty bucket counted as 0.0001 of its side."""
    if numeric and reference.nunique() > buckets:
        edges = np.unique(np.quantile(reference.to_numpy(), np.linspace(0, 1, buckets + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        ref = np.histogram(reference, edges)[0] / len(reference)
        cur = np.histogram(current, edges)[0] / len(current)
    else:
        ref, cur = _shares(reference, current, numeric=False)
    ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def column_drift(reference: pd.Series, current: pd.Series, numeric: bool) -> dict:
    """One column's verdict: {"method", "threshold", "value", "drifted", "psi"}; the test as Evidently's default."""
    reference, current = _finite(reference, numeric), _finite(current, numeric)
    if reference.empty or current.empty:
        side = "reference" if reference.empty else "current sample"
        return {"method": "no values", "threshold": 0.0, "value": float("nan"), "drifted": True, "psi": float("nan"),
                "why": f"the {side} has no values in this column, so its drift cannot be measured"}
    distinct = pd.concat([reference, current], ignore_index=True).nunique()
    if len(reference) > SMALL:
        if numeric and distinct > 5:
            key, value = "wasserstein", _wasserstein(reference, current)
        else:
            key, value = "jensenshannon", _jensen_shannon(reference, current, numeric)
        drifted, threshold = value >= DISTANCE_THRESHOLD, DISTANCE_THRESHOLD
    else:
        if numeric and distinct > 5:
            key, value = "ks", _ks(reference, current)
            drifted = value <= P_VALUE_THRESHOLD
        elif distinct > 2:
            key, value = "chisquare", _chi_square(reference, current)
            drifted = value < P_VALUE_THRESHOLD
        else:
            key, value = "z", _z_test(reference, current)
            drifted = value < P_VALUE_THRESHOLD
        threshold = P_VALUE_THRESHOLD
    entry = {"method": METHODS[key], "threshold": threshold, "value": value, "drifted": bool(drifted), "psi": psi(reference, current, numeric)}
    if not np.isfinite(value):  # fails closed (Evidently would read a NaN as no drift)
        entry.update(drifted=True, why=f"the {METHODS[key]} gave no number on these values, so the column is counted as drifted")
    return entry


def sample(frame: pd.DataFrame, columns: list[str], numeric: list[str], rows: int, seed: int) -> pd.DataFrame:
    """The rows the drift gate and Evidently's page both measure: at most `rows`, drawn with `seed`; numbers as
    float64 (a nullable Int64 column, a whole number that may be missing, is not one Evidently can measure)."""
    return frame[columns].sample(n=min(rows, len(frame)), random_state=seed).astype({c: "float64" for c in numeric})


def columns_drift(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, dict]:
    return {c: column_drift(reference[c], current[c], numeric=c in numeric) for c in numeric + categorical}
