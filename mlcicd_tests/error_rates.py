"""The gates' measured error rates, where the truth is known (issue 20 point 5).

The simulator's fraud mechanism is known: every row's explainable log-odds, and the unexplained noise on top. A "model"
here is that log-odds plus noise of its own (more noise, a worse model), so its true quality is known too: measured
once on a large pool of rows. Each pair draws a fresh holdout (rows and labels), a fresh validation split (where each
model's threshold is chosen) and fresh model noise, then runs every gate's pure judge exactly as the pipeline does
(core/evaluate.py, core/gates.py, core/sequential.py). The rate of each decision is compared with what the truth says
it should be.

Used by benchmarks/error_rates.py (200+ pairs per case, the README's table) and test_error_rates.py (a small fixed-seed
version that asserts the rates stay within bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ROWS = 20_000  # holdout rows per pair (about 2% positives: some 400)
VALIDATION_ROWS = 5_000
POOL_ROWS = 200_000
CHAMPION_NOISE = 0.8
TOLERANCE = 0.02  # gates.max_regression
SLICE_TOLERANCE = 0.05  # gates.max_slice_regression
BROKEN_SLICE = "east"


class _NoNoise:
    def normal(self, loc, scale, size):
        return np.zeros(size)


@dataclass
class Pool:
    """Rows of the simulator with their explainable log-odds and a label drawn from the full mechanism."""

    frame: pd.DataFrame
    logit: np.ndarray
    regions: np.ndarray


def make_pool(seed: int, rows: int = POOL_ROWS) -> Pool:
    from mlcicd.core.simulate import fraud_logit, simulate_batch

    frame = simulate_batch(900 + seed, rows)
    return Pool(frame, fraud_logit(frame, "baseline", _NoNoise()), frame["region"].to_numpy().astype(str))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@dataclass(frozen=True)
class Case:
    name: str
    truth: str  # what the right decision is, in words
    candidate_noise: float = CHAMPION_NOISE
    slice_noise: float | None = None  # extra noise of the candidate in BROKEN_SLICE
    gates: tuple[str, ...] = ("no_regression", "no_slice_regression", "operating_point", "negative_flips")
    flip_limit_factor: float = 1.5  # the negative-flip limit, as a multiple of the pair's true flip rate
    right: dict = field(default_factory=dict)  # gate -> the right verdict (True: pass)


CASES = (
    Case("equal", "as good as the champion: every gate should pass", right={g: True for g in (
        "no_regression", "no_slice_regression", "operating_point", "negative_flips")}),
    Case("slightly_worse", f"worse by more than the tolerance ({TOLERANCE}) in roc_auc: no_regression should refuse", candidate_noise=1.45,
         gates=("no_regression",), right={"no_regression": False}),
    Case("slightly_better", "better than the champion: no_regression should pass", candidate_noise=0.45, gates=("no_regression",),
         right={"no_regression": True}),
    Case("one_slice_worse", f"region={BROKEN_SLICE} worse by more than {SLICE_TOLERANCE}, the rest as good: the slice gate should refuse",
         slice_noise=3.0, gates=("no_slice_regression",), right={"no_slice_regression": False}),
    Case("more_negative_flips", "as good, but its flip rate is 1.5x the allowed: negative_flips should refuse", flip_limit_factor=1 / 1.5,
         gates=("negative_flips",), right={"negative_flips": False}),
)


def scores(pool: Pool, rows: np.ndarray, noise: float, rng, slice_noise: float | None = None) -> np.ndarray:
    z = pool.logit[rows] + rng.normal(0, noise, len(rows))
    if slice_noise is not None:
        broken = pool.regions[rows] == BROKEN_SLICE
        z[broken] += rng.normal(0, slice_noise, int(broken.sum()))
    return sigmoid(z)


def labels(pool: Pool, rows: np.ndarray, rng) -> np.ndarray:
    return (rng.random(len(rows)) < sigmoid(pool.logit[rows] + rng.normal(0, 0.6, len(rows)))).astype(float)


def true_flip_rate(pool: Pool, case: Case, seed: int) -> float:
    """The flip rate a candidate of this case has against the champion on the whole pool, each at its max-F1 threshold."""
    from mlcicd.config import OperatingPointSpec
    from mlcicd.core.operating_point import choose

    rng = np.random.default_rng(seed)
    rows = np.arange(len(pool.logit))
    y = labels(pool, rows, rng)
    new, old = scores(pool, rows, case.candidate_noise, rng, case.slice_noise), scores(pool, rows, CHAMPION_NOISE, rng)
    t_new, t_old = choose(OperatingPointSpec(), y, new).threshold, choose(OperatingPointSpec(), y, old).threshold
    return float(np.mean(((old >= t_old) == y) & ((new >= t_new) != y)))


def judge_pair(pool: Pool, case: Case, rng, flip_limit: float, rounds: int = 200, rows: int = ROWS) -> dict[str, tuple[bool, bool]]:
    """One candidate/champion pair of `case`: every gate of the case judged as the pipeline judges it, as (passed, should
    pass). Should pass: the case's truth; for negative_flips, this pair's own decision rules (each model at the threshold
    its validation split gave it) measured on the whole pool, overall and in every region."""
    from mlcicd.config import GateSpec, OperatingPointSpec
    from mlcicd.core import gates
    from mlcicd.core.evaluate import paired_bootstrap, slice_groups, slice_masks, slice_metrics
    from mlcicd.core.flips import negative_flips
    from mlcicd.core.operating_point import choose, compare
    from mlcicd.core.tasks import task_of

    spec = GateSpec(max_negative_flip_rate=flip_limit)
    holdout = rng.integers(0, len(pool.logit), rows)
    validation = rng.integers(0, len(pool.logit), VALIDATION_ROWS)
    y, y_valid = labels(pool, holdout, rng), labels(pool, validation, rng)
    new, old = scores(pool, holdout, case.candidate_noise, rng, case.slice_noise), scores(pool, holdout, CHAMPION_NOISE, rng)
    t_new = choose(OperatingPointSpec(), y_valid, scores(pool, validation, case.candidate_noise, rng, case.slice_noise)).threshold
    t_old = choose(OperatingPointSpec(), y_valid, scores(pool, validation, CHAMPION_NOISE, rng)).threshold
    frame = pd.DataFrame({"region": pool.regions[holdout]})
    groups = slice_groups(frame, ["region"])
    slices = slice_metrics(groups, y, new, "roc_auc", spec.slice_min_rows)
    masks = slice_masks(groups, slices)
    seed = int(rng.integers(1 << 31))
    out = {}
    if {"no_regression", "no_slice_regression"} & set(case.gates):
        boot = paired_bootstrap("roc_auc", (y, new), (y, old), rounds=rounds, confidence=0.95, seed=seed, slices=masks)
        if "no_regression" in case.gates:
            out["no_regression"] = gates.no_regression_gate("roc_auc", boot["candidate"], boot["champion"], champion_version="1",
                                                            tolerance=TOLERANCE, bootstrap=boot, rows=rows).passed
        if "no_slice_regression" in case.gates:
            out["no_slice_regression"] = gates.slice_gate("roc_auc", slices, boot["slices"], champion_version="1", tolerance=SLICE_TOLERANCE,
                                                          min_rows=spec.slice_min_rows).passed
    if "operating_point" in case.gates:
        comparison = {**compare((y, new, t_new), (y, old, t_old), rounds=rounds, confidence=0.95, seed=seed), "rule": "max_f1"}
        out["operating_point"] = gates.operating_point_gate(comparison, thresholded=True, champion_version="1",
                                                            tolerance=spec.max_operating_point_drop).passed
    out = {gate: (passed, case.right[gate]) for gate, passed in out.items()}
    if "negative_flips" in case.gates:
        flips = negative_flips(task_of("binary"), y, new, old, (t_new, t_old), tolerance=0, limit=flip_limit, confidence=0.95, slices=masks)
        every = np.arange(len(pool.logit))
        y_all = labels(pool, every, rng)
        flipped = (((scores(pool, every, CHAMPION_NOISE, rng) >= t_old) == y_all)
                   & ((scores(pool, every, case.candidate_noise, rng, case.slice_noise) >= t_new) != y_all))
        judged = [name.split("=", 1)[1] for name in masks]
        worst = max([float(flipped.mean())] + [float(flipped[pool.regions == region].mean()) for region in judged])
        out["negative_flips"] = (gates.negative_flips_gate(flips, champion_version="1", limit=flip_limit).passed, worst <= flip_limit)
    return out


def canary_runs(pairs: int, rng, requests: int = 3000, look_every: int = 50) -> dict:
    """The canary's sequential test, looked at after every `look_every` canary requests (as a person watching would):
    A/A (2% server errors on both) and a canary with 6%. Returns the false-alarm and detection rates and when it stopped."""
    from mlcicd.config import CanarySpec
    from mlcicd.core.sequential import compare

    settings = CanarySpec()
    outcomes = {"alike": [], "worse": []}
    for kind, rate in (("alike", 0.02), ("worse", 0.06)):
        for _ in range(pairs):
            canary, live = (rng.random(requests) < rate).astype(float), (rng.random(requests) < 0.02).astype(float)
            decision, stopped = "undecided", None
            for seen in range(look_every, requests + 1, look_every):
                result = compare("errors", canary[:seen], live[:seen], settings.max_error_rate_increase, alpha=settings.false_alarm_rate,
                                 tight_at=settings.tight_at_requests, bernoulli=True)
                if result.state == "worse":
                    decision, stopped = "rolled back", seen
                    break
            outcomes[kind].append((decision, stopped))
    alike, worse = outcomes["alike"], outcomes["worse"]
    stops = [s for d, s in worse if d == "rolled back"]
    return {
        "pairs": pairs, "requests": requests, "look_every": look_every, "false_alarm_rate": settings.false_alarm_rate,
        "alike_rolled_back": sum(d == "rolled back" for d, _ in alike) / pairs,
        "worse_rolled_back": len(stops) / pairs,
        "worse_median_requests_to_stop": float(np.median(stops)) if stops else None,
    }


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def study(pairs: int, seed: int = 0, cases=CASES, rounds: int = 200, rows: int = ROWS) -> dict:
    """Every case, `pairs` times: for each gate the share of pairs it passed, the share of wrong decisions (a refusal of
    a good candidate, or a promotion of a bad one) with a 95% interval, and the true quality behind the case."""
    from mlcicd.core.metrics import weighted_metric

    pool = make_pool(seed)
    rng = np.random.default_rng(seed)
    truth_rng = np.random.default_rng(seed + 1)
    every = np.arange(len(pool.logit))
    y = labels(pool, every, truth_rng)
    champion_auc = float(weighted_metric("roc_auc", y, scores(pool, every, CHAMPION_NOISE, truth_rng), np.ones((1, len(y))))[0])
    results = []
    for case in cases:
        candidate = scores(pool, every, case.candidate_noise, truth_rng, case.slice_noise)
        auc = float(weighted_metric("roc_auc", y, candidate, np.ones((1, len(y))))[0])
        broken = pool.regions == BROKEN_SLICE
        ones = np.ones((1, int(broken.sum())))
        champion_there = scores(pool, every[broken], CHAMPION_NOISE, truth_rng)
        slice_delta = float(weighted_metric("roc_auc", y[broken], candidate[broken], ones)[0] - weighted_metric("roc_auc", y[broken], champion_there, ones)[0])
        flip_rate = true_flip_rate(pool, case, seed + 2)
        flip_limit = flip_rate * case.flip_limit_factor
        tally = {gate: {"passed": 0, "good": 0, "bad": 0, "false_refusals": 0, "false_promotions": 0} for gate in case.gates}
        for _ in range(pairs):
            for gate, (passed, should) in judge_pair(pool, case, rng, flip_limit, rounds, rows).items():
                counts = tally[gate]
                counts["passed"] += passed
                counts["good" if should else "bad"] += 1
                counts["false_refusals"] += should and not passed
                counts["false_promotions"] += passed and not should
        for gate, counts in tally.items():
            row = {"case": case.name, "truth": case.truth, "gate": gate, "pairs": pairs, "passed": counts["passed"] / pairs,
                   "true_auc_change": auc - champion_auc, "true_slice_change": slice_delta, "true_flip_rate": flip_rate, "flip_limit": flip_limit,
                   **counts}
            for kind, among in (("false_refusals", "good"), ("false_promotions", "bad")):
                row[f"{kind}_rate"] = counts[kind] / counts[among] if counts[among] else None
                row[f"{kind}_95"] = list(wilson(counts[kind], counts[among])) if counts[among] else None
            results.append(row)
    return {"cases": results, "canary": canary_runs(pairs, rng), "holdout_rows": rows, "bootstrap_rounds": rounds, "tolerance": TOLERANCE,
            "slice_tolerance": SLICE_TOLERANCE, "champion_auc": champion_auc}
