"""Monitoring gates on drift_report (severity ERROR, blocking: a failure fails monitoring_job, so `dagster job execute`
exits non-zero like ci_job; drift_sensor reads them)."""

import dagster as dg

from mlcicd.core.gate_table import BY_NAME
from mlcicd.core.gates import GateVerdict
from mlcicd.core.metrics import better_by
from mlcicd.gate_checks import check_result
from mlcicd.resources import ProjectResource

from .assets import drift_report


@dg.asset_check(asset=drift_report, blocking=BY_NAME["data_drift"].blocking, description=BY_NAME["data_drift"].demands)
def data_drift(drift_report: dict, project: ProjectResource) -> dg.AssetCheckResult:
    limit = project.load().config.monitoring.max_drift_share
    share, drifted, weighted = drift_report["drift_share"], drift_report["drifted"], drift_report.get("importance_share")
    numbers = {"drift_share": share, "importance_share": weighted if weighted is not None else "unknown", "max_drift_share": limit,
               "drifted_columns": ", ".join(drifted) or "none"}
    counted = f"{len(drifted)} of {len(drift_report['columns'])} feature columns drifted ({share:.0%}"
    counted += f"; they carry {weighted:.0%} of the champion's feature importance)" if weighted is not None else ")"
    if share > limit or (weighted is not None and weighted > limit):
        unusual = drift_report.get("unusual") or []
        tail = f" Outside the contract's expectations: {'; '.join(unusual[:3])}." if unusual else ""
        reason = f"{counted}, more than {limit:.0%}: {', '.join(drifted)}.{tail}"
        return check_result(GateVerdict("data_drift", False, reason, numbers))
    return check_result(GateVerdict("data_drift", True, f"{counted}; allowed {limit:.0%} of either.", numbers))


@dg.asset_check(asset=drift_report, blocking=BY_NAME["performance_decay"].blocking, description=BY_NAME["performance_decay"].demands)
def performance_decay(drift_report: dict, project: ProjectResource) -> dg.AssetCheckResult:
    import math

    limit = project.load().config.monitoring.max_decay
    perf = drift_report["performance"]
    if perf is None:
        return check_result(GateVerdict("performance_decay", False, "The newest batches have no labels, so the champion's performance cannot be measured."))
    now, before, metric = perf["current"], perf["holdout"], perf["metric"]
    numbers = {"metric": metric, "now": now, "holdout": before, "max_decay": limit}
    if before is None or not all(isinstance(v, float) and math.isfinite(v) for v in (now, before)):
        unknown = f"The champion's {metric} could not be compared (now {now}, at promotion {before})."
        return check_result(GateVerdict("performance_decay", False, unknown, numbers))
    change = better_by(metric, now, before)  # negative: worse now than at promotion
    if change < -limit:
        decayed = (f"The champion's {metric} went from {before:.4f} at promotion to {now:.4f} on the newest data "
                   f"(worse by {-change:.4f}, allowed {limit:g}).")
        return check_result(GateVerdict("performance_decay", False, decayed, numbers))
    held = f"The champion's {metric} is {now:.4f} on the newest data against {before:.4f} at promotion (better by {change:+.4f})."
    return check_result(GateVerdict("performance_decay", True, held, numbers))

