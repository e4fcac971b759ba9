"""champion: moves the MLflow `champion` alias, only when every gate passed for exactly this candidate."""

import dagster as dg

from mlcicd.core.audit import AuditRecord, append
from mlcicd.resources import ProjectResource, run_tier

from ..training.assets import candidate_evaluation
from ..training.checks import PROMOTION_GATES


def triggered_by(run: dg.DagsterRun) -> str:
    tags = run.tags
    for key, label in (("dagster/sensor_name", "sensor"), ("dagster/schedule_name", "schedule"), ("dagster/backfill", "backfill")):
        if key in tags:
            return f"{label} {tags[key]}"
    who = tags.get("dagster/user") or tags.get("user")
    return f"{run.job_name} started by {who}" if who else f"{run.job_name} started by hand (UI or CLI)"


def gate_results(instance: dg.DagsterInstance) -> tuple[dict[str, dict], str | None]:
    """The latest result of every promotion gate, and the run of candidate_evaluation's latest materialization."""
    latest = instance.get_latest_materialization_event(candidate_evaluation.key)
    evaluation_run = latest.run_id if latest else None
    results = {}
    for check in PROMOTION_GATES:
        (key,) = check.check_keys
        record = instance.get_latest_asset_check_evaluation_record(key)
        evaluation = record.event.asset_check_evaluation if record and record.event else None
        if evaluation is None:
            results[key.name] = {"passed": False, "reason": "this gate has no result: it never ran (or is still running)"}
            continue
        target = evaluation.target_materialization_data
        reason = evaluation.description or ""
        if target is None or target.run_id != evaluation_run:
            results[key.name] = {"passed": False, "reason": "its latest result is for an older evaluation, not the current one"}
        else:
            results[key.name] = {"passed": bool(evaluation.passed), "reason": reason}
    return results, evaluation_run


@dg.asset(
    group_name="promotion",
    kinds={"mlflow"},
    description=(
        "The production model: the MLflow alias `champion`. Materialized by promotion_job, which re-checks that every "
        "gate passed for exactly the candidate being promoted, then moves the alias and writes the audit record."
    ),
)
def champion(context: dg.AssetExecutionContext, candidate_evaluation: dict, project: ProjectResource) -> dg.Output[dict]:
    from mlcicd.mlflow_registry import CHALLENGER, CHAMPION, move_champion, version_by_alias

    proj = project.load()
    tier = run_tier(context)
    name = proj.model_name(tier)
    candidate = candidate_evaluation["candidate"]
    version = str(candidate["version"])
    current = version_by_alias(proj, name, CHAMPION)
    challenger = version_by_alias(proj, name, CHALLENGER)
    gates, _ = gate_results(context.instance)
    problems = [f"gate {gate} did not pass: {result['reason']}" for gate, result in gates.items() if not result["passed"]]
    if candidate_evaluation["model_name"] != name:
        problems.append(f"the latest evaluation is of {candidate_evaluation['model_name']} ({candidate_evaluation['tier']} tier), not {name}")
    elif challenger is not None and str(challenger.version) != version and str(current.version if current else "") != version:
        problems.append(f"the latest evaluation is of version {version} but the newest candidate is version {challenger.version}; evaluate it first")

    record = dict(
        model_name=name,
        from_version=str(current.version) if current else None,
        to_version=version,
        triggered_by=triggered_by(context.run),
        dagster_run_id=context.run.run_id,
        dataset_hash=candidate_evaluation["dataset_hash"],
        metrics={"candidate": candidate["metrics"], "champion": (candidate_evaluation["champion"] or {}).get("metrics")},
        gates=gates,
    )
    if problems:
        reason = "Promotion refused: " + "; ".join(problems) + "."
        append(proj.audit_log, AuditRecord(decision="refused", reason=reason, **record))
        raise dg.Failure(description=reason, metadata={"candidate_version": version, "champion_version": record["from_version"] or "none"})

    primary = candidate_evaluation["primary_metric"]
    score = candidate["metrics"][primary]
    if current is not None and str(current.version) == version:
        decision, reason = "unchanged", f"Version {version} is already the champion; nothing to do."
    else:
        decision = "promoted"
        reason = (
            f"promoted because every gate passed for version {version}: "
            + "; ".join(f"{g}: {r['reason']}" for g, r in gates.items())
        )
        move_champion(
            proj,
            name,
            version,
            tags={
                "promoted_at_run": context.run.run_id,
                "promotion_reason": reason,
                f"holdout_{primary}": f"{score:.6f}",
                "holdout_rows": candidate_evaluation["holdout_rows"],
                "replaced_version": record["from_version"] or "none",
            },
        )
    append(proj.audit_log, AuditRecord(decision=decision, reason=reason, **record))
    context.log.info(reason)
    value = {"model_name": name, "version": version, "previous_version": record["from_version"], "decision": decision, "reason": reason, primary: score}
    return dg.Output(
        value,
        metadata={
            "decision": decision,
            "champion_version": version,
            "previous_version": record["from_version"] or "none",
            primary: score,
            "reason": dg.MetadataValue.text(reason),
        },
    )
