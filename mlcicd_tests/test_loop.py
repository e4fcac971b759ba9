"""The loop, evaluated against a test instance (no clock): landing -> ingestion -> retraining -> promotion."""


import dagster as dg
import pytest

from mlcicd.core.simulate import write_batches
from mlcicd.mlflow_registry import CHAMPION, version_by_alias

from .support import sensor, MODEL_GATES, settle, tick

TRAINING = {f"fraud/{name}" for name in ("training_dataset", "train_set", "holdout_set", "candidate_model", "candidate_evaluation")} | {
    # the model gates are separate checks: each must be requested with the retrained evaluation, or promotion
    # would refuse it (the data gates are check specs of their assets and always run with them)
    f"fraud/candidate_evaluation:{check}"
    for check in MODEL_GATES
}


def test_landing_sensor_requests_one_ingestion_per_complete_file(project, instance):
    (first,) = write_batches(project.landing_dir, batches=1, rows_per_batch=500)
    partial = project.landing_dir / ".batch-00001-baseline.parquet.part"
    partial.write_bytes(b"still being written")

    seen_once = tick(instance)
    assert seen_once.run_requests == [], "a file written just now may still be growing"
    settle(project)
    ready = tick(instance, seen_once.cursor)
    (request,) = ready.run_requests
    assert request.run_key.startswith(f"{first.name}:")
    assert request.run_config == {"ops": {"fraud__raw_batch": {"config": {"files": [first.name]}}}}
    assert request.tags["mlcicd/trigger"] == "landing"

    again = tick(instance, ready.cursor)
    assert [r.run_key for r in again.run_requests] == [request.run_key], "same file, same run key: Dagster runs it once"


def test_landing_sensor_waits_while_a_file_grows(project, instance):
    (path,) = write_batches(project.landing_dir, batches=1, rows_per_batch=500)
    settle(project)
    first = tick(instance)
    with open(path, "ab") as handle:
        handle.write(b"more bytes arriving")
    settle(project)
    assert tick(instance, first.cursor).run_requests == [], "the size changed since the last look"


def evaluate(definitions, instance, cursor=None):
    return dg.evaluate_automation_conditions(defs=definitions.now(), instance=instance, cursor=cursor)


def requested(result, definitions) -> set[str]:
    """Asset keys and `asset:check` names that this evaluation requested."""

    def name(key) -> str:
        return f"{key.asset_key.to_user_string()}:{key.name}" if isinstance(key, dg.AssetCheckKey) else key.to_user_string()

    return {name(r.key) for r in result.results if r.true_subset.size > 0}


@pytest.mark.parametrize("with_bad_file, expected", [(False, TRAINING), (True, set())])
def test_accepted_data_retrains_unless_a_blocking_gate_failed(project, instance, definitions, run_job, with_bad_file, expected):
    idle = evaluate(definitions, instance)  # the sensor's earlier ticks: nothing has happened yet
    assert requested(idle, definitions) == set()
    write_batches(project.landing_dir, batches=4, rows_per_batch=6000)
    if with_bad_file:
        write_batches(project.landing_dir, batches=1, rows_per_batch=500, scenario="schema_break", start_index=9)
    assert run_job("fraud__ingestion_job").success is not with_bad_file
    after = evaluate(definitions, instance, idle.cursor)
    assert requested(after, definitions) == expected


@pytest.mark.parametrize("mode, expect_request", [("auto", True), ("manual", False)])
def test_promotion_follows_successful_training_only_in_auto_mode(make_project, instance, run_job, mode, expect_request):
    project = make_project({"promotion": {"mode": mode}})
    write_batches(project.landing_dir, batches=4, rows_per_batch=6000)
    trained = run_job("training_job")
    assert trained.success
    run = instance.get_run_by_id(trained.run_id)
    (event,) = [e for e in instance.all_logs(trained.run_id) if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_SUCCESS"]
    context = dg.build_run_status_sensor_context(
        sensor_name="promote_after_training", dagster_instance=instance, dagster_run=run, dagster_event=event.dagster_event,
    )
    result = sensor("fraud__promote_after_training")(context)
    if expect_request:
        assert isinstance(result, dg.RunRequest) and result.run_key == f"promote-after-{trained.run_id}"
        promoted = run_job("promotion_job", tags={"dagster/sensor_name": "promote_after_training", **result.tags})
        assert promoted.success and str(version_by_alias(project, project.model_name("full"), CHAMPION).version) == "1"
    else:
        assert isinstance(result, dg.SkipReason) and "manual" in result.skip_message


def test_everything_the_loop_needs_runs_by_default(project, definitions):  # the fraud model, as one mlcicd.yaml
    repository = definitions.get_repository_def()
    sensors = {sensor.name: sensor for sensor in repository.sensor_defs}
    assert set(sensors) == {
        *(f"fraud__{name}" for name in ("landing_sensor", "retrain_on_new_data", "promote_after_training", "decide_after_failed_gates",
                                         "monitor_after_ingestion", "drift_sensor", "rollback_on_serving_breach", "unaudited_champion_alert")),
        "run_failure_alert", "gate_failure_alert", "dead_run_sweeper",  # the project's, over every model
    }
    serving = {"fraud__rollback_on_serving_breach", "fraud__serving_monitoring"}  # on only with serving.enabled (off in the shipped config)
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for name, s in sensors.items() if name not in serving)
    assert sensors["fraud__rollback_on_serving_breach"].default_status == dg.DefaultSensorStatus.STOPPED
    assert sensors["dead_run_sweeper"].minimum_interval_seconds <= 60, "a dead run must be failed within 2 minutes"
    jobs = {job.name: job for job in repository.get_all_jobs()}
    assert all(0 < int(jobs[name].tags["dagster/max_runtime"]) <= 4 * 3600 for name in jobs if not name.startswith("__")), "every job has a runtime bound"
    schedules = {schedule.name: schedule for schedule in repository.schedule_defs}
    assert {name: (s.cron_schedule, s.job_name) for name, s in schedules.items()} == {
        "fraud__nightly_retraining": ("0 2 * * *", "fraud__training_job"),
        "fraud__hourly_monitoring": ("0 * * * *", "fraud__monitoring_job"),
        "fraud__serving_monitoring": ("*/5 * * * *", "fraud__serving_monitor_job"),
    }
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for name, s in schedules.items() if name not in serving)


def test_a_candidate_that_failed_a_gate_gets_an_audited_refusal_in_auto_mode(make_project, instance, run_job):
    from mlcicd.core.audit import read

    project = make_project({"promotion": {"mode": "auto"}, "gates": {"min_metrics": {"roc_auc": 0.99}}})
    write_batches(project.landing_dir, batches=4, rows_per_batch=6000)
    trained = run_job("training_job")
    assert not trained.success
    (event,) = [e for e in instance.all_logs(trained.run_id) if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"]
    context = dg.build_run_status_sensor_context(
        sensor_name="decide_after_failed_gates", dagster_instance=instance, dagster_run=instance.get_run_by_id(trained.run_id),
        dagster_event=event.dagster_event,
    )
    request = sensor("fraud__decide_after_failed_gates")(context)
    assert isinstance(request, dg.RunRequest)
    assert not run_job("promotion_job", tags={"dagster/sensor_name": "decide_after_failed_gates", **request.tags}).success
    last = read(project.audit_log)[-1]
    assert last["decision"] == "refused" and "gate meets_thresholds did not pass" in last["reason"]
    assert last["triggered_by"] == "sensor decide_after_failed_gates"
