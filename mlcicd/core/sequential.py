"""Anytime-valid comparisons of live traffic: confidence sequences that may be looked at after every request.

A fixed-horizon test looked at again and again raises false alarms far above its level; a confidence sequence holds at
every moment at once, so the canary can be watched continuously and stopped as soon as it is clearly fine (promote)
or clearly worse (roll back). The boundary is the normal-mixture one (Robbins; the asymptotic confidence sequences of
Waudby-Smith et al. 2023, the mixture SPRT of Lindon et al., KDD 2022): for the running mean of t observations with
standard deviation s, half-width s * sqrt(2 (t r^2 + 1) / (t^2 r^2) * log(sqrt(t r^2 + 1) / alpha)), where r sets the
number of observations at which it is tightest. Two streams (canary, champion) are compared by a sequence for each at
alpha / 2 (a union bound), so the difference's interval holds with 1 - alpha at every moment.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

MIN_OBSERVATIONS = 10  # below this the running standard deviation means nothing: undecided


def half_width(t: np.ndarray, sd: np.ndarray, alpha: float, tight_at: int) -> np.ndarray:
    """The two-sided boundary of the running mean of t observations (valid at every t at once)."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tight_at
    t = np.asarray(t, dtype=float)
    return sd * np.sqrt(2 * (t * rho2 + 1) / (t * t * rho2) * np.log(np.sqrt(t * rho2 + 1) / alpha))


def running(values, alpha: float, tight_at: int, bernoulli: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) after each observation. `bernoulli`: values in [0, 1] whose spread is floored by a smoothed
    rate ((k + 0.5) / (t + 1)), so a run of zeros is not read as certainty."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return np.array([]), np.array([]), np.array([])
    t = np.arange(1, len(x) + 1, dtype=float)
    mean = np.cumsum(x) / t
    variance = np.maximum(np.cumsum(x * x) / t - mean * mean, 0.0)
    if bernoulli:
        smoothed = (np.cumsum(x) + 0.5) / (t + 1)
        variance = np.maximum(variance, smoothed * (1 - smoothed))
    width = half_width(t, np.sqrt(variance), alpha, tight_at)
    width[t < MIN_OBSERVATIONS] = np.inf
    return mean, mean - width, mean + width


@dataclass(frozen=True)
class Comparison:
    measure: str
    state: str  # within | worse | undecided
    estimate: float  # first - second (or the one stream's mean)
    low: float
    high: float
    limit: float
    observations: tuple[int, int]

    def to_dict(self) -> dict:
        return asdict(self)


def compare(measure: str, first, second, limit: float, *, alpha: float, tight_at: int, bernoulli: bool = False) -> Comparison:
    """Is mean(first) - mean(second) at most `limit`? (`second` None: is mean(first) at most `limit`?) within: proven at
    most (the whole interval is); worse: proven above it; undecided: keep watching."""
    share = alpha / 2 if second is not None else alpha
    mean_a, low_a, high_a = running(first, share, tight_at, bernoulli)
    if second is not None:
        mean_b, low_b, high_b = running(second, share, tight_at, bernoulli)
    n = (len(mean_a), len(mean_b) if second is not None else 0)
    if n[0] == 0 or (second is not None and n[1] == 0):
        return Comparison(measure, "undecided", math.nan, -math.inf, math.inf, limit, n)
    if second is None:
        estimate, low, high = float(mean_a[-1]), float(low_a[-1]), float(high_a[-1])
    else:
        estimate, low, high = float(mean_a[-1] - mean_b[-1]), float(low_a[-1] - high_b[-1]), float(high_a[-1] - low_b[-1])
    state = "worse" if low > limit else "within" if high <= limit else "undecided"
    return Comparison(measure, state, estimate, low, high, limit, n)


def trajectory(first_times, first, second_times, second, limit: float, *, alpha: float, tight_at: int, bernoulli: bool = False,
               points: int = 40) -> list[dict]:
    """The interval of mean(first) - mean(second) as the requests came in (at up to `points` moments, by the first
    stream's count), for the report's plot: what a person watching the canary saw, and when it became decided."""
    order = np.argsort(np.asarray(first_times))
    first = np.asarray(first, dtype=float)[order]
    first_times = np.asarray(first_times)[order]
    if second is not None:
        second_order = np.argsort(np.asarray(second_times))
        second, second_times = np.asarray(second, dtype=float)[second_order], np.asarray(second_times)[second_order]
    out = []
    for count in sorted({int(c) for c in np.linspace(MIN_OBSERVATIONS, len(first), min(points, max(1, len(first))))} - {0}):
        if count > len(first):
            continue
        seen = None if second is None else second[second_times <= first_times[count - 1]]
        result = compare("", first[:count], seen, limit, alpha=alpha, tight_at=tight_at, bernoulli=bernoulli)
        out.append({"requests": count, "estimate": result.estimate, "low": result.low, "high": result.high, "state": result.state})
    return out
