"""Small statistics the gates share: normal tail probabilities and corrections for judging many slices at once."""

from __future__ import annotations

import math

BOOTSTRAP_CELLS = 2_000_000  # bootstrap weights held at once (16 MB as floats; the metrics make a few copies)


def rounds_per_chunk(rows: int, rounds: int) -> int:
    """How many bootstrap rounds to draw at once, so that a chunk of Poisson weights holds about BOOTSTRAP_CELLS values
    and memory stays flat as the holdout grows. The draws come from one generator in order, so the chunking changes
    no draw."""
    return max(1, min(rounds, BOOTSTRAP_CELLS // max(1, rows)))


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
