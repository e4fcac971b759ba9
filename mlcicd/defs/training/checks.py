"""Model gates on candidate_evaluation. Blocking: a failure stops `champion` in the same run, and the
promotion job refuses any candidate whose latest gate results are not all passes."""

import dagster as dg

from mlcicd.core.gates import min_metric_gate, no_regression_gate
from mlcicd.gate_checks import check_result
from mlcicd.resources import ProjectResource

from .assets import candidate_evaluation


@dg.asset_check(asset=candidate_evaluation, blocking=True, description="The candidate reaches the absolute floor of the primary metric.")
def min_primary_metric(candidate_evaluation: dict, project: ProjectResource) -> dg.AssetCheckResult:
    gates = project.load().config.gates
    value = candidate_evaluation["candidate"]["metrics"].get(gates.primary_metric)
    return check_result(min_metric_gate(gates.primary_metric, value, gates.min_primary_metric))


@dg.asset_check(asset=candidate_evaluation, blocking=True, description="The candidate is not worse than the champion on the same holdout.")
def no_regression(candidate_evaluation: dict, project: ProjectResource) -> dg.AssetCheckResult:
    gates = project.load().config.gates
    metric = gates.primary_metric
    champion = candidate_evaluation["champion"]
    return check_result(
        no_regression_gate(
            metric,
            candidate_evaluation["candidate"]["metrics"].get(metric),
            (champion.get("metrics") or {}).get(metric) if champion else None,
            champion_version=champion["version"] if champion else None,
            tolerance=gates.max_regression,
            champion_error=candidate_evaluation["champion_error"],
        )
    )


PROMOTION_GATES = [min_primary_metric, no_regression]
