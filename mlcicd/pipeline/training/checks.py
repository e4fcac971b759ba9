"""Model gates on candidate_evaluation: they judge the stored evaluation record (the evidence is computed
once, in candidate_evaluation). Blocking: a failure stops `champion` in the same run, and promotion_job
refuses any candidate whose latest gate results are not all passes for exactly its evaluation."""

import dagster as dg

from mlcicd.core import gate_table, gates
from mlcicd.gate_checks import check_result, check_specs
from mlcicd.names import Names, names
from mlcicd.project import Project
from mlcicd.resources import run_tier

# Declarative automation runs a separate check only when the check has a condition of its own: without
# this, a candidate retrained by retrain_on_new_data would carry no gate results (and never be promoted).
RUN_WITH_EVALUATION = dg.AutomationCondition.eager()


def _champion(evaluation: dict) -> tuple[dict | None, str | None]:
    champion = evaluation["champion"]
    return champion, champion["version"] if champion else None


def meets_thresholds(evaluation: dict, proj, context) -> gates.GateVerdict:
    spec = proj.config.gates
    return gates.thresholds_gate(evaluation["candidate"]["metrics"], spec.min_metrics, spec.max_metrics)


def no_regression(evaluation: dict, proj, context) -> gates.GateVerdict:
    spec = proj.config.gates
    metric = evaluation["primary_metric"]
    champion, version = _champion(evaluation)
    return gates.no_regression_gate(
        metric,
        evaluation["candidate"]["metrics"].get(metric),
        ((champion or {}).get("metrics") or {}).get(metric),
        champion_version=version,
        tolerance=spec.max_regression,
        bootstrap=evaluation["comparison"],
        confidence=spec.regression_confidence,
        champion_error=evaluation["champion_error"],
        rows=evaluation["holdout_rows"],
    )


def no_slice_regression(evaluation: dict, proj, context) -> gates.GateVerdict:
    champion, version = _champion(evaluation)
    if evaluation["champion_error"]:
        return gates.GateVerdict("no_slice_regression", False, f"The champion could not be scored: {evaluation['champion_error']}")
    spec = proj.config.gates
    return gates.slice_gate(
        evaluation["primary_metric"], evaluation["candidate"]["slices"], (evaluation["comparison"] or {}).get("slices"),
        champion_version=version, tolerance=spec.max_slice_regression, at_promotion=(champion or {}).get("at_promotion"),
        correction=spec.slice_correction, confidence=spec.regression_confidence, min_rows=spec.slice_min_rows,
    )


def label_quality(evaluation: dict, proj, context) -> gates.GateVerdict:
    champion, version = _champion(evaluation)
    if evaluation["champion_error"]:
        return gates.GateVerdict("label_quality", False, f"The champion could not be scored: {evaluation['champion_error']}")
    metric = evaluation["primary_metric"]
    return gates.label_quality_gate(
        metric, ((champion or {}).get("metrics") or {}).get(metric), (champion or {}).get("metric_sd"), evaluation["holdout_rows"],
        champion_version=version, at_promotion=(champion or {}).get("at_promotion"), tolerance=proj.config.gates.max_champion_drop,
    )


def operating_point(evaluation: dict, proj, context) -> gates.GateVerdict:
    from mlcicd.core.tasks import task_of

    spec = proj.config.gates
    return gates.operating_point_gate(
        evaluation.get("operating_point"), thresholded=task_of(evaluation["candidate"]["task"]).thresholded,
        champion_version=_champion(evaluation)[1], tolerance=spec.max_operating_point_drop, confidence=spec.regression_confidence,
        champion_error=evaluation["champion_error"],
    )


def negative_flips(evaluation: dict, proj, context) -> gates.GateVerdict:
    spec = proj.config.gates
    return gates.negative_flips_gate(
        evaluation.get("negative_flips"), champion_version=_champion(evaluation)[1], limit=spec.max_negative_flip_rate,
        confidence=spec.regression_confidence, correction=spec.slice_correction, champion_error=evaluation["champion_error"],
        task=evaluation["candidate"]["task"],
    )


def calibration(evaluation: dict, proj, context) -> gates.GateVerdict:
    candidate = evaluation["candidate"]
    return gates.calibration_gate(
        candidate["calibration_error"], proj.config.gates.max_calibration_error, candidate["task"], candidate.get("calibration_noise"),
        evaluation["holdout_rows"],
    )


def latency_and_size(evaluation: dict, proj, context) -> gates.GateVerdict:
    spec = proj.config.gates
    candidate = evaluation["candidate"]
    champion = evaluation["champion"] or {}
    return gates.budget_gate(
        candidate["latency"], candidate["size_bytes"], spec.latency.budgets_ms, spec.max_model_size_mb,
        max_ratio=spec.latency.max_ratio, champion_latency=champion.get("latency"),
    )


def current_dataset_version(instance: dg.DagsterInstance, proj: Project, tier: str) -> str | None:
    """The data version of training_dataset's latest materialization in `tier`."""
    from mlcicd.tiers import latest_materialization

    record = latest_materialization(instance, names(proj).key("training_dataset"), tier)
    return record.asset_materialization.tags.get("dagster/data_version") if record else None


def identity_problems(instance: dg.DagsterInstance, proj, evaluation: dict, model_name: str, tier: str) -> list[str]:
    """Why this evaluation is not evidence for the candidate waiting now (empty when it is)."""
    from mlcicd.mlflow_registry import CHALLENGER, version_by_alias

    problems = []
    version = str(evaluation["candidate"]["version"])
    if evaluation["model_name"] != model_name:
        problems.append(f"the latest evaluation is of {evaluation['model_name']} ({evaluation['tier']} tier), not {model_name}")
    challenger = version_by_alias(proj, model_name, CHALLENGER)
    if challenger is not None and str(challenger.version) != version and not evaluation.get("unchanged"):
        problems.append(f"the latest evaluation is of version {version}, but the candidate waiting is version {challenger.version}; evaluate it first")
    dataset_now = current_dataset_version(instance, proj, tier)
    if evaluation["dataset_hash"] != dataset_now:
        problems.append(f"the evaluation used dataset {evaluation['dataset_hash'][:12]}, but the current dataset is {str(dataset_now)[:12]}")
    return problems


def identity(evaluation: dict, proj, context) -> gates.GateVerdict:
    problems = identity_problems(context.instance, proj, evaluation, proj.model_name(run_tier(context)), run_tier(context))
    if problems:
        return gates.GateVerdict("identity", False, "The evaluation is not evidence for the candidate waiting: " + "; ".join(problems) + ".")
    version = evaluation["candidate"]["version"]
    return gates.GateVerdict(
        "identity", True,
        f"The evaluation is of version {version}, the candidate waiting, on the current dataset {evaluation['dataset_hash'][:12]}.",
        {"candidate_version": version, "dataset_hash": evaluation["dataset_hash"]},
    )


# Each model gate's judge (the gates themselves, their order and descriptions: core/gate_table.py). One step judges
# them all; each is its own blocking check.
JUDGES = {
    "label_quality": label_quality,
    "meets_thresholds": meets_thresholds,
    "no_regression": no_regression,
    "no_slice_regression": no_slice_regression,
    "operating_point": operating_point,
    "negative_flips": negative_flips,
    "calibration": calibration,
    "latency_and_size": latency_and_size,
    "identity": identity,
}


def model_gates_for(n: Names, proj: Project) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=n.op("model_gates"),
        specs=check_specs(n, "candidate_evaluation", automation_condition=RUN_WITH_EVALUATION),
        can_subset=True,
        ins={"evaluation": dg.AssetIn(key=n.key("candidate_evaluation"))},
        description="The model gates on candidate_evaluation, judged in one step (one step per gate cost about 0.3 s a run).",
    )
    def model_gates(context: dg.AssetCheckExecutionContext, evaluation: dict):
        selected = {key.name for key in context.selected_asset_check_keys}
        for gate in gate_table.on("candidate_evaluation"):
            if gate.name in selected:
                yield check_result(JUDGES[gate.name](evaluation, proj, context), asset_key=n.key("candidate_evaluation"))

    return model_gates


