"""Serving on a cadence: serving_metrics every few minutes, and rollback_job when the live version breaches
its budget (an ERROR result of serving_within_budget; "not enough traffic" is a WARN and starts nothing). Both run
by default only with serving.enabled, so they are built from the config the definitions were built with."""

import dagster as dg

from mlcicd.names import Names
from mlcicd.project import Project


def serving_automation_for(n: Names, proj: Project, jobs: dict) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    on = dg.DefaultSensorStatus.RUNNING if proj.config.serving.enabled else dg.DefaultSensorStatus.STOPPED
    schedule = dg.ScheduleDefinition(
        name=n.schedule("serving_monitoring"),
        job=jobs["serving_monitor_job"],
        cron_schedule="*/5 * * * *",
        default_status=dg.DefaultScheduleStatus(on.value),
        description="serving_metrics every 5 minutes: the live version's budget and the canary's comparison.",
    )
    sensor = dg.SensorDefinition(
        name=n.sensor("rollback_on_serving_breach"), evaluation_fn=lambda context: rollback_on_serving_breach(context, n),
        job=jobs["rollback_job"], minimum_interval_seconds=30,
        default_status=on,
        description="Starts rollback_job once for each breach of the live version's budget (serving_within_budget failed with ERROR).",
    )
    return [schedule], [sensor]


def rollback_on_serving_breach(context: dg.SensorEvaluationContext, n: Names):
    last_seen = int(context.cursor or 0)
    budget = n.check("serving_metrics", "serving_within_budget")
    records = context.instance.event_log_storage.get_asset_check_execution_history(budget, limit=20)
    fresh = [r for r in records if r.id > last_seen and r.event and r.event.asset_check_evaluation]
    if not fresh:
        return dg.SkipReason("no new result of serving_within_budget")
    newest = max(fresh, key=lambda r: r.id)
    context.update_cursor(str(newest.id))
    evaluation = newest.event.asset_check_evaluation
    if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
        return dg.SkipReason(f"the latest budget check {'passed' if evaluation.passed else 'could not judge yet'}: {evaluation.description}")
    reason = f"serving budget breached: {evaluation.description}"
    return dg.RunRequest(
        run_key=f"serving-breach-{newest.id}",
        run_config={"ops": {n.op("roll_back"): {"config": {"reason": reason[:1000], "requested_by": "sensor rollback_on_serving_breach"}}}},
        tags={"mlcicd/rollback_reason": reason[:200]},
    )
