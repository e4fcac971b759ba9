"""Dead runs never block the loop. A run whose process died (kill -9, out of memory) stays STARTED forever: the
run queue counts it against `max_concurrent_runs` and the lanes, so new ingestion and training runs wait behind it.
Dagster's run monitoring checks a run's worker only with launchers that can (the K8sRunLauncher); with the default
launcher, and for runs from `dagster job execute`, it applies only the `dagster/max_runtime` timeouts (set per job in
jobs.py). This sensor checks the rest: every pid a STARTED run recorded is gone -> the run is marked failed, with
an alert that names it, and the queue moves on."""

import dagster as dg

from mlcicd.core.alerts import notify
from mlcicd.project import Project

DEAD_RUN = "the run's process died"  # how the failure message starts; run_failure_alert leaves these to this sensor


def recorded_pids(instance: dg.DagsterInstance, run_id: str) -> dict[int, float]:
    """Each pid the run's engine events recorded (the process that executes it), with when it was recorded."""
    pids: dict[int, float] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.engine_event_data if record.dagster_event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None and str(pid.value).isdigit():
            pids.setdefault(int(pid.value), record.timestamp)
    return pids


def sweep(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, str]]:
    """Mark failed every STARTED run whose recorded processes are all gone; returns (run, why) for each."""
    from mlcicd.core.processes import gone

    swept = []
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return swept  # runs in other pods or machines: their launcher's own health check (run monitoring) applies
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        pids = recorded_pids(instance, run.run_id)
        reasons = [gone(pid, at) for pid, at in pids.items()]
        if not pids or not all(reasons):
            continue  # nothing recorded yet (just starting), or alive
        why = f"{DEAD_RUN} ({'; '.join(reasons)}): marked failed so that queued runs can start"
        instance.report_run_failed(run, why)
        swept.append((run, why))
    return swept


def dead_run_sweeper_for(projects: list[Project]) -> dg.SensorDefinition:
    """One sweeper for the project, as often as the most frequent model asks (automation.dead_run_check_seconds; 0 = off)."""
    interval_seconds = min(proj.config.automation.dead_run_check_seconds for proj in projects)

    @dg.sensor(
        name="dead_run_sweeper", minimum_interval_seconds=max(interval_seconds, 1),
        default_status=dg.DefaultSensorStatus.RUNNING if interval_seconds else dg.DefaultSensorStatus.STOPPED,
        description="Marks failed every STARTED run whose process has died, so the run queue moves on; an alert names each run.",
    )
    def dead_run_sweeper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        swept = sweep(context.instance)
        for run, why in swept:
            notify(projects[0].alerts_log, "dead_run", f"{run.job_name} run {run.run_id}: {why}",
                   job=run.job_name, run_id=run.run_id, tags=dict(run.tags))
        return dg.SkipReason(f"{len(swept)} dead run(s) marked failed" if swept else "every STARTED run's process is alive")

    return dead_run_sweeper

