"""Alerts (RUNNING by default): failed runs and failed gates become notices in data/alerts/alerts.jsonl,
and are posted to $MLCICD_ALERT_WEBHOOK_URL where it is set."""

import json

import dagster as dg

from mlcicd.core.alerts import notify
from mlcicd.gate_checks import every_check_key
from mlcicd.resources import ProjectResource

from ..jobs import rollback_job
from .dead_runs import DEAD_RUN


def alerts_log(project: ProjectResource):
    return project.load().data_dir / "alerts" / "alerts.jsonl"


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, description="A notice for every failed run, with its error.")
def run_failure_alert(context: dg.RunFailureSensorContext, project: ProjectResource) -> None:
    run = context.dagster_run
    error = context.failure_event.message or "the run failed"
    if error.startswith(DEAD_RUN):
        return  # dead_run_sweeper marked it failed and has sent its own notice, naming the run
    notify(alerts_log(project), "run_failure", f"{run.job_name} failed: {error}", job=run.job_name, run_id=run.run_id, tags=dict(run.tags))


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING, description="A notice for every failed gate (blocking or monitoring).")
def gate_failure_alert(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SkipReason:
    last_seen = int(context.cursor or 0)
    keys = every_check_key()  # every gate in the table that is a Dagster check (core/gate_table.py)
    newest, sent = last_seen, 0
    for key in keys:
        for record in context.instance.event_log_storage.get_asset_check_execution_history(key, limit=50):
            evaluation = record.event.asset_check_evaluation if record.event else None
            if record.id <= last_seen or evaluation is None:
                continue
            newest = max(newest, record.id)
            if not evaluation.passed:
                notify(
                    alerts_log(project), "gate_failure", f"gate {key.name} on {key.asset_key.to_user_string()} failed: {evaluation.description}",
                    gate=key.name, asset=key.asset_key.to_user_string(), run_id=record.run_id,
                )
                sent += 1
    context.update_cursor(json.dumps(newest))
    return dg.SkipReason(f"{sent} gate failure notice(s) sent")


@dg.sensor(job=rollback_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="The champion alias against the audit trail: an alias moved outside the pipeline is an alert (once per version), "
                       "and with promotion.revert_unaudited a rollback_job back to the audited version.")
def unaudited_champion_alert(context: dg.SensorEvaluationContext, project: ProjectResource):
    from mlcicd.core.audit import audited_champion, unaudited
    from mlcicd.mlflow_registry import CHAMPION, version_by_alias

    proj = project.load()
    name = proj.model_name("full")
    champion = version_by_alias(proj, name, CHAMPION)
    version = str(champion.version) if champion else None
    problem = unaudited(proj.audit_log, name, version)
    if problem is None:
        context.update_cursor("")
        return dg.SkipReason(f"the champion alias of {name} is where the audit trail last moved it")
    if context.cursor != version:  # one notice per unaudited version, not one per tick
        notify(alerts_log(project), "unaudited_champion", problem, model=name, version=version)
        context.update_cursor(version)
    audited = audited_champion(proj.audit_log, name)
    if not proj.config.promotion.revert_unaudited or audited is None:
        return dg.SkipReason(f"{problem}; alerted (promotion.revert_unaudited is off: scoring and serving refuse it)")
    reason = f"revert: {problem}"
    return dg.RunRequest(
        run_key=f"revert-unaudited-{version}-to-{audited}",  # once: a refused rollback is not asked for again every minute
        run_config={"ops": {"roll_back": {"config": {"to_version": audited, "reason": reason[:900], "requested_by": "sensor unaudited_champion_alert"}}}},
        tags={"mlcicd/trigger": "unaudited_champion", "mlcicd/reason": reason[:1000]},
    )
