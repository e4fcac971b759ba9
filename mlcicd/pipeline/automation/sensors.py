"""One model's loop that runs by itself: new files are ingested, new data retrains, a good candidate is promoted (auto mode).

- landing_sensor: one ingestion_job run per new, complete file (run key: name + content hash).
- retrain_on_new_data: Dagster's declarative automation. The training assets carry
  `eager() & all_deps_blocking_checks_passed()` (RETRAIN_ON_NEW_DATA in training/assets.py), so an accepted batch
  re-materializes training_dataset and everything after it, and a failed blocking gate stops it.
  Chosen over a hand-written sensor because Dagster then owns what to rerun, dedupes concurrent
  triggers and shows the reason for every request in the UI.
- promote_after_training / decide_after_failed_gates: after a run that materialized candidate_evaluation,
  runs promotion_job when promotion.mode is auto; it re-verifies every gate, so it promotes, or refuses
  and records why.
- drift_sensor: retrains when monitoring_job's drift or decay checks fail in K windows in a row,
  then waits out a cooldown; each run it starts carries its reason as tags.
"""

import json
import time

import dagster as dg

from mlcicd.core import gate_table
from mlcicd.core.landing import scan
from mlcicd.core.monitoring import RetrainState, retrain_decision
from mlcicd.gate_checks import gate_key
from mlcicd.names import Names
from mlcicd.project import Project
from mlcicd.tiers import latest_materialization

from ..jobs import training_selection


def sensors_for(n: Names, proj: Project, jobs: dict) -> list[dg.SensorDefinition]:
    """One model's loop: its landing sensor, declarative retraining, promotion after training (auto mode), the drift
    sensor and monitoring after ingestion."""
    running = dg.DefaultSensorStatus.RUNNING

    @dg.sensor(
        name=n.sensor("landing_sensor"), job=jobs["ingestion_job"], default_status=running,
        minimum_interval_seconds=proj.config.automation.landing_interval_seconds,
        description="One ingestion run per new file in the landing folder, once the file is completely written.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return landed(context, n, proj)

    retrain_on_new_data = dg.AutomationConditionSensorDefinition(
        n.sensor("retrain_on_new_data"), target=training_selection([n]), default_status=running, minimum_interval_seconds=5,
        description="Re-materializes the training assets when new data is accepted, never past a failed blocking gate.",
    )

    def after_training(name: str, status: dg.DagsterRunStatus, outcome: str, description: str):
        @dg.run_status_sensor(
            name=n.sensor(name), run_status=status, request_job=jobs["promotion_job"], minimum_interval_seconds=5, default_status=running,
            description=description,
        )
        def decide_after(context: dg.RunStatusSensorContext):
            return decide_after_training(context, n, proj, outcome)

        return decide_after

    @dg.sensor(
        name=n.sensor("drift_sensor"), job=jobs["training_job"], minimum_interval_seconds=30, default_status=running,
        description="Retrains when monitoring confirms drift or decay: K bad windows in a row, then a cooldown.",
    )
    def drift_sensor(context: dg.SensorEvaluationContext):
        return drifted(context, n, proj)

    @dg.run_status_sensor(
        name=n.sensor("monitor_after_ingestion"), run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[jobs["ingestion_job"]],
        request_job=jobs["monitoring_job"], minimum_interval_seconds=15, default_status=running,
        description="Measures drift and decay as soon as a new batch has been accepted (hourly_monitoring covers the rest).",
    )
    def monitor_after_ingestion(context: dg.RunStatusSensorContext):
        return monitor_if_accepted(context, n, proj)

    return [
        landing_sensor, retrain_on_new_data,
        after_training("promote_after_training", dg.DagsterRunStatus.SUCCESS, "succeeded",
                       "In auto mode, runs promotion_job after every successful run that produced a new candidate_evaluation."),
        after_training("decide_after_failed_gates", dg.DagsterRunStatus.FAILURE, "failed a gate",
                       "In auto mode, runs promotion_job after a run whose new candidate failed a gate, so that the refusal and "
                       "its reasons are recorded in the audit trail like every other decision."),
        drift_sensor, monitor_after_ingestion,
    ]


def landed(context: dg.SensorEvaluationContext, n: Names, proj: Project) -> dg.SensorResult:
    seen = json.loads(context.cursor) if context.cursor else {}
    ready, state = scan(proj.landing_dir, seen, time.time(), proj.config.automation.settle_seconds)
    requests = [
        dg.RunRequest(
            run_key=landed.run_key,
            run_config={"ops": {n.op("raw_batch"): {"config": {"files": [landed.path.name]}}}},
            tags={"mlcicd/trigger": "landing", "mlcicd/file": landed.path.name, "mlcicd/content_sha256": landed.content_hash},
        )
        for landed in ready
    ]
    waiting = len(state) - len(ready)
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps(state),
        skip_reason=None if requests else f"no new complete file in {proj.landing_dir}" + (f" ({waiting} still settling)" if waiting else ""),
    )


def decide_after_training(context: dg.RunStatusSensorContext, n: Names, proj: Project, outcome: str):
    run = context.dagster_run
    if run.tags.get("mlcicd/tier", "full") != "full":
        return dg.SkipReason(f"run {run.run_id} is not a full-tier run")
    latest = latest_materialization(context.instance, n.key("candidate_evaluation"), "full")
    if latest is None or latest.run_id != run.run_id:
        return dg.SkipReason(f"run {run.run_id} did not produce a new candidate_evaluation of {n.model}")
    if proj.config.promotion.mode != "auto":
        return dg.SkipReason("promotion.mode is manual: a person decides (run promotion_job)")
    return dg.RunRequest(
        run_key=f"promote-after-{run.run_id}",
        tags={"mlcicd/trigger": f"training {outcome}", "mlcicd/after_run": run.run_id},
    )


def drifted(context: dg.SensorEvaluationContext, n: Names, proj: Project):
    settings = proj.config.monitoring
    state = RetrainState(**json.loads(context.cursor)) if context.cursor else RetrainState()
    windows = monitoring_windows(context.instance, n, state.last_seen_id)
    decision = retrain_decision(windows, state, time.time(), settings.consecutive_windows, settings.cooldown_hours)
    cursor = json.dumps(decision.state.to_dict())
    if not decision.trigger:
        return dg.SensorResult(skip_reason=decision.reason, cursor=cursor)
    request = dg.RunRequest(
        run_key=f"drift-{decision.state.last_seen_id}",
        tags={"mlcicd/trigger": "drift", "mlcicd/reason": decision.reason[:1000]},
    )
    return dg.SensorResult(run_requests=[request], cursor=cursor)


def monitoring_windows(instance: dg.DagsterInstance, n: Names, after_id: int) -> list[tuple[int, bool, str]]:
    """One entry per monitoring run of the model since `after_id`, oldest first: (record id, drift or decay found, why)."""
    by_run: dict[str, list] = {}
    for key in [gate_key(n, gate) for gate in gate_table.stage("monitoring")]:
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=100):
            evaluation = record.event.asset_check_evaluation if record.event else None
            if record.id <= after_id or evaluation is None:
                continue
            by_run.setdefault(record.run_id, []).append((record.id, evaluation.passed, evaluation.description or key.name))
    windows = []
    for results in by_run.values():
        failed = [why for _, passed, why in results if not passed]
        windows.append((max(i for i, _, _ in results), bool(failed), " ".join(failed)))
    return sorted(windows)


def monitor_if_accepted(context: dg.RunStatusSensorContext, n: Names, proj: Project):
    from mlcicd.mlflow_registry import CHAMPION, version_by_alias

    accepted = sum(
        event.asset_materialization.metadata["accepted"].value
        for event in context.instance.all_logs(context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if event.asset_materialization.asset_key == n.key("raw_batch")
    )
    if not accepted:
        return dg.SkipReason("that ingestion accepted no new batch")
    if version_by_alias(proj, proj.model_name("full"), CHAMPION) is None:
        return dg.SkipReason("there is no champion to monitor yet")
    return dg.RunRequest(run_key=f"monitor-after-{context.dagster_run.run_id}", tags={"mlcicd/trigger": "new batch accepted"})
