"""Gate verdicts: pure decisions with a one-sentence reason and the numbers behind it.

Every gate fails closed: a missing or non-finite number is a failure that says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from dataclasses import asdict, dataclass, field
from typing import Any

from mlcicd.core.ingest import BatchVerdict
from mlcicd.core.metrics import better_by


@dataclass(frozen=True)
class GateVerdict:
    gate: str
    passed: bool
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def data_contract_gate(verdicts: Sequence[BatchVerdict], accepted_batches: int) -> GateVerdict:
    rejected = [v for v in verdicts if v.status == "quarantined"]
    numbers = {
        "files_seen": len(verdicts),
        "accepted": sum(v.status == "accepted" for v in verdicts),
        "duplicates": sum(v.status == "duplicate" for v in verdicts),
        "quarantined": len(rejected),
        "accepted_batches_in_store": accepted_batches,
    }
    if rejected:
        first = rejected[0]
        more = f" (and {len(rejected) - 1} more file(s))" if len(rejected) > 1 else ""
        return GateVerdict(
            "data_contract",
            False,
            f"{len(rejected)} landed file(s) broke the data contract and were quarantined{more}: "
            f"{first.source}: {first.problems[0]}; see {first.location}.report.txt",
            numbers,
        )
    if accepted_batches == 0:
        return GateVerdict("data_contract", False, "No batch has passed the data contract yet, so there is nothing to train on.", numbers)
    return GateVerdict(
        "data_contract",
        True,
        f"Every landed file met the data contract ({numbers['accepted']} accepted, {numbers['duplicates']} already known); "
        f"{accepted_batches} accepted batch(es) are available.",
        numbers,
    )


def _fmt(value) -> str:
    return f"{value:.4f}" if _finite(value) else str(value)


# ---- data gates (training_dataset, holdout_set) -------------------------------------------------


def freshness_gate(newest_ingested_at: datetime | None, now: datetime, max_age_hours: float) -> GateVerdict:
    if newest_ingested_at is None:
        return GateVerdict("data_freshness", False, "No accepted batch exists, so the data cannot be fresh.", {"max_age_hours": max_age_hours})
    age = (now - newest_ingested_at).total_seconds() / 3600
    numbers = {"newest_batch_ingested_at": newest_ingested_at.isoformat(), "age_hours": round(age, 3), "max_age_hours": max_age_hours}
    if age > max_age_hours:
        return GateVerdict(
            "data_freshness", False,
            f"The newest accepted batch was ingested {age:.1f} hours ago, more than the allowed {max_age_hours:g}: "
            "training now would quietly learn from old data.", numbers,
        )
    return GateVerdict("data_freshness", True, f"The newest accepted batch was ingested {age:.1f} hours ago (allowed: {max_age_hours:g}).", numbers)


def min_rows_gate(rows: int, minimum: int) -> GateVerdict:
    numbers = {"rows": rows, "min_rows": minimum}
    if rows < minimum:
        return GateVerdict("min_rows", False, f"The training dataset has {rows:,} rows; at least {minimum:,} are required.", numbers)
    return GateVerdict("min_rows", True, f"The training dataset has {rows:,} rows (at least {minimum:,} required).", numbers)


def label_balance_gate(task: str, labels, *, positive_rate: tuple[float, float], min_class_share: float) -> GateVerdict:
    """binary: the positive rate is within bounds; multiclass: every class has its minimum share;
    regression: the target is finite and varies."""
    import numpy as np
    import pandas as pd

    labels = pd.Series(labels)
    if labels.isna().any():
        return GateVerdict("label_balance", False, f"{int(labels.isna().sum()):,} row(s) have no label.", {"missing_labels": int(labels.isna().sum())})
    if task == "regression":
        values = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=float)
        numbers = {"target_mean": float(np.mean(values)), "target_std": float(np.std(values)), "non_finite": int((~np.isfinite(values)).sum())}
        if numbers["non_finite"]:
            return GateVerdict("label_balance", False, f"{numbers['non_finite']:,} target value(s) are not finite numbers.", numbers)
        if not numbers["target_std"] > 0:
            return GateVerdict("label_balance", False, "The target has the same value in every row: there is nothing to learn.", numbers)
        return GateVerdict("label_balance", True, f"The target varies (mean {numbers['target_mean']:.4g}, standard deviation {numbers['target_std']:.4g}).", numbers)
    # count first, then name the classes as text (converting every label to text first took 0.2 s at 1M rows)
    shares = labels.value_counts(normalize=True)
    shares = shares[shares > 0]  # a categorical target counts its unused categories too
    shares.index = shares.index.astype("string")
    shares = shares.sort_index()
    numbers = {f"share_{k}": float(v) for k, v in shares.items()}
    if task == "binary":
        low, high = positive_rate
        if len(shares) != 2:
            return GateVerdict("label_balance", False, f"A binary target needs 2 classes; the training dataset has {len(shares)}: {list(shares.index)[:5]}.", numbers)
        rate = float(shares.iloc[1])  # the positive class is the second in natural order, as the model sees it
        numbers.update({"positive_rate": rate, "min_positive_rate": low, "max_positive_rate": high})
        if not low <= rate <= high:
            return GateVerdict(
                "label_balance", False, f"The positive rate is {rate:.4f}, outside the expected [{low:g}, {high:g}]: the labels may be broken.", numbers
            )
        return GateVerdict("label_balance", True, f"The positive rate is {rate:.4f}, within [{low:g}, {high:g}].", numbers)
    numbers["min_class_share"] = min_class_share
    if len(shares) < 2:
        return GateVerdict("label_balance", False, f"The training dataset has a single class ({list(shares.index)}).", numbers)
    rare = {k: v for k, v in shares.items() if v < min_class_share}
    if rare:
        shown = ", ".join(f"{k} ({v:.2%})" for k, v in rare.items())
        return GateVerdict("label_balance", False, f"{len(rare)} class(es) fall below the minimum share of {min_class_share:.2%}: {shown}.", numbers)
    return GateVerdict("label_balance", True, f"{len(shares)} classes, the rarest at {shares.min():.2%} (minimum {min_class_share:.2%}).", numbers)


def unique_ids_gate(duplicated: int, id_column: str | None, examples: Sequence = ()) -> GateVerdict:
    """Without an id column, a row counts as duplicated when every value repeats an earlier row."""
    what = f"'{id_column}'" if id_column else "row (all values alike; dataset.id_column is not set)"
    numbers = {"duplicated": duplicated, "id_column": id_column or "(whole rows)"}
    if duplicated:
        shown = ", ".join(str(e) for e in list(examples)[:3])
        return GateVerdict("unique_ids", False, f"{duplicated:,} {what} value(s) appear more than once across batches (e.g. {shown}).", numbers)
    return GateVerdict("unique_ids", True, f"Every {what} appears once in the training dataset.", numbers)


def leakage_gate(shared: int, train_last: str | None, holdout_first: str | None, examples: Sequence = ()) -> GateVerdict:
    """No row (by id, else by all its values) is in both sets, and the train set ends before the holdout
    begins (by time; without a time column the holdout is the newest batches by arrival)."""
    numbers = {"rows_in_both": shared, "train_last_time": train_last or "(by arrival)", "holdout_first_time": holdout_first or "(by arrival)"}
    if shared:
        shown = ", ".join(str(e) for e in list(examples)[:3])
        return GateVerdict("no_leakage", False, f"{shared:,} row(s) are in both the train set and the holdout (e.g. {shown}).", numbers)
    if train_last is None or holdout_first is None:
        return GateVerdict("no_leakage", True, "No row is in both sets, and the holdout holds the newest rows by arrival.", numbers)
    if train_last > holdout_first:
        return GateVerdict("no_leakage", False, f"The train set reaches {train_last}, after the holdout starts ({holdout_first}).", numbers)
    return GateVerdict("no_leakage", True, f"No row is in both sets, and the train set ends ({train_last}) before the holdout begins.", numbers)


# ---- model gates (candidate_evaluation) ---------------------------------------------------------


def thresholds_gate(metrics: dict, minimums: dict[str, float], maximums: dict[str, float]) -> GateVerdict:
    failures, numbers = [], {}
    for name, floor in minimums.items():
        value = metrics.get(name)
        numbers[name], numbers[f"min_{name}"] = value, floor
        if not _finite(value):
            failures.append(f"{name} could not be computed (got {value})")
        elif value < floor:
            failures.append(f"{name} is {value:.4f}, below the required {floor:g}")
    for name, ceiling in maximums.items():
        value = metrics.get(name)
        numbers[name], numbers[f"max_{name}"] = value, ceiling
        if not _finite(value):
            failures.append(f"{name} could not be computed (got {value})")
        elif value > ceiling:
            failures.append(f"{name} is {value:.4f}, above the allowed {ceiling:g}")
    if not minimums and not maximums:
        return GateVerdict("meets_thresholds", False, "No thresholds are configured (gates.min_metrics / max_metrics), so nothing vouches for the model.", numbers)
    if failures:
        return GateVerdict("meets_thresholds", False, "The candidate misses its thresholds: " + "; ".join(failures) + ".", numbers)
    shown = ", ".join(f"{k} {_fmt(metrics.get(k))}" for k in [*minimums, *maximums])
    return GateVerdict("meets_thresholds", True, f"The candidate meets every threshold ({shown}).", numbers)


def no_regression_gate(
    metric: str,
    candidate: float | None,
    champion: float | None,
    *,
    champion_version: str | None,
    tolerance: float,
    bootstrap: dict | None = None,
    confidence: float = 0.95,
    champion_error: str | None = None,
) -> GateVerdict:
    numbers = {"metric": metric, "candidate": candidate, "champion": champion, "champion_version": champion_version, "tolerance": tolerance}
    if champion_error:
        return GateVerdict("no_regression", False, f"The champion could not be scored, so no comparison is possible: {champion_error}", numbers)
    if not _finite(candidate):
        return GateVerdict("no_regression", False, f"The candidate's {metric} could not be computed (got {candidate}).", numbers)
    if champion_version is None:
        return GateVerdict("no_regression", True, "There is no champion yet, so there is nothing to regress from.", numbers)
    if not _finite(champion):
        return GateVerdict("no_regression", False, f"The champion's {metric} on this holdout could not be computed (got {champion}).", numbers)
    lower, gain = (bootstrap or {}).get("lower"), (bootstrap or {}).get("delta")
    numbers.update({"better_by": gain, "lower_bound": lower, "confidence": confidence})
    if not _finite(lower) or not _finite(gain):
        return GateVerdict("no_regression", False, f"The bootstrap comparison with the champion could not be computed (lower bound {lower}).", numbers)
    head = (
        f"The candidate's {metric} is {candidate:.4f} against champion version {champion_version}'s {champion:.4f} on the same holdout "
        f"(better by {gain:+.4f}; {confidence:.0%} lower bound {lower:+.4f}"
    )
    if lower < -tolerance:
        return GateVerdict("no_regression", False, head + f", below the allowed -{tolerance:g}): it may be worse than the champion.", numbers)
    return GateVerdict("no_regression", True, head + f", within the allowed -{tolerance:g}).", numbers)


def slice_gate(metric: str, candidate: dict, champion: dict | None, *, champion_version: str | None, tolerance: float) -> GateVerdict:
    judged = [(col, val) for col, values in candidate.items() for val, entry in values.items() if entry.get("judged")]
    numbers = {"slices_judged": len(judged), "tolerance": tolerance}
    if champion_version is None:
        return GateVerdict("no_slice_regression", True, f"There is no champion yet; {len(judged)} slice(s) were measured for the record.", numbers)
    if champion is None:
        return GateVerdict("no_slice_regression", False, "The champion's slice metrics are missing, so slices cannot be compared.", numbers)
    if candidate and not judged:  # slices are configured, yet none could be judged: nothing vouches for them
        return GateVerdict(
            "no_slice_regression", False,
            "No slice value had enough holdout rows (gates.slice_min_rows) with a defined metric to be judged, so slice regressions cannot be ruled out.",
            numbers,
        )
    worst, failures = None, []
    for column, value in judged:
        mine = candidate[column][value][metric]
        theirs = (champion.get(column, {}).get(value) or {}).get(metric)
        if not _finite(mine) or not _finite(theirs):
            failures.append(f"{column}={value}: {metric} could not be compared ({_fmt(mine)} vs {_fmt(theirs)})")
            continue
        delta = better_by(metric, mine, theirs)
        if worst is None or delta < worst[2]:
            worst = (column, value, delta)
        if delta < -tolerance:
            failures.append(f"{column}={value}: {metric} {mine:.4f} vs {theirs:.4f} (better by {delta:+.4f})")
    if worst:
        numbers.update({"worst_slice": f"{worst[0]}={worst[1]}", "worst_delta": worst[2]})
    if failures:
        return GateVerdict(
            "no_slice_regression", False,
            f"{len(failures)} slice(s) fell further than {tolerance:g} below champion version {champion_version}: " + "; ".join(failures) + ".",
            numbers,
        )
    tail = f"; the worst is {worst[0]}={worst[1]} at {worst[2]:+.4f}" if worst else ""
    return GateVerdict("no_slice_regression", True, f"None of {len(judged)} judged slice(s) fell more than {tolerance:g} below the champion{tail}.", numbers)


CALIBRATION_MEANING = {
    "binary": ("expected calibration error", "its probabilities cannot be taken at face value"),
    "multiclass": ("expected calibration error of the top-class confidence", "its confidence cannot be taken at face value"),
    "regression": ("mean residual as a share of the target's standard deviation", "its predictions are biased"),
}


def calibration_gate(error: float | None, bound: float, task: str = "binary") -> GateVerdict:
    what, consequence = CALIBRATION_MEANING[task]
    numbers = {"calibration_error": error, "max_calibration_error": bound, "measure": what}
    if not _finite(error):
        return GateVerdict("calibration", False, f"The {what} could not be computed (got {error}).", numbers)
    if error > bound:
        return GateVerdict("calibration", False, f"The {what} is {error:.4f}, above the allowed {bound:g}: {consequence}.", numbers)
    return GateVerdict("calibration", True, f"The {what} is {error:.4f} (allowed: {bound:g}).", numbers)


def budget_gate(latency: dict, size_bytes: int | None, latency_budget: dict, max_size_mb: float) -> GateVerdict:
    failures, numbers = [], {"size_mb": None if size_bytes is None else size_bytes / 1e6, "max_size_mb": max_size_mb}
    for name, budget in latency_budget.items():
        value = (latency or {}).get(name)
        numbers[name], numbers[f"max_{name}"] = value, budget
        if not _finite(value):
            failures.append(f"{name} was not measured")
        elif value > budget:
            failures.append(f"{name} is {value:.2f} ms, over the budget of {budget:g} ms")
    if size_bytes is None:
        failures.append("the model size was not measured")
    elif size_bytes / 1e6 > max_size_mb:
        failures.append(f"the model is {size_bytes / 1e6:.2f} MB, over the budget of {max_size_mb:g} MB")
    if failures:
        return GateVerdict("latency_and_size", False, "The candidate is over budget: " + "; ".join(failures) + ".", numbers)
    shown = ", ".join(f"{k} {numbers[k]:.2f} ms" for k in latency_budget)
    return GateVerdict("latency_and_size", True, f"Within budget: {shown}, {size_bytes / 1e6:.2f} MB.", numbers)
