"""Issue 20 points 1 and 2: operating points (a decision threshold chosen on the validation split by a rule, stored with
the model, used by evaluation, scoring and serving, and gated) and negative flips (the decisions users relied on that a
candidate breaks, overall and per slice)."""

import math

import numpy as np
import pytest

from mlcicd.config import OperatingPointSpec
from mlcicd.core.flips import negative_flips
from mlcicd.core.operating_point import choose
from mlcicd.core.tasks import task_of
from mlcicd.mlflow_registry import load_model

from .test_gates import assert_refused, failed_gates, land, promote


def validation_split(seed=0, rows=4000):
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.1).astype(float)
    return y, 1 / (1 + np.exp(-(-2 + 2.5 * y + rng.normal(size=rows))))


def every_threshold(y, scores):
    """Brute force: (threshold, precision, recall, false positives, false negatives) at every distinct score."""
    out = []
    for t in np.unique(scores):
        decided = scores >= t
        tp = float(np.sum(decided & (y == 1)))
        out.append((t, tp / decided.sum(), tp / y.sum(), float(np.sum(decided & (y == 0))), float(np.sum(~decided & (y == 1)))))
    return out


def test_each_rule_chooses_the_threshold_it_promises_on_the_validation_split():
    y, scores = validation_split()
    table = every_threshold(y, scores)

    best_f1 = choose(OperatingPointSpec(rule="max_f1"), y, scores)
    f1 = [2 * p * r / (p + r) for _, p, r, _, _ in table]
    assert math.isclose(2 * best_f1.precision * best_f1.recall / (best_f1.precision + best_f1.recall), max(f1))

    precise = choose(OperatingPointSpec(rule="target_precision", target=0.8), y, scores)
    assert precise.precision >= 0.8 and precise.recall == max(r for _, p, r, _, _ in table if p >= 0.8)

    sensitive = choose(OperatingPointSpec(rule="target_recall", target=0.9), y, scores)
    assert sensitive.recall >= 0.9 and sensitive.precision == max(p for _, p, r, _, _ in table if r >= 0.9)
    assert sensitive.threshold < best_f1.threshold < precise.threshold

    cheap = choose(OperatingPointSpec(rule="min_cost", costs={"false_positive": 1, "false_negative": 20}), y, scores)
    assert min(fp + 20 * fn for _, _, _, fp, fn in table) == pytest.approx(
        next(fp + 20 * fn for t, _, _, fp, fn in table if t == cheap.threshold))
    assert cheap.threshold < best_f1.threshold, "a miss that costs 20 false alarms pushes the threshold down"

    assert choose(OperatingPointSpec(rule="fixed", threshold=0.3), y, scores).threshold == 0.3
    unreachable = choose(OperatingPointSpec(rule="target_precision", target=0.9), np.array([0, 1, 0, 1.0]), np.array([0.9, 0.8, 0.7, 0.6]))
    assert "no threshold reaches the target precision 0.9" in unreachable.why and unreachable.precision == 0.5
    single = choose(OperatingPointSpec(), np.zeros(50), scores[:50])
    assert single.threshold == 0.5 and "single class" in single.why


def test_negative_flips_count_rows_the_champion_got_right_and_the_candidate_gets_wrong():
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=float)
    champion = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.7, 0.1, 0.1])  # at 0.5: wrong on rows 4 (a miss) and 5 (a false alarm)
    candidate = np.array([0.9, 0.3, 0.1, 0.6, 0.6, 0.2, 0.1, 0.1])  # at 0.5: breaks rows 1 and 3, fixes rows 4 and 5
    slices = {"a": np.array([True] * 4 + [False] * 4), "b": np.array([False] * 4 + [True] * 4)}
    flips = negative_flips(task_of("binary"), y, candidate, champion, (0.5, 0.5), tolerance=0, limit=0.05, confidence=0.95, slices=slices)
    assert (flips["flips"], flips["rows"]) == (2, 8) and flips["slices"]["a"]["flips"] == 2 and flips["slices"]["b"]["flips"] == 0
    at_own = negative_flips(task_of("binary"), y, candidate, champion, (0.65, 0.5), tolerance=0, limit=0.05, confidence=0.95)
    assert at_own["flips"] == 1, "each at its own threshold: at 0.65 the candidate no longer calls row 3 positive"

    values = np.array([10.0, 20.0, 30.0, 40.0])
    regression = negative_flips(task_of("regression"), values, values + [0, 0, 9, 1], values + [1, 1, 1, 1], (0.5, 0.5), tolerance=0.5,
                                limit=0.05, confidence=0.95)
    assert regression["flips"] == 1, "only row 2's error grows by more than half a standard deviation of the target (5.6)"


def test_the_threshold_is_stored_with_the_model_and_a_rule_that_breaks_the_decisions_is_refused(make_project, run_job):
    project = make_project()
    land(project)
    assert run_job("training_job").success and promote(run_job).success
    _, features = load_model(project, project.model_name("full"), "1")
    chosen = features.operating_point
    assert chosen["rule"] == "max_f1" and features.threshold == chosen["threshold"] != 0.5 and chosen["rows"] > 0

    # the settings axis: a new rule that catches almost every fraud at the cost of precision
    make_project({"model": {"operating_point": {"rule": "target_recall", "target": 0.97}}})
    assert failed_gates(run_job("training_job")) >= {"operating_point"}
    _, candidate = load_model(project, project.model_name("full"), "2")
    assert candidate.threshold < features.threshold and candidate.operating_point["recall"] >= 0.97
    last = assert_refused(project, run_job, "gate operating_point did not pass", "1")
    reason = last["gates"]["operating_point"]["reason"]
    assert reason.startswith("Under the rule target_recall (precision, recall judged)") and "precision" in reason.split("worse")[1]
    assert f"at {features.threshold:.4g}" in reason and "materially worse" in reason


def test_a_model_as_good_that_breaks_many_decisions_is_refused_naming_rows_and_slices(make_project, run_job):
    project = make_project()
    land(project)
    assert run_job("training_job").success and promote(run_job).success
    # as good on the ranking (no_regression passes), but another model: other trees decide other rows
    make_project({"model": {"seed": 3, "params": {"learning_rate": 0.2, "num_leaves": 7, "feature_fraction": 0.6}},
                  "gates": {"max_negative_flip_rate": 0.002, "max_operating_point_drop": 1.0, "max_regression": 0.05},
                  "tiers": {"full": {"evaluation_report": True}}})
    result = run_job("training_job")
    failed = failed_gates(result)
    assert "negative_flips" in failed and "no_regression" not in failed
    last = assert_refused(project, run_job, "gate negative_flips did not pass", "1")
    reason = last["gates"]["negative_flips"]["reason"]
    assert "holdout rows" in reason and "the champion got right and the candidate gets wrong" in reason
    assert "More than 0.2% flipped beyond noise" in reason and ("region=" in reason or "channel=" in reason)
    # the evaluation report and, once a person accepts it, the model card show the decisions against the champion
    page = project.evaluation_report(project.model_name("full"), "2").read_text()
    assert "<h2 id='compatibility'>Decisions against the champion</h2>" in page and "<td>overall</td>" in page
    accepted = promote(run_job, override=True, reason="the new trees are wanted; the review team re-checks flipped rows")
    assert accepted.success
    card = open(accepted.output_for_node("fraud__champion")["model_card"]).read()
    assert "## Decisions against the replaced champion" in card and "| threshold |" in card and "| overall |" in card
    assert "- **Decision threshold:** " in card and "chosen by the rule max_f1 on the validation split" in card
