"""Gate verdicts: pure decisions with a one-sentence reason and the numbers behind it.

Every gate fails closed: a missing or non-finite number is a failure that says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlcicd.core.ingest import BatchVerdict


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


def min_metric_gate(metric: str, value: float | None, floor: float) -> GateVerdict:
    numbers = {"metric": metric, "value": value, "floor": floor}
    if not _finite(value):
        return GateVerdict(
            "min_primary_metric", False, f"The candidate's {metric} could not be computed on the holdout (got {value}), so it cannot pass.", numbers
        )
    if value < floor:
        return GateVerdict("min_primary_metric", False, f"The candidate's {metric} is {value:.4f}, below the required {floor:.4f}.", numbers)
    return GateVerdict("min_primary_metric", True, f"The candidate's {metric} is {value:.4f}, at or above the required {floor:.4f}.", numbers)


def no_regression_gate(
    metric: str,
    candidate: float | None,
    champion: float | None,
    *,
    champion_version: str | None,
    tolerance: float,
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
    delta = candidate - champion
    numbers["delta"] = delta
    if delta < -tolerance:
        return GateVerdict(
            "no_regression",
            False,
            f"The candidate's {metric} is {candidate:.4f} against the champion (version {champion_version})'s {champion:.4f} "
            f"on the same holdout: {delta:+.4f}, worse than the allowed -{tolerance:.4f}.",
            numbers,
        )
    return GateVerdict(
        "no_regression",
        True,
        f"The candidate's {metric} is {candidate:.4f} against the champion (version {champion_version})'s {champion:.4f} "
        f"on the same holdout ({delta:+.4f}, within the allowed -{tolerance:.4f}).",
        numbers,
    )
