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
from mlcicd.core.tasks import task_of


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
    unusual = [f"{v.source}: {note}" for v in verdicts for note in v.unusual]
    numbers["unusual_findings"] = len(unusual)
    tail = f" Accepted but unusual (monitoring reports it as drift): {'; '.join(unusual[:3])}{' ...' if len(unusual) > 3 else ''}." if unusual else ""
    return GateVerdict(
        "data_contract",
        True,
        f"Every landed file met the data contract's hard rules ({numbers['accepted']} accepted, {numbers['duplicates']} already known); "
        f"{accepted_batches} accepted batch(es) are available.{tail}",
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
    import pandas as pd

    labels = pd.Series(labels)
    if labels.isna().any():
        return GateVerdict("label_balance", False, f"{int(labels.isna().sum()):,} row(s) have no label.", {"missing_labels": int(labels.isna().sum())})
    kind = task_of(task)
    shares = None
    if kind.is_classifier:
        # count first, then name the classes as text (converting every label to text first took 0.2 s at 1M rows)
        shares = labels.value_counts(normalize=True)
        shares = shares[shares > 0]  # a categorical target counts its unused categories too
        shares.index = shares.index.astype("string")
        shares = shares.sort_index()
    passed, reason, numbers = kind.label_verdict(labels, shares, positive_rate, min_class_share)
    return GateVerdict("label_balance", passed, reason, numbers)


def unique_ids_gate(duplicated: int, id_column: str | None, examples: Sequence = (), policy: str = "refuse") -> GateVerdict:
    """An id seen twice is a duplicate (policy refuse). Without an id column, identical rows may be different records
    (two passengers alike): under policy allow they are counted and reported, not refused."""
    what = f"'{id_column}'" if id_column else "whole row (every value alike; dataset.id_column is not set)"
    numbers = {"duplicated": duplicated, "id_column": id_column or "(whole rows)", "policy": policy}
    shown = "; ".join(str(e) for e in list(examples)[:3])
    if duplicated and policy == "refuse":
        return GateVerdict("unique_ids", False, f"{duplicated:,} {what} value(s) appear more than once across batches (e.g. {shown}).", numbers)
    if duplicated:
        return GateVerdict(
            "unique_ids", True,
            f"{duplicated:,} {what}(s) appear more than once (e.g. {shown}); dataset.duplicates is 'allow', so they count as different "
            "records (set dataset.id_column, or duplicates: refuse, to refuse them).", numbers,
        )
    return GateVerdict("unique_ids", True, f"Every {what} appears once in the training dataset.", numbers)


def leakage_gate(
    shared: int, train_last: str | None, holdout_first: str | None, examples: Sequence = (), identical_rows_allowed: bool = False
) -> GateVerdict:
    """No row (by id, else by all its values) is in both sets, and the train set ends before the holdout
    begins (by time; without a time column the holdout is the newest batches by arrival). Without an id, when identical
    rows are allowed (dataset.duplicates: allow), a row in both sets is a different record that looks the same: counted,
    not refused (the split is by position, so no record can be on both sides)."""
    numbers = {"rows_in_both": shared, "train_last_time": train_last or "(by arrival)", "holdout_first_time": holdout_first or "(by arrival)"}
    if shared and identical_rows_allowed:
        numbers["identical_rows_allowed"] = "yes"
        note = f"{shared:,} holdout row(s) look exactly like train rows (different records alike; dataset.duplicates: allow)"
        if train_last is not None and holdout_first is not None and train_last > holdout_first:
            return GateVerdict("no_leakage", False, f"The train set reaches {train_last}, after the holdout starts ({holdout_first}).", numbers)
        return GateVerdict("no_leakage", True, f"The holdout holds the newest rows, split by position; {note}.", numbers)
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
        none = "No thresholds are configured (gates.min_metrics / max_metrics), so nothing vouches for the model."
        return GateVerdict("meets_thresholds", False, none, numbers)
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
    rows: int | None = None,
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
        sd = (bootstrap or {}).get("sd")
        if gain > -tolerance and _finite(sd) and sd > 0 and rows:
            from mlcicd.core.stats import z_for

            needed = int(math.ceil(rows * (z_for(confidence) * sd / (gain + tolerance)) ** 2))
            numbers["rows_needed"] = needed
            return GateVerdict(
                "no_regression", False,
                head + f", below the allowed -{tolerance:g}). Undecided rather than worse: the estimate is within the margin, but the "
                f"holdout has {rows:,} rows, too few to show it with {confidence:.0%} confidence; that needs about {needed:,} rows "
                "(dataset.holdout_batches), or a wider gates.max_regression.", numbers,
            )
        return GateVerdict("no_regression", False, head + f", below the allowed -{tolerance:g}): it is worse than the champion.", numbers)
    return GateVerdict("no_regression", True, head + f", within the allowed -{tolerance:g}).", numbers)


def slice_gate(
    metric: str, candidate: dict, paired: dict | None, *, champion_version: str | None, tolerance: float, at_promotion: dict | None = None,
    correction: str = "holm", confidence: float = 0.95, min_rows: int | None = None,
) -> GateVerdict:
    """Per slice (a value of a slice column with at least gates.slice_min_rows holdout rows), two questions, each with
    an interval and a correction across slices (Holm, or Benjamini-Hochberg):
    - is the candidate worse than the champion by more than `tolerance` on the same rows (`paired`: the paired bootstrap
      of each slice, from evaluate.paired_bootstrap)?
    - is the candidate's slice worse than the champion's was on its own holdout when it was promoted (`at_promotion`)?
      Candidate and champion judged on the same broken rows hide a broken slice from the first question; not this one.
    A slice fails when the fall is both material (the estimate is below -tolerance) and real (worse at all with
    `confidence`, after the correction): noise on a few rows never refuses, a clear fall on a real slice does."""
    from mlcicd.core.stats import adjust, worse_p_value

    judged = [(col, val) for col, values in candidate.items() for val, entry in values.items() if entry.get("judged")]
    alpha = 1 - confidence
    numbers = {"slices_judged": len(judged), "tolerance": tolerance, "correction": correction, "alpha": alpha}
    if champion_version is None:
        return GateVerdict("no_slice_regression", True, f"There is no champion yet; {len(judged)} slice(s) were measured for the record.", numbers)
    if paired is None:
        return GateVerdict("no_slice_regression", False, "The champion's slice metrics are missing, so slices cannot be compared.", numbers)
    if candidate and not judged:
        biggest = max((entry["rows"] for values in candidate.values() for entry in values.values()), default=0)
        return GateVerdict(
            "no_slice_regression", False,
            f"No slice value had enough holdout rows (gates.slice_min_rows {min_rows}; the largest has {biggest:,}) with a defined metric, "
            "so slice regressions cannot be ruled out: grow the holdout (dataset.holdout_batches) or lower gates.slice_min_rows.", numbers,
        )
    tests: dict[str, float] = {}
    described: dict[str, str] = {}
    material: dict[str, bool] = {}
    falls: dict[str, float] = {}  # how much better (negative: worse); the worst is named first
    then = (at_promotion or {}).get("slices") or {}
    for column, value in judged:
        name = f"{column}={value}"
        mine = candidate[column][value]
        pair = paired.get(name)
        if pair is None or not _finite(pair.get("delta")):
            tests[f"{name} vs champion"], material[f"{name} vs champion"] = 0.0, True
            described[f"{name} vs champion"] = f"{name}: {metric} could not be compared with the champion"
        else:
            key = f"{name} vs champion"
            tests[key], material[key] = worse_p_value(pair["delta"], pair.get("sd") or 0.0, 0.0), pair["delta"] < -tolerance
            falls[key] = pair["delta"]
            described[key] = (f"{name}: {metric} {mine[metric]:.4f} vs champion {pair['champion']:.4f} on the same {mine['rows']:,} rows "
                              f"(better by {pair['delta']:+.4f} ± {pair.get('sd') or 0:.4f})")
        if name in then and _finite(mine.get(metric)) and _finite(then[name][0]):
            was, was_sd, was_rows = then[name]
            now_sd = mine.get("sd") or 0.0
            if not _finite(was_sd):  # not kept: assume the same precision per row as now
                was_sd = now_sd * math.sqrt(mine["rows"] / was_rows) if was_rows else now_sd
            key = f"{name} vs promotion"
            change = better_by(metric, mine[metric], was)
            tests[key], material[key] = worse_p_value(change, math.hypot(now_sd, was_sd), 0.0), change < -tolerance
            falls[key] = change
            described[key] = (f"{name}: {metric} {mine[metric]:.4f} now vs {was:.4f} when champion version {champion_version} was promoted "
                              f"(better by {change:+.4f})")
    adjusted = adjust(tests, correction)
    ranked = sorted(adjusted, key=lambda k: (falls.get(k, -math.inf), adjusted[k]))
    broken = ": this slice of the newest data is broken (labels or inputs), not the model"
    failures = [described[k] + (broken if k.endswith(" vs promotion") else "") + f" [adjusted p {adjusted[k]:.3g}]"
                for k in ranked if adjusted[k] < alpha and material[k]]
    worst = ranked[0] if ranked else None
    if worst:
        numbers.update({"worst_slice": worst, "worst_adjusted_p": adjusted[worst]})
    if failures:
        return GateVerdict(
            "no_slice_regression", False,
            f"{len(failures)} slice comparison(s) fell by more than {tolerance:g}, and are worse with {confidence:.0%} confidence ({correction} "
            f"correction over {len(tests)} comparisons): " + "; ".join(failures) + ".", numbers,
        )
    tail = f"; the closest is {described[worst]} [adjusted p {adjusted[worst]:.3g}]" if worst else ""
    return GateVerdict(
        "no_slice_regression", True,
        f"None of {len(judged)} judged slice(s) fell both by more than {tolerance:g} and beyond noise ({confidence:.0%} confidence, "
        f"{correction} correction) below the champion, now or at its promotion{tail}.", numbers,
    )


def label_quality_gate(metric: str, now: float | None, now_sd: float | None, rows: int, *, champion_version: str | None,
                       at_promotion: dict | None, tolerance: float, confidence: float = 0.95) -> GateVerdict:
    """Before any model is blamed: does the champion agree with the newest labels about as well as when it was promoted?
    A collapse (material: a fall of more than `tolerance`; and real: worse beyond noise with `confidence`) means the
    newest labels disagree with a model that was good:
    label corruption or concept drift. Then the candidate cannot be judged on them, whatever its own numbers say."""
    from mlcicd.core.stats import worse_p_value

    numbers = {"metric": metric, "champion_now": now, "champion_at_promotion": (at_promotion or {}).get("metric"), "tolerance": tolerance, "rows": rows}
    if champion_version is None:
        return GateVerdict("label_quality", True, "There is no champion yet, so the newest labels have nothing to be compared with.", numbers)
    if not at_promotion or not _finite(at_promotion.get("metric")):
        missing = f"Champion version {champion_version} kept no holdout {metric} from its promotion, so the newest labels cannot be checked."
        return GateVerdict("label_quality", False, missing, numbers)
    if not _finite(now):
        return GateVerdict("label_quality", False, f"The champion's {metric} on the newest labeled rows could not be computed (got {now}).", numbers)
    was, was_sd, was_rows = at_promotion["metric"], at_promotion.get("sd"), at_promotion.get("rows")
    now_sd = now_sd if _finite(now_sd) else 0.0
    if not _finite(was_sd):
        was_sd = now_sd * math.sqrt(rows / was_rows) if was_rows else now_sd
    change = better_by(metric, now, was)
    p = worse_p_value(change, math.hypot(now_sd, was_sd), 0.0)  # worse at all, beyond noise
    numbers.update({"better_by": change, "p_value": p})
    head = (f"Champion version {champion_version}'s {metric} is {now:.4f} on the newest {rows:,} labeled holdout rows against {was:.4f} when it "
            f"was promoted (better by {change:+.4f})")
    if p < 1 - confidence and change < -tolerance:
        return GateVerdict(
            "label_quality", False,
            head + f": the newest labels disagree with the champion far more than before (a fall of more than {tolerance:g}, beyond "
            f"noise with {confidence:.0%} confidence): label corruption or concept drift. Check the newest batch's labels before blaming "
            "a model (`mlcicd batches list`; `mlcicd batches remove ID --reason ...` takes a bad batch out of training); the model "
            "gates below were judged on these labels.", numbers,
        )
    why = f"within {tolerance:g}" if change >= -tolerance else f"a fall within noise (p {p:.3g})"
    return GateVerdict("label_quality", True, head + f"; {why}, so the newest labels look as trustworthy as before.", numbers)


def calibration_gate(error: float | None, bound: float, task: str = "binary", noise: float | None = None, rows: int | None = None) -> GateVerdict:
    """Fails when the calibration error is above `bound` AND above what a perfectly calibrated model would show on this
    holdout by chance (`noise`, its 95% level): a refusal needs evidence, and when the holdout is too small to judge
    `bound`, the verdict says so and how many rows would be needed."""
    what, consequence = task_of(task).calibration_meaning
    numbers = {"calibration_error": error, "max_calibration_error": bound, "measure": what, "noise_level": noise, "holdout_rows": rows}
    if not _finite(error):
        return GateVerdict("calibration", False, f"The {what} could not be computed (got {error}).", numbers)
    limit = max(bound, noise) if _finite(noise) else bound
    underpowered = ""
    if _finite(noise) and noise > bound and rows:
        needed = int(math.ceil(rows * (noise / bound) ** 2))
        underpowered = (
            f" On {rows:,} holdout rows a perfectly calibrated model shows up to {noise:.4f} by chance, more than the allowed {bound:g}, "
            f"so it is judged against {noise:.4f}; judging {bound:g} itself needs about {needed:,} rows (dataset.holdout_batches)."
        )
    if error > limit:
        return GateVerdict("calibration", False, f"The {what} is {error:.4f}, above the allowed {limit:.4g}: {consequence}.{underpowered}", numbers)
    return GateVerdict("calibration", True, f"The {what} is {error:.4f} (allowed: {limit:.4g}).{underpowered}", numbers)


AT_THE_EDGE = 1.2  # within 20% of a budget and of the champion's time (which is within it): timing noise, not a slower model


def budget_gate(latency: dict, size_bytes: int | None, latency_budget: dict, max_size_mb: float, *, max_ratio: float = 1.5,
                champion_latency: dict | None = None) -> GateVerdict:
    """The budgets (`latency_budget`) are ceilings on the candidate's fastest-block p95 (evaluate.measure_latency). Over a
    ceiling, the champion measured beside it decides whether the model or the machine is slow: when the champion is over
    it too (a busy machine), the candidate fails only if it takes more than `max_ratio` times the champion's time
    (median of paired timings); when the champion is within it, the candidate is slow on its own and fails, unless it is at
    the edge: at most AT_THE_EDGE times the budget and the champion's time (a model as fast as the champion, over a budget
    the champion meets only narrowly on a busy machine; seen on ISLR Caravan, 53.7 ms against 50)."""
    failures, notes = [], []
    numbers = {"size_mb": None if size_bytes is None else size_bytes / 1e6, "max_size_mb": max_size_mb, "max_ratio": max_ratio}
    for name, budget in latency_budget.items():
        value = (latency or {}).get(name)
        numbers[name], numbers[f"max_{name}"] = value, budget
        size = name.removesuffix("_p95_ms")
        ratio, theirs = (latency or {}).get(f"{size}_ratio"), (champion_latency or {}).get(name)
        if _finite(ratio):
            numbers[f"{size}_ratio"] = ratio
        if not _finite(value):
            failures.append(f"{name} was not measured")
        elif value <= budget:
            continue
        elif _finite(theirs) and theirs <= budget and _finite(ratio) and value <= AT_THE_EDGE * budget and ratio <= AT_THE_EDGE:
            notes.append(f"{name} {value:.2f} ms is over the budget of {budget:g} ms by {value / budget - 1:.0%}, but the candidate takes "
                         f"{ratio:.2f}x the champion's time measured together, and the champion is within it ({theirs:.2f} ms): at the "
                         "edge of the budget this machine cannot tell the two apart")
        elif _finite(theirs) and theirs > budget and _finite(ratio):
            if ratio > max_ratio:
                failures.append(f"{name} is {value:.2f} ms, over the budget of {budget:g} ms, and {ratio:.2f}x the champion's time measured "
                                f"together (allowed {max_ratio:g}x on a machine this busy)")
            else:
                notes.append(f"{name} {value:.2f} ms is over the budget of {budget:g} ms, but so is the champion's ({theirs:.2f} ms) measured "
                             f"together: the machine is busy, and the candidate takes {ratio:.2f}x its time")
        else:
            failures.append(f"{name} is {value:.2f} ms, over the budget of {budget:g} ms")
    if size_bytes is None:
        failures.append("the model size was not measured")
    elif size_bytes / 1e6 > max_size_mb:
        failures.append(f"the model is {size_bytes / 1e6:.2f} MB, over the budget of {max_size_mb:g} MB")
    if failures:
        return GateVerdict("latency_and_size", False, "The candidate is over budget: " + "; ".join(failures) + ".", numbers)
    shown = ", ".join(f"{k} {numbers[k]:.2f} ms" for k in latency_budget)
    relative = ", ".join(f"{k.removesuffix('_ratio').replace('_', ' ')} {v:.2f}x the champion" for k, v in numbers.items()
                         if k.endswith("_ratio") and k != "max_ratio")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return GateVerdict("latency_and_size", True,
                       f"Within budget: {shown}{'; ' + relative if relative else ''}; {size_bytes / 1e6:.2f} MB.{tail}", numbers)


def data_drift_gate(drift_report: dict, limit: float) -> GateVerdict:
    """monitoring: the share of drifted feature columns, and the share of the champion's importance they carry."""
    share, drifted, weighted = drift_report["drift_share"], drift_report["drifted"], drift_report.get("importance_share")
    numbers = {"drift_share": share, "importance_share": weighted if weighted is not None else "unknown", "max_drift_share": limit,
               "drifted_columns": ", ".join(drifted) or "none"}
    counted = f"{len(drifted)} of {len(drift_report['columns'])} feature columns drifted ({share:.0%}"
    counted += f"; they carry {weighted:.0%} of the champion's feature importance)" if weighted is not None else ")"
    if share > limit or (weighted is not None and weighted > limit):
        unusual = drift_report.get("unusual") or []
        tail = f" Outside the contract's expectations: {'; '.join(unusual[:3])}." if unusual else ""
        reason = f"{counted}, more than {limit:.0%}: {', '.join(drifted)}.{tail}"
        return GateVerdict("data_drift", False, reason, numbers)
    return GateVerdict("data_drift", True, f"{counted}; allowed {limit:.0%} of either.", numbers)


def performance_decay_gate(drift_report: dict, limit: float) -> GateVerdict:
    """monitoring: the champion's primary metric on the newest labeled batches against its value at promotion."""

    perf = drift_report["performance"]
    if perf is None:
        return GateVerdict("performance_decay", False, "The newest batches have no labels, so the champion's performance cannot be measured.")
    now, before, metric = perf["current"], perf["holdout"], perf["metric"]
    numbers = {"metric": metric, "now": now, "holdout": before, "max_decay": limit}
    if before is None or not all(isinstance(v, float) and math.isfinite(v) for v in (now, before)):
        unknown = f"The champion's {metric} could not be compared (now {now}, at promotion {before})."
        return GateVerdict("performance_decay", False, unknown, numbers)
    change = better_by(metric, now, before)  # negative: worse now than at promotion
    if change < -limit:
        decayed = (f"The champion's {metric} went from {before:.4f} at promotion to {now:.4f} on the newest data "
                   f"(worse by {-change:.4f}, allowed {limit:g}).")
        return GateVerdict("performance_decay", False, decayed, numbers)
    held = f"The champion's {metric} is {now:.4f} on the newest data against {before:.4f} at promotion (better by {change:+.4f})."
    return GateVerdict("performance_decay", True, held, numbers)


def operating_point_gate(comparison: dict | None, *, thresholded: bool, champion_version: str | None, tolerance: float,
                         confidence: float = 0.95, champion_error: str | None = None) -> GateVerdict:
    """binary: the candidate's decisions at its own threshold against the champion's at its own, on the same rows
    (evaluate.compatibility): precision and recall always shown; judged on what the candidate's rule promises
    (operating_point.GATED: max_f1 the F1, min_cost the cost, a target rule its target and the other measure). A measure
    fails when its fall is material (below -`tolerance`; for cost, a share of the champion's cost) and real (worse at all
    beyond noise, one-sided at `confidence`)."""
    from mlcicd.core.operating_point import GATED
    from mlcicd.core.stats import worse_p_value

    numbers: dict[str, Any] = {"tolerance": tolerance, "confidence": confidence}
    if not thresholded:
        return GateVerdict("operating_point", True, "This task has no decision threshold: its decisions are judged by the other gates.", numbers)
    if champion_error:
        return GateVerdict("operating_point", False, f"The champion could not be scored, so the operating points cannot be compared: {champion_error}", numbers)
    if champion_version is None:
        return GateVerdict("operating_point", True, "There is no champion yet, so there is no operating point to keep.", numbers)
    if not comparison:
        return GateVerdict("operating_point", False, "The operating-point comparison is missing from the evaluation.", numbers)
    rule = comparison.get("rule", "fixed")
    judged = GATED.get(rule, GATED["fixed"])
    numbers.update({"rule": rule, "judged_on": ", ".join(judged), "candidate_threshold": comparison["candidate_threshold"],
                    "champion_threshold": comparison["champion_threshold"], "positives": comparison["positives"]})
    shown, failures = [], []
    for name in dict.fromkeys((*judged, "precision", "recall")):
        entry = comparison[name]
        mine, theirs, delta, sd = entry["candidate"], entry["champion"], entry["delta"], entry["sd"]
        numbers.update({f"candidate_{name}": mine, f"champion_{name}": theirs, f"{name}_better_by": delta, f"{name}_sd": sd})
        said = (f"{name} {mine:.4f} vs {theirs:.4f} (" + ("saves" if name == "cost" else "better by") + f" {delta:+.4f} ± {sd:.4f})"
                if _finite(delta) and _finite(sd) else f"{name} {mine} vs {theirs}")
        if name not in judged:
            shown.append(said + " [shown, not judged]")
            continue
        if not (_finite(mine) and _finite(theirs) and _finite(sd)):
            failures.append(f"{name} could not be compared (candidate {mine}, champion {theirs}: too few decided positives)")
            continue
        p = worse_p_value(delta, sd, 0.0)
        numbers[f"{name}_p_worse"] = p
        (failures if delta < -tolerance and p < 1 - confidence else shown).append(said)
    head = (f"Under the rule {rule} ({', '.join(judged)} judged), the candidate at its threshold {comparison['candidate_threshold']:.4g} against "
            f"champion version {champion_version} at {comparison['champion_threshold']:.4g}, on the same {comparison['rows']:,} holdout rows "
            f"({comparison['positives']:,} positives)")
    if failures:
        return GateVerdict(
            "operating_point", False,
            head + f": its decisions got materially worse (a fall of more than {tolerance:g}, beyond noise with {confidence:.0%} "
            "confidence): " + "; ".join(failures) + ". Users act on the decisions, not on the ranking: choose the threshold rule "
            "(model.operating_point) that keeps what they rely on, give the validation split more positives (model.validation_fraction), "
            "or accept the change with an override." + (f" ({'; '.join(shown)})" if shown else ""), numbers,
        )
    return GateVerdict("operating_point", True, head + ": " + "; ".join(shown) + f"; no judged fall both beyond {tolerance:g} and beyond noise.", numbers)


def negative_flips_gate(flips: dict | None, *, champion_version: str | None, limit: float, confidence: float = 0.95,
                        correction: str = "holm", champion_error: str | None = None, task: str = "binary") -> GateVerdict:
    """The share of holdout rows the champion got right and the candidate gets wrong (core/flips.py), overall and in
    each judged slice: refused when a rate is above `limit` beyond noise (one-sided, corrected across the slices)."""
    from mlcicd.core.stats import adjust

    numbers: dict[str, Any] = {"max_negative_flip_rate": limit, "confidence": confidence}
    if champion_error:
        return GateVerdict("negative_flips", False, f"The champion could not be scored, so flips cannot be counted: {champion_error}", numbers)
    if champion_version is None:
        return GateVerdict("negative_flips", True, "There is no champion yet, so no decision users relied on can flip.", numbers)
    if not flips or not _finite(flips.get("rate")):
        return GateVerdict("negative_flips", False, "The negative flips could not be counted (no holdout rows with known labels).", numbers)
    numbers.update({"flips": flips["flips"], "rows": flips["rows"], "rate": flips["rate"], "lower_bound": flips["lower"]})
    what = ("the champion got right and the candidate gets wrong (each at its own threshold)" if task_of(task).is_classifier
            else f"whose absolute error grows by more than {flips['tolerance']:g} standard deviations of the target")
    tests = {"overall": flips["p_above"], **{name: entry["p_above"] for name, entry in flips["slices"].items() if entry["rows"]}}
    adjusted = adjust(tests, correction)
    rates = {"overall": flips, **flips["slices"]}
    broken = [name for name in sorted(adjusted, key=lambda k: -rates[k]["rate"]) if adjusted[name] < 1 - confidence and rates[name]["rate"] > limit]
    worst_slice = max(flips["slices"].items(), key=lambda item: item[1]["rate"] if _finite(item[1]["rate"]) else -1, default=None)
    if worst_slice:
        numbers.update({"worst_slice": worst_slice[0], "worst_slice_rate": worst_slice[1]["rate"]})
    head = (f"{flips['flips']:,} of {flips['rows']:,} holdout rows ({flips['rate']:.2%}; {confidence:.0%} lower bound {flips['lower']:.2%}) are "
            f"rows {what}, against champion version {champion_version}")
    if flips.get("at_champion_threshold") is not None:
        moved = flips["flips"] - flips["at_champion_threshold"]
        numbers["flips_from_the_threshold"] = moved
        head += (f" ({flips['at_champion_threshold']:,} would flip with both at the champion's threshold {flips['thresholds'][1]:.4g}; the other "
                 f"{moved:,} come from the threshold moving to {flips['thresholds'][0]:.4g})")
    if broken:
        shown = "; ".join(f"{name}: {rates[name]['flips']:,} of {rates[name]['rows']:,} rows ({rates[name]['rate']:.2%}, adjusted p "
                          f"{adjusted[name]:.3g})" for name in broken)
        return GateVerdict(
            "negative_flips", False,
            head + f". More than {limit:.1%} flipped beyond noise ({correction} correction over {len(tests)} tests) in: {shown}. "
            "Even a better model that breaks this many decisions users relied on is refused; look at those rows before accepting it.", numbers,
        )
    tail = f"; the most in a slice is {worst_slice[0]} ({worst_slice[1]['rate']:.2%} of {worst_slice[1]['rows']:,})" if worst_slice else ""
    return GateVerdict("negative_flips", True, head + f"; within {limit:.1%} overall and in every slice{tail}.", numbers)


def estimated_performance_gate(estimated: dict | None, limit: float) -> GateVerdict:
    """monitoring, before labels arrive: the champion's primary metric estimated from its own probabilities (CBPE,
    core/cbpe.py) on the newest rows it scored, against its holdout value at promotion. Fails when the estimate is below
    it by more than `limit` and the whole simulated range is below it too (a decay beyond the estimate's noise)."""
    if estimated is None:
        return GateVerdict("estimated_performance", False, "The champion's performance could not be estimated (no rows scored).")
    if not estimated.get("estimable"):
        return GateVerdict("estimated_performance", True, estimated["why"], {"estimable": "no"})
    metric, value, low, high, before = estimated["metric"], estimated["estimate"], estimated["low"], estimated["high"], estimated["holdout"]
    numbers = {"metric": metric, "estimate": value, "low": low, "high": high, "holdout": before, "max_decay": limit, "rows": estimated["rows"],
               "source": estimated["source"]}
    if not all(_finite(v) for v in (value, low, high)) or not _finite(before):
        return GateVerdict("estimated_performance", False, f"The {metric} estimate could not be computed (estimate {value}, at promotion "
                           f"{before}).", numbers)
    change = better_by(metric, value, before)
    head = (f"Estimated from the champion's own probabilities (CBPE, no labels needed) on {estimated['rows']:,} rows of "
            f"{estimated['source']}: {metric} {value:.4f} (95% range {low:.4f} to {high:.4f}) against {before:.4f} on its holdout at promotion")
    if change < -limit and better_by(metric, high, before) < 0:
        return GateVerdict("estimated_performance", False, head + f": a decay of {-change:.4f}, more than the allowed {limit:g} and beyond the "
                           "estimate's noise, before any label has arrived.", numbers)
    return GateVerdict("estimated_performance", True, head + f" (better by {change:+.4f}; allowed fall {limit:g}).", numbers)
