"""Small statistics the gates share: normal tail probabilities and corrections for judging many slices at once."""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP_CELLS = 2_000_000  # bootstrap weights held at once (16 MB as floats; the metrics make a few copies)


def rounds_per_chunk(rows: int, rounds: int) -> int:
    """How many bootstrap rounds to draw at once, so that a chunk of Poisson weights holds about BOOTSTRAP_CELLS values
    and memory stays flat as the holdout grows. The draws come from one generator in order, so the chunking changes
    no draw."""
    return max(1, min(rounds, BOOTSTRAP_CELLS // max(1, rows)))


# rows of the rarest class a subsampled bootstrap keeps: its spread is then within about 3%, below the 5% of 200 rounds
RESAMPLE_MIN_CLASS_ROWS = 500


def resampling_plan(n: int, parts: dict[str, np.ndarray], classes: np.ndarray | None, max_rows: int | None, seed: int) -> tuple[np.ndarray, dict]:
    """Which of `n` rows a bootstrap resamples, for parts of them (name -> row positions; they may overlap, as the overall
    rows and the slices do). Returns the rows to draw weights for and, per part, (their positions among those rows,
    the factor that rescales the part's spread to all its rows).

    A part of up to `max_rows` rows is resampled whole, factor 1; when no part is larger, every row is drawn once and
    the parts share the very same resamples. A larger part of n rows is resampled on a uniform random subsample of m:
    the caller multiplies each resampled value's deviation from the value on the subsample by sqrt(m/n) (rescaled).
    This is the m-out-of-n bootstrap: for a metric whose error shrinks as 1/sqrt(n), as every metric here does, the
    spread on m rows times sqrt(m/n) is the spread on n rows, so the cost no longer grows with the holdout. m is
    `max_rows`, raised until the rarest class in `classes` (None for regression) keeps RESAMPLE_MIN_CLASS_ROWS rows.
    The subsamples are coordinated (each part takes its rows of lowest random priority), so they overlap as much as they
    can and the rows to draw for stay few."""
    if max_rows is None or all(len(rows) <= max_rows for rows in parts.values()):
        return np.arange(n), {name: (rows, 1.0) for name, rows in parts.items()}
    priority = np.random.default_rng([seed, 1]).random(n)
    chosen = {}
    for name, rows in parts.items():
        m = max_rows
        if classes is not None and len(rows) > max_rows:
            rarest = int(np.unique(classes[rows], return_counts=True)[1].min())
            m = max(m, math.ceil(RESAMPLE_MIN_CLASS_ROWS * len(rows) / rarest))
        if len(rows) <= m:
            chosen[name] = (rows, 1.0)
        else:
            chosen[name] = (np.sort(rows[np.argpartition(priority[rows], m - 1)[:m]]), math.sqrt(m / len(rows)))
    drawn = np.unique(np.concatenate([rows for rows, _ in chosen.values()]))
    return drawn, {name: (np.searchsorted(drawn, rows), factor) for name, (rows, factor) in chosen.items()}


def rescaled(draws: np.ndarray, on_subsample, on_all, factor: float) -> np.ndarray:
    """Resampled values of a metric on a subsample, moved to the value on all rows with their spread scaled by `factor`
    (resampling_plan)."""
    return draws if factor == 1.0 else on_all + (draws - on_subsample) * factor


Z_95 = 1.6448536269514722  # one-sided 95%
Z_99 = 2.3263478740408408  # one-sided 99%


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def z_for(confidence: float) -> float:
    """The one-sided standard-normal quantile for a confidence level (bisection; no scipy needed)."""
    low, high = -10.0, 10.0
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if normal_cdf(mid) < confidence else (low, mid)
    return (low + high) / 2


def worse_p_value(better_by: float, sd: float, tolerance: float) -> float:
    """One-sided p-value of "worse by more than `tolerance`" being false: small when the evidence says the difference
    `better_by` (positive = better, with standard deviation `sd`) is below -tolerance."""
    if not sd or sd <= 0 or not math.isfinite(sd):
        return 0.0 if better_by < -tolerance else 1.0
    return normal_cdf((better_by + tolerance) / sd)


def adjust(p_values: dict[str, float], method: str) -> dict[str, float]:
    """Adjusted p-values: Holm (family-wise error rate) or Benjamini-Hochberg (false discovery rate)."""
    names = sorted(p_values, key=p_values.get)
    m = len(names)
    adjusted: dict[str, float] = {}
    if method == "holm":
        running = 0.0
        for rank, name in enumerate(names):
            running = max(running, min(1.0, (m - rank) * p_values[name]))
            adjusted[name] = running
        return adjusted
    running = 1.0
    for rank in range(m - 1, -1, -1):  # benjamini_hochberg
        name = names[rank]
        running = min(running, min(1.0, p_values[name] * m / (rank + 1)))
        adjusted[name] = running
    return adjusted
