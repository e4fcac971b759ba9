"""Issue 21 point 3: evaluation on a large holdout resamples a random subsample and rescales its spread to all the rows
(stats.resampling_plan). Its confidence bounds must still mean what they say: with two equally good models, the 95%
lower bound of the difference is above zero about 5% of the time, overall and in a slice, and the spread agrees with
the bootstrap of every row."""

import numpy as np

from mlcicd.core.evaluate import paired_bootstrap
from mlcicd.core.operating_point import compare

ROWS, CAP = 20_000, 2_000  # 10% positives: the plan keeps about 5,000 rows of each part (500 of the rarest class)


def exchangeable(rng, rows=ROWS):
    """Labels and two models' scores drawn alike: their true difference in any metric is zero. Half the rows are a slice."""
    y = (rng.random(rows) < 0.1).astype(float)
    signal = 1.2 * y + rng.normal(size=rows)
    return y, signal + rng.normal(size=rows), signal + rng.normal(size=rows), rng.random(rows) < 0.5


def test_the_bounds_of_a_subsampled_bootstrap_keep_their_confidence():
    rng = np.random.default_rng(7)
    reps, above, below, slice_above = 120, 0, 0, 0
    for rep in range(reps):
        y, new, old, half = exchangeable(rng)
        out = paired_bootstrap("roc_auc", (y, new), (y, old), rounds=100, confidence=0.95, seed=rep, slices={"half": half}, max_rows=CAP)
        assert all(4_500 < part["resampled_rows"] < 5_600 for part in (out, out["slices"]["half"])), "500 rows of the rarest class"
        above += out["lower"] > 0  # "the candidate is better" when it is not
        below += out["upper"] < 0
        slice_above += out["slices"]["half"]["lower"] > 0
    # nominal 5% of 120 is 6; 1 or fewer, or 15 or more, has a binomial chance under 2%. Without the rescaling the bounds
    # are twice as wide (about 0 of 120 would cross); rescaled twice, half as wide (about 25).
    for name, count in (("lower", above), ("upper", below), ("slice lower", slice_above)):
        assert 2 <= count <= 14, f"the {name} bound crossed zero in {count} of {reps} equal pairs"


def test_a_subsampled_bootstrap_agrees_with_the_bootstrap_of_every_row():
    rng = np.random.default_rng(11)
    y, new, old, half = exchangeable(rng, rows=50_000)
    full = paired_bootstrap("pr_auc", (y, new), (y, old), rounds=400, confidence=0.95, seed=1, slices={"half": half})
    part = paired_bootstrap("pr_auc", (y, new), (y, old), rounds=400, confidence=0.95, seed=1, slices={"half": half}, max_rows=CAP)
    assert full["resampled_rows"] == 50_000 and 4_500 < part["resampled_rows"] < 5_600
    assert part["delta"] == full["delta"] and part["candidate"] == full["candidate"], "the estimate is on every row either way"
    for a, b in ((part, full), (part["slices"]["half"], full["slices"]["half"])):
        assert 0.85 < a["sd"] / b["sd"] < 1.15, (a["sd"], b["sd"])
        assert abs(a["lower"] - b["lower"]) < 0.5 * b["sd"], (a["lower"], b["lower"], b["sd"])
    # the operating-point comparison resamples the same way
    at = (y, new, 1.0), (y, old, 1.0)
    every, some = compare(*at, rounds=400, confidence=0.95, seed=1), compare(*at, rounds=400, confidence=0.95, seed=1, max_rows=CAP)
    assert 4_500 < some["resampled_rows"] < 5_600 and every["resampled_rows"] == 50_000
    for measure in ("precision", "recall", "f1", "cost"):
        assert some[measure]["delta"] == every[measure]["delta"]
        assert 0.85 < some[measure]["sd"] / every[measure]["sd"] < 1.15, measure


def test_the_bootstrap_weights_are_poisson_and_the_ranking_metrics_match_scikit_learn():
    """The bootstrap draws its own Poisson(1) counts and sums them in score order (issue 21: 10x and 5x faster than
    rng.poisson and float sums): the counts must have Poisson(1)'s distribution, and roc_auc and pr_auc under any weights,
    by either path (the rows sorted once, or counted by the ranks of a superset of them), scikit-learn's values."""
    from math import exp, factorial, sqrt

    from sklearn.metrics import average_precision_score, roc_auc_score

    from mlcicd.core.metrics import dense_ranks, prepared_metric
    from mlcicd.core.stats import poisson_counts

    counts = poisson_counts(np.random.default_rng(3), (40, 100_000))
    assert counts.dtype == np.uint8 and counts.max() < 20, "every count decided (the undecided top bits drew the rest)"
    seen = np.bincount(counts.ravel(), minlength=8)
    for k in range(8):  # within 5 standard deviations of what Poisson(1) expects
        expected = counts.size * exp(-1) / factorial(k)
        assert abs(seen[k] - expected) < 5 * sqrt(expected) + 1, (k, seen[k], expected)
    assert abs(counts.mean() - 1) < 0.002 and abs(counts.var() - 1) < 0.004

    rng = np.random.default_rng(5)
    for rows, rate in ((3_000, 0.1), (500, 0.5), (200, 0.01)):
        y = (rng.random(rows) < rate).astype(float)
        scores = np.round(rng.random(rows) + 0.3 * y, 2)  # many ties, within and across the classes
        weights = poisson_counts(rng, (4, rows + 50))
        columns = rng.permutation(rows + 50)[:rows]  # the rows' places among a bootstrap's drawn rows
        superset = dense_ranks(np.concatenate([scores, rng.random(30)]))[:rows]
        both = [w[columns] @ y > 0 and w[columns] @ (1 - y) > 0 for w in weights]  # else undefined: NaN, not a guess
        for metric, reference in (("roc_auc", roc_auc_score), ("pr_auc", average_precision_score)):
            expected = [reference(y, scores, sample_weight=w[columns]) if ok else np.nan for w, ok in zip(weights, both)]
            by_order = prepared_metric(metric, y, scores, columns=columns)(weights)
            by_ranks = prepared_metric(metric, y, scores, ranks=superset, columns=columns)(weights)
            np.testing.assert_allclose(by_order, expected, rtol=0, atol=1e-12)
            np.testing.assert_allclose(by_ranks, expected, rtol=0, atol=1e-12)
    assert not all(both), "a round with no weighted positives was met, and is NaN"
