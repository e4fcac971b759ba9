"""The monitoring gates' judges on a drift report (wired as checks of drift_report in assets.py)."""

from mlcicd.core.gates import GateVerdict
from mlcicd.core.metrics import better_by


def data_drift(drift_report: dict, limit: float) -> GateVerdict:
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


def performance_decay(drift_report: dict, limit: float) -> GateVerdict:
    import math

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

