"""The gates, declared once, in pipeline order. Everything else is derived from this table: the Dagster check specs
(name, asset, blocking, description), the list promotion re-verifies for the exact candidate, the failed-gate
alerts, the order of `mlcicd status`, and the tests' lists. Each gate's judge is a pure function in core/gates.py
(or core/serving_gates.py), wired to its check in mlcicd/defs/.

To add a gate: add a row here, write its judge, and yield its result where its asset's rows are (see README
"Adding a gate"); a test fails until the row has a check and, for a model gate, a judge.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gate:
    name: str
    asset: str  # the asset whose check it is
    demands: str  # what it requires, in words (the check's description in the UI)
    stage: str  # data | model | promotion (judged inside the decision, not a Dagster check) | monitoring | serving
    blocking: bool = True  # a failure (severity ERROR) stops everything downstream in the run
    reverified: bool = True  # promotion requires its latest result to have passed for the candidate


GATES: tuple[Gate, ...] = (
    Gate("data_contract", "raw_batch", "Every landed file meets the data contract's hard rules (pandera, lazy).", "data"),
    Gate("data_freshness", "training_dataset", "The newest accepted batch is at most gates.max_data_age_hours old.", "data"),
    Gate("min_rows", "training_dataset", "The training dataset has at least gates.min_rows rows.", "data"),
    Gate("label_balance", "training_dataset", "The labels are usable: no missing target, every class present often enough "
         "(gates.min_class_share), the positive rate within gates.positive_rate.", "data"),
    Gate("unique_ids", "training_dataset", "Each id appears once in the training window (dataset.duplicates decides what a repeat is).", "data"),
    Gate("no_leakage", "holdout_set", "No holdout row is also a training row (by id), and the holdout is strictly newer.", "data"),
    Gate("label_quality", "candidate_evaluation", "Before a model is blamed: the champion agrees with the newest labels about as well "
         "as when it was promoted (else: label corruption or concept drift).", "model"),
    Gate("meets_thresholds", "candidate_evaluation", "The candidate meets the absolute floors and ceilings (gates.min_metrics, "
         "gates.max_metrics).", "model"),
    Gate("no_regression", "candidate_evaluation", "With the noise in mind (paired bootstrap), the candidate is not worse than the champion.", "model"),
    Gate("no_slice_regression", "candidate_evaluation", "No slice (a value of a slice column with enough rows) falls beyond its "
         "tolerance, against the champion on the same rows or against the champion at its promotion (paired bootstrap, corrected "
         "across slices).", "model"),
    Gate("operating_point", "candidate_evaluation", "binary: the candidate's precision and recall at its own threshold (chosen on the "
         "validation split by model.operating_point) are not materially worse than the champion's at its threshold (paired bootstrap).",
         "model"),
    Gate("negative_flips", "candidate_evaluation", "At most gates.max_negative_flip_rate of the holdout rows (overall and per slice) are "
         "rows the champion got right and the candidate gets wrong (beyond noise).", "model"),
    Gate("calibration", "candidate_evaluation", "The candidate is calibrated within gates.max_calibration_error (probabilities for "
         "classifiers, no bias for regression).", "model"),
    Gate("latency_and_size", "candidate_evaluation", "Prediction latency (p95, 1 row and 1,000 rows) and model size are within budget.", "model"),
    Gate("identity", "candidate_evaluation", "The evaluation is of exactly the candidate waiting (`challenger`) and of the current "
         "training_dataset version.", "model"),
    Gate("data_freshness_now", "champion", "At the moment of promotion, the newest accepted batch is still fresh enough.", "promotion",
         reverified=False),
    Gate("identity_now", "champion", "At the moment of promotion, the evaluation is still of the candidate waiting and the current "
         "dataset.", "promotion", reverified=False),
    Gate("artifact_integrity", "champion", "The files of the version the alias moves to match the SHA-256 recorded when it was "
         "registered (no override waives it).", "promotion", reverified=False),
    Gate("canary_passed", "champion", "With promotion.require_canary: the latest canary window judged this version and passed.", "promotion",
         reverified=False),
    Gate("data_drift", "drift_report", "At most monitoring.max_drift_share of the feature columns drifted, and at most that share of "
         "the champion's feature importance lies in drifted columns.", "monitoring", reverified=False),
    Gate("performance_decay", "drift_report", "The champion's primary metric on the newest labeled data has not decayed beyond "
         "monitoring.max_decay.", "monitoring", reverified=False),
    Gate("estimated_performance", "drift_report", "binary: the champion's primary metric estimated from its own probabilities on the "
         "newest rows it scored (CBPE, before labels arrive) has not fallen beyond monitoring.max_decay.", "monitoring", reverified=False),
    Gate("deployment_healthy", "deployment", "The deployed version answers health, a smoke request and the skew check before traffic "
         "switches to it.", "serving", reverified=False),
    Gate("serving_within_budget", "serving_metrics", "The live version's error rate and p95 latency over the last window are within "
         "serving.max_error_rate and serving.p95_latency_ms.", "serving", blocking=False, reverified=False),
    Gate("canary_comparison", "serving_metrics", "The canary's errors, latency and disagreement with the champion (and, in A/B mode, "
         "the outcomes posted to /feedback) are proven within serving.canary's limits by an anytime-valid sequential test.", "serving",
         blocking=False, reverified=False),
)

BY_NAME = {gate.name: gate for gate in GATES}
ORDER = {gate.name: position for position, gate in enumerate(GATES)}


def on(asset: str) -> list[Gate]:
    """The Dagster checks of one asset, in pipeline order (promotion's own gates are judged inside the decision)."""
    return [gate for gate in GATES if gate.asset == asset and gate.stage != "promotion"]


def stage(name: str) -> list[Gate]:
    return [gate for gate in GATES if gate.stage == name]


def reverified() -> list[Gate]:
    """What promotion requires to have passed for the candidate, in pipeline order."""
    return [gate for gate in GATES if gate.reverified]


def in_pipeline_order(names) -> list[str]:
    """Gate names sorted as the pipeline runs them (names not in the table last, as given)."""
    names = list(names)
    return sorted(names, key=lambda name: (ORDER.get(name, len(ORDER)), names.index(name)))
