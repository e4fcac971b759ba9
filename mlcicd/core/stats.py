"""Small statistics the gates share: normal tail probabilities and corrections for judging many slices at once."""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP_CELLS = 2_000_000  # bootstrap weights held at once (2 MB of counts; a ranking metric sums a part of them in 8-byte integers)


def rounds_per_chunk(rows: int, rounds: int) -> int:
    """How many bootstrap rounds to draw at once, so that a chunk of Poisson weights holds about BOOTSTRAP_CELLS values
    and memory stays flat as the holdout grows. The chunks depend only on the rows and rounds, so a seed gives the same
    draws every time."""
    return max(1, min(rounds, BOOTSTRAP_CELLS // max(1, rows)))


def _poisson_thresholds(most: int = 20) -> np.ndarray:
    """T[k]: a uniform 64-bit integer below T[k] means a Poisson(1) count of at most k (T[k] = P(K <= k) x 2**64, from
    exact fractions; K > 19 has probability 4e-19)."""
    from fractions import Fraction

    e_inverse = sum(Fraction((-1) ** j, math.factorial(j)) for j in range(40))  # 1/e to within 1e-47
    cumulative, out = Fraction(0), []
    for k in range(most):
        cumulative += e_inverse / math.factorial(k)
        out.append(min(2**64 - 1, math.ceil(cumulative * 2**64)))
    return np.array(out, dtype=np.uint64)


POISSON_THRESHOLDS = _poisson_thresholds()
_TOP = np.arange(2**16, dtype=np.uint64) << np.uint64(48)  # each value of a draw's top 16 bits, as the draw's lowest value
_LOW, _HIGH = (np.searchsorted(POISSON_THRESHOLDS, edge, side="right") for edge in (_TOP, _TOP | np.uint64(2**48 - 1)))
UNDECIDED = 255
POISSON_BY_TOP_BITS = np.where(_LOW == _HIGH, _LOW, UNDECIDED).astype(np.uint8)  # the count, where the top bits decide it


def poisson_counts(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Poisson(1) counts (uint8), the bootstrap's weights per round and row: exactly the distribution of
    rng.poisson(1.0) (to 2**-64), about 10x faster. A count is a uniform 64-bit integer inverted against
    POISSON_THRESHOLDS; its top 16 bits are drawn first and decide the count but in the 8 of 65,536 cases where a
    threshold falls among the values they start, where the other 48 bits are drawn too."""
    top = rng.integers(0, 2**16 - 1, size=shape, dtype=np.uint16, endpoint=True)
    counts = POISSON_BY_TOP_BITS[top]
    undecided = np.flatnonzero(counts == UNDECIDED)
    if len(undecided):
        rest = rng.integers(0, 2**48 - 1, size=len(undecided), dtype=np.uint64, endpoint=True)
        draws = (top.ravel()[undecided].astype(np.uint64) << np.uint64(48)) | rest
        counts.ravel()[undecided] = np.searchsorted(POISSON_THRESHOLDS, draws, side="right")
    return counts


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
            counts = np.bincount(classes[rows].astype(np.intp) + 1)  # class codes from -1 (a class the model never saw)
            rarest = int(counts[counts > 0].min())
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
