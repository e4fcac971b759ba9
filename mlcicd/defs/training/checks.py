"""Model gates on candidate_evaluation: they judge the stored evaluation record (the evidence is computed
once, in candidate_evaluation). Blocking: a failure stops `champion` in the same run, and promotion_job
refuses any candidate whose latest gate results are not all passes for exactly its evaluation."""

import dagster as dg

from mlcicd.core import gates
from mlcicd.gate_checks import check_result
from mlcicd.resources import ProjectResource, run_tier

from .assets import candidate_evaluation, training_dataset

# Declarative automation runs a separate check only when the check has a condition of its own: without
# this, a candidate retrained by retrain_on_new_data would carry no gate results (and never be promoted).
RUN_WITH_EVALUATION = dg.AutomationCondition.eager()


def _champion(evaluation: dict) -> tuple[dict | None, str | None]:
    champion = evaluation["champion"]
    return champion, champion["version"] if champion else None


@dg.asset_check(asset=candidate_evaluation, blocking=True, automation_condition=RUN_WITH_EVALUATION, description="The candidate meets the absolute floors and ceilings (gates.min_metrics, gates.max_metrics).")
def meets_thresholds(candidate_evaluation: dict, project: ProjectResource) -> dg.AssetCheckResult:
    spec = project.load().config.gates
    return check_result(gates.thresholds_gate(candidate_evaluation["candidate"]["metrics"], spec.min_metrics, spec.max_metrics))


@dg.asset_check(asset=candidate_evaluation, blocking=True, automation_condition=RUN_WITH_EVALUATION, description="With the noise in mind (paired bootstrap), the candidate is not worse than the champion.")
def no_regression(candidate_evaluation: dict, project: ProjectResource) -> dg.AssetCheckResult:
    spec = project.load().config.gates
    metric = candidate_evaluation["primary_metric"]
    champion, version = _champion(candidate_evaluation)
    return check_result(
        gates.no_regression_gate(
            metric,
            candidate_evaluation["candidate"]["metrics"].get(metric),
            ((champion or {}).get("metrics") or {}).get(metric),
            champion_version=version,
            tolerance=spec.max_regression,
            bootstrap=candidate_evaluation["comparison"],
            confidence=spec.regression_confidence,
            champion_error=candidate_evaluation["champion_error"],
        )
    )


@dg.asset_check(asset=candidate_evaluation, blocking=True, automation_condition=RUN_WITH_EVALUATION, description="No slice (a value of a slice column with enough rows) regresses beyond its tolerance.")
def no_slice_regression(candidate_evaluation: dict, project: ProjectResource) -> dg.AssetCheckResult:
    spec = project.load().config.gates
    champion, version = _champion(candidate_evaluation)
    if candidate_evaluation["champion_error"]:
        return check_result(gates.GateVerdict("no_slice_regression", False, f"The champion could not be scored: {candidate_evaluation['champion_error']}"))
    return check_result(
        gates.slice_gate(
            candidate_evaluation["primary_metric"], candidate_evaluation["candidate"]["slices"], (champion or {}).get("slices"),
            champion_version=version, tolerance=spec.max_slice_regression,
        )
    )


@dg.asset_check(asset=candidate_evaluation, blocking=True, automation_condition=RUN_WITH_EVALUATION, description="The candidate is calibrated within gates.max_calibration_error (probabilities for classifiers, no bias for regression).")
def calibration(candidate_evaluation: dict, project: ProjectResource) -> dg.AssetCheckResult:
    bound = project.load().config.gates.max_calibration_error
    candidate = candidate_evaluation["candidate"]
    return check_result(gates.calibration_gate(candidate["calibration_error"], bound, candidate.get("task", "binary")))


@dg.asset_check(asset=candidate_evaluation, blocking=True, automation_condition=RUN_WITH_EVALUATION, description="Prediction latency (p95, 1 row and 1,000 rows) and model size are within budget.")
def latency_and_size(candidate_evaluation: dict, project: ProjectResource) -> dg.AssetCheckResult:
    spec = project.load().config.gates
    candidate = candidate_evaluation["candidate"]
    return check_result(gates.budget_gate(candidate["latency"], candidate["size_bytes"], spec.latency.model_dump(exclude={"repeats"}), spec.max_model_size_mb))


def current_dataset_version(instance: dg.DagsterInstance) -> str | None:
    """The data version of training_dataset's latest materialization."""
    event = instance.get_latest_materialization_event(training_dataset.key)
    return event.dagster_event.step_materialization_data.materialization.tags.get("dagster/data_version") if event else None


def identity_problems(instance: dg.DagsterInstance, proj, evaluation: dict, model_name: str) -> list[str]:
    """Why this evaluation is not evidence for the candidate waiting now (empty when it is)."""
    from mlcicd.mlflow_registry import CHALLENGER, version_by_alias

    problems = []
    version = str(evaluation["candidate"]["version"])
    if evaluation["model_name"] != model_name:
        problems.append(f"the latest evaluation is of {evaluation['model_name']} ({evaluation['tier']} tier), not {model_name}")
    challenger = version_by_alias(proj, model_name, CHALLENGER)
    if challenger is not None and str(challenger.version) != version:
        problems.append(f"the latest evaluation is of version {version}, but the candidate waiting is version {challenger.version}; evaluate it first")
    dataset_now = current_dataset_version(instance)
    if evaluation["dataset_hash"] != dataset_now:
        problems.append(f"the evaluation used dataset {evaluation['dataset_hash'][:12]}, but the current dataset is {str(dataset_now)[:12]}")
    return problems


@dg.asset_check(
    asset=candidate_evaluation, blocking=True, automation_condition=RUN_WITH_EVALUATION,
    description="The evaluation is of exactly the candidate waiting (`challenger`) and of the current training_dataset version.",
)
def identity(context: dg.AssetCheckExecutionContext, candidate_evaluation: dict, project: ProjectResource) -> dg.AssetCheckResult:
    proj = project.load()
    problems = identity_problems(context.instance, proj, candidate_evaluation, proj.model_name(run_tier(context)))
    if problems:
        return check_result(gates.GateVerdict("identity", False, "The evaluation is not evidence for the candidate waiting: " + "; ".join(problems) + "."))
    version = candidate_evaluation["candidate"]["version"]
    return check_result(
        gates.GateVerdict(
            "identity", True,
            f"The evaluation is of version {version}, the candidate waiting, on the current dataset {candidate_evaluation['dataset_hash'][:12]}.",
            {"candidate_version": version, "dataset_hash": candidate_evaluation["dataset_hash"]},
        )
    )


MODEL_GATES = [meets_thresholds, no_regression, no_slice_regression, calibration, latency_and_size, identity]
