"""Issue 20 point 5: the small fixed-seed version of benchmarks/error_rates.py. Where the truth is known (the simulator's
fraud mechanism, and models whose quality is set by their noise), the gates' wrong decisions stay within bounds: a
candidate worse than the tolerance is rarely promoted, an equal one is rarely refused by the gates that promise not to,
a broken slice is caught, and the canary's sequential test neither cries wolf under peeking nor misses a real rise."""

import pytest

from .error_rates import CASES, study

PAIRS = 12


@pytest.mark.slow
def test_the_gates_wrong_decisions_stay_within_bounds_where_the_truth_is_known():
    chosen = [case for case in CASES if case.name in ("equal", "slightly_worse", "one_slice_worse")]
    result = study(PAIRS, seed=3, cases=chosen, rounds=100)
    refused = {(row["case"], row["gate"]): row["false_refusals"] for row in result["cases"]}  # good pairs refused
    promoted = {(row["case"], row["gate"]): row["false_promotions"] for row in result["cases"]}  # bad pairs promoted
    truth = {(row["case"], row["gate"]): row for row in result["cases"]}
    assert truth[("slightly_worse", "no_regression")]["true_auc_change"] < -result["tolerance"], "the case is what it says"
    assert truth[("one_slice_worse", "no_slice_regression")]["true_slice_change"] < -result["slice_tolerance"]
    # nominal 5%: of 12 pairs, more than 2 wrong would be very unlikely (binomial tail < 2%)
    assert promoted[("slightly_worse", "no_regression")] <= 2, "a candidate worse than the tolerance was promoted"
    for gate in ("no_slice_regression", "operating_point", "negative_flips"):
        assert refused[("equal", gate)] <= 2, f"{gate} refused a good candidate {refused[('equal', gate)]} times of {PAIRS}"
    assert promoted[("one_slice_worse", "no_slice_regression")] <= 3, "a broken slice went unnoticed"
    canary = result["canary"]
    assert canary["alike_rolled_back"] * PAIRS <= 1, "peeking at an A/A canary raised false alarms"
    assert canary["worse_rolled_back"] * PAIRS >= PAIRS - 1, "a canary with three times the errors was not stopped"
