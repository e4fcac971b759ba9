"""Alerts (RUNNING by default): failed runs and failed gates become notices in data/alerts/alerts.jsonl (one file for
the project), and are posted to $MLCICD_ALERT_WEBHOOK_URL where it is set; a champion alias moved outside the pipeline
is an alert per model."""

import json

import dagster as dg

from mlcicd.core.alerts import notify
from mlcicd.gate_checks import every_check_key
from mlcicd.names import Names, names
from mlcicd.project import Project

from .dead_runs import DEAD_RUN


def project_alerts(projects: list[Project]) -> list[dg.SensorDefinition]:
    """The project's alert sensors: every failed run, every failed gate of every model."""
    log = projects[0].alerts_log

    @dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, description="A notice for every failed run, with its error.")
    def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        error = context.failure_event.message or "the run failed"
        if error.startswith(DEAD_RUN):
            return  # dead_run_sweeper marked it failed and has sent its own notice, naming the run
        notify(log, "run_failure", f"{run.job_name} failed: {error}", job=run.job_name, run_id=run.run_id, tags=dict(run.tags))

    @dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
               description="A notice for every failed gate of every model (blocking or monitoring).")
    def gate_failure_alert(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        last_seen = int(context.cursor or 0)
        keys = [key for proj in projects for key in every_check_key(names(proj))]  # every gate in the table that is a Dagster check
        newest, sent = last_seen, 0
        for key in keys:
            for record in context.instance.event_log_storage.get_asset_check_execution_history(key, limit=50):
                evaluation = record.event.asset_check_evaluation if record.event else None
                if record.id <= last_seen or evaluation is None:
                    continue
                newest = max(newest, record.id)
                if not evaluation.passed:
                    notify(
                        log, "gate_failure", f"gate {key.name} on {key.asset_key.to_user_string()} failed: {evaluation.description}",
                        gate=key.name, asset=key.asset_key.to_user_string(), model=key.asset_key.path[0], run_id=record.run_id,
                    )
                    sent += 1
        context.update_cursor(json.dumps(newest))
        return dg.SkipReason(f"{sent} gate failure notice(s) sent")

    return [run_failure_alert, gate_failure_alert]


def unaudited_champion_alert_for(n: Names, proj: Project, jobs: dict) -> dg.SensorDefinition:
    @dg.sensor(
        name=n.sensor("unaudited_champion_alert"), job=jobs["rollback_job"], minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="The champion alias against the audit trail: an alias moved outside the pipeline is an alert (once per version), "
                    "and with promotion.revert_unaudited a rollback_job back to the audited version.",
    )
    def unaudited_champion_alert(context: dg.SensorEvaluationContext):
        return check_alias(context, n, proj)

    return unaudited_champion_alert


def check_alias(context: dg.SensorEvaluationContext, n: Names, proj: Project):
    from mlcicd.core.audit import audited_champion, unaudited
    from mlcicd.mlflow_registry import CHAMPION, version_by_alias

    name = proj.model_name("full")
    champion = version_by_alias(proj, name, CHAMPION)
    version = str(champion.version) if champion else None
    problem = unaudited(proj.audit_log, name, version)
    if problem is None:
        context.update_cursor("")
        return dg.SkipReason(f"the champion alias of {name} is where the audit trail last moved it")
    if context.cursor != version:  # one notice per unaudited version, not one per tick
        notify(proj.alerts_log, "unaudited_champion", problem, model=name, version=version)
        context.update_cursor(version)
    audited = audited_champion(proj.audit_log, name)
    if not proj.config.promotion.revert_unaudited or audited is None:
        return dg.SkipReason(f"{problem}; alerted (promotion.revert_unaudited is off: scoring and serving refuse it)")
    reason = f"revert: {problem}"
    config = {"to_version": audited, "reason": reason[:900], "requested_by": "sensor unaudited_champion_alert"}
    return dg.RunRequest(
        run_key=f"revert-unaudited-{version}-to-{audited}",  # once: a refused rollback is not asked for again every minute
        run_config={"ops": {n.op("roll_back"): {"config": config}}},
        tags={"mlcicd/trigger": "unaudited_champion", "mlcicd/reason": reason[:1000]},
    )
