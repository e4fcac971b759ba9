"""Monitoring finds drift and decay; drift_sensor turns confirmed findings (not noise) into one retraining."""

import json

import dagster as dg

from .support import sensor
import pytest

from mlcicd.core.monitoring import RetrainState, retrain_decision
from mlcicd.core.simulate import next_batch_index, write_batches


def monitor_new_batch(project, run_job, scenario: str):
    write_batches(project.landing_dir, batches=1, rows_per_batch=6000, scenario=scenario, start_index=next_batch_index([project.data_dir]))
    assert run_job("fraud__ingestion_job").success
    result = run_job("fraud__monitoring_job")
    # Evidently's page is not on the gates' path: every verdict is given before its step starts, and a failed gate
    # does not stop it
    events = [e for e in result.all_events if e.event_type_value in ("ASSET_CHECK_EVALUATION", "STEP_START")]
    page_starts = next(i for i, e in enumerate(events) if e.step_key == "fraud__drift_evidently_page")
    assert sum(e.event_type_value == "ASSET_CHECK_EVALUATION" for e in events[:page_starts]) == 3, [e.step_key for e in events]
    assert any(e.event_type_value == "ASSET_MATERIALIZATION" and "drift_evidently_page" in e.asset_key.to_user_string() for e in result.all_events)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def monitored(make_project, run_job):
    project = make_project({"monitoring": {"consecutive_windows": 2, "cooldown_hours": 6}})
    write_batches(project.landing_dir, batches=4, rows_per_batch=6000)
    assert run_job("training_job").success and run_job("promotion_job").success
    return project


def test_monitoring_tells_covariate_drift_from_concept_drift(monitored, run_job):
    calm = monitor_new_batch(monitored, run_job, "baseline")
    assert calm["data_drift"].passed and calm["performance_decay"].passed

    moved = monitor_new_batch(monitored, run_job, "covariate_drift")
    assert not moved["data_drift"].passed
    assert "channel" in moved["data_drift"].description and "amount" in moved["data_drift"].description

    decayed = monitor_new_batch(monitored, run_job, "concept_drift")
    assert decayed["data_drift"].passed, "the inputs look the same..."
    assert not decayed["performance_decay"].passed, "...but the champion no longer works"
    assert "worse by" in decayed["performance_decay"].description

    reports = sorted((monitored.data_dir / "reports").glob("drift-*.html"))
    assert len(reports) == 3
    # issue 18 point 7: a header of its own, and Evidently's page states the gate's own drift share
    page = reports[1].read_text()  # the covariate-drift window
    assert "fraud: drift of 1 batch(es) against champion version 1" in page and "Batches judged: " in page
    assert "<td>FAIL</td><td>data_drift</td>" in page and "<td>PASS</td><td>performance_decay</td>" in page
    assert "monitoring.max_drift_share: 0.3" in page
    assert "<td>channel</td><td>Jensen-Shannon distance</td>" in page, "each column's test, value and threshold"
    # issue 21 point 3: Evidently's page is built apart, linked from the gate's page, on the same samples
    linked = monitored.data_dir / "reports" / page.split('<a href="')[1].split('"')[0]
    evidently = linked.read_text()
    assert "Dataset drift detection threshold is 0.3" in evidently and "threshold is 0.5" not in evidently
    assert len(evidently) > 10_000
    from mlcicd.mlflow_registry import client

    mlflow_client = client(monitored)
    experiment = mlflow_client.get_experiment_by_name(monitored.experiment_for("monitoring"))
    runs = mlflow_client.search_runs([experiment.experiment_id], "tags.mlcicd_kind = 'monitoring'")
    assert len(runs) == 3, "one MLflow run per monitoring run, the report linked from the UI"
    assert all(run.info.run_name.startswith("fraud v1 · monitoring · ") for run in runs), [r.info.run_name for r in runs]
    assert [a.path for a in mlflow_client.list_artifacts(runs[0].info.run_id, "drift")][0].endswith(".html")


def test_drift_sensor_needs_k_bad_windows_then_cools_down(monitored, run_job, instance):
    def tick(cursor):
        return sensor("fraud__drift_sensor")(dg.build_sensor_context(instance=instance, cursor=cursor))

    monitor_new_batch(monitored, run_job, "covariate_drift")
    first = tick(None)
    assert first.run_requests == [] and "1 of 2" in first.skip_reason.skip_message

    monitor_new_batch(monitored, run_job, "covariate_drift")
    second = tick(first.cursor)
    (request,) = second.run_requests
    assert request.tags["mlcicd/trigger"] == "drift" and "2 monitoring window(s) in a row" in request.tags["mlcicd/reason"]
    assert "feature columns drifted" in request.tags["mlcicd/reason"]

    monitor_new_batch(monitored, run_job, "covariate_drift")
    monitor_new_batch(monitored, run_job, "covariate_drift")
    cooling = tick(second.cursor)
    assert cooling.run_requests == [] and "less than 6 h ago" in cooling.skip_reason.skip_message
    assert json.loads(cooling.cursor)["consecutive"] == 2


def windows(pattern: str) -> list[tuple[int, bool, str]]:
    return [(i + 1, flag == "x", "drift" if flag == "x" else "") for i, flag in enumerate(pattern)]


@pytest.mark.parametrize(
    "pattern, k, triggers",
    [("x", 2, False), ("xx", 2, True), ("x.x.x.x", 2, False), ("..xxx", 3, True), ("xx.", 2, False), ("", 1, False)],
)
def test_hysteresis_ignores_one_noisy_window_and_flapping(pattern, k, triggers):
    decision = retrain_decision(windows(pattern), RetrainState(), now=1_000_000.0, k=k, cooldown_hours=6)
    assert decision.trigger is triggers
    if pattern:
        assert decision.state.last_seen_id == len(pattern)


def test_cooldown_blocks_a_retraining_storm():
    fired = retrain_decision(windows("xx"), RetrainState(), now=0.0, k=2, cooldown_hours=6)
    assert fired.trigger
    soon = retrain_decision(windows("xxxx")[2:], fired.state, now=3600.0, k=2, cooldown_hours=6)
    assert not soon.trigger and "5.0 h to go" in soon.reason
    later = retrain_decision([(5, True, "drift"), (6, True, "drift")], soon.state, now=7 * 3600.0, k=2, cooldown_hours=6)
    assert later.trigger


def test_every_ingestion_that_accepts_data_is_monitored(monitored, run_job, instance):

    def after(result):
        run = instance.get_run_by_id(result.run_id)
        (event,) = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_SUCCESS"]
        context = dg.build_run_status_sensor_context(
            sensor_name="monitor_after_ingestion", dagster_instance=instance, dagster_run=run, dagster_event=event,
        )
        return sensor("fraud__monitor_after_ingestion")(context)

    runs = []
    for index in (20, 21):
        write_batches(monitored.landing_dir, batches=1, rows_per_batch=2000, start_index=index)
        runs.append(run_job("fraud__ingestion_job"))
    nothing_new = run_job("fraud__ingestion_job")
    requests = [after(result) for result in runs]  # evaluated after both finished, as a busy daemon would
    assert [r.run_key for r in requests] == [f"monitor-after-{result.run_id}" for result in runs]
    assert isinstance(after(nothing_new), dg.SkipReason)


def test_dagster_job_execute_of_monitoring_job_fails_when_a_monitoring_gate_fails(monitored, run_job, tmp_path, monkeypatch):
    """Like ci_job: a CI step or a cron running `dagster job execute -j monitoring_job` sees drift as a failed command."""
    from click.testing import CliRunner
    from dagster._cli import cli as dagster_cli

    def execute() -> object:
        home = tmp_path / f"home-{len(list(tmp_path.glob('home-*')))}"
        home.mkdir()
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        return CliRunner().invoke(dagster_cli, ["job", "execute", "-m", "mlcicd.definitions", "-j", "fraud__monitoring_job"])

    write_batches(monitored.landing_dir, batches=1, rows_per_batch=6000, start_index=next_batch_index([monitored.data_dir]))
    assert run_job("fraud__ingestion_job").success
    calm = execute()
    assert calm.exit_code == 0, calm.output[-2000:]
    write_batches(monitored.landing_dir, batches=1, rows_per_batch=6000, scenario="covariate_drift", start_index=next_batch_index([monitored.data_dir]))
    assert run_job("fraud__ingestion_job").success
    drifted = execute()
    assert drifted.exit_code != 0
    assert "data_drift" in drifted.output + str(drifted.exception)


def test_a_password_in_the_mlflow_ui_address_never_reaches_the_event_log(monitored, run_job, instance, monkeypatch):
    monkeypatch.setenv("MLCICD_MLFLOW_UI_URL", "https://pipeline:s3cr3t-pw@mlflow.example.internal")
    write_batches(monitored.landing_dir, batches=1, rows_per_batch=6000, start_index=next_batch_index([monitored.data_dir]))
    assert run_job("fraud__ingestion_job").success
    result = run_job("fraud__monitoring_job")
    (materialization,) = result.asset_materializations_for_node("fraud__drift_report")
    link = materialization.metadata["report_in_mlflow"].value
    assert link.startswith("https://pipeline:***@mlflow.example.internal/#/experiments/"), link
    logged = "\n".join(str(entry) for entry in instance.all_logs(result.run_id))
    assert "s3cr3t-pw" not in logged


def test_performance_is_estimated_before_labels_and_meets_the_labels_when_they_arrive(monitored, make_project, run_job, instance):
    """Issue 20 point 4: CBPE of the champion on the rows it scored without labels, beside drift; when those rows' labels
    land, the realized metric is recorded next to the estimate. A batch whose inputs lost their signal (degraded_quality:
    device_risk_score missing in 80% of rows) fails estimated_performance before any label exists, and the drift sensor
    counts it as a finding."""
    import pandas as pd

    from mlcicd.core.metrics import weighted_metric
    from mlcicd.core.simulate import simulate_batch
    from mlcicd.names import names
    from mlcicd.pipeline.automation.sensors import monitoring_windows

    def score_unlabeled(scenario: str, count: int = 6000) -> pd.DataFrame:
        index = next_batch_index([monitored.data_dir])
        rows = simulate_batch(index, count, scenario)
        monitored.scoring_dir.mkdir(parents=True, exist_ok=True)
        rows.drop(columns=["is_fraud"]).to_parquet(monitored.scoring_dir / f"batch-{index:05d}-{scenario}.parquet")
        assert run_job("fraud__scoring_job").success
        return rows

    labeled = score_unlabeled("baseline")
    result = run_job("fraud__monitoring_job")
    estimated = {e.check_name: e for e in result.get_asset_check_evaluations()}["estimated_performance"]
    assert estimated.passed and "newest file(s) it scored, unlabeled" in estimated.description and "roc_auc" in estimated.description
    (entry,) = result.output_for_node("fraud__drift_report")["estimates"]
    assert entry["realized"] is None and entry["low"] < entry["estimate"] < entry["high"]

    labeled.to_parquet(monitored.landing_dir / f"batch-{next_batch_index([monitored.data_dir]):05d}-labels.parquet")
    assert run_job("fraud__ingestion_job").success
    (entry,) = run_job("fraud__monitoring_job").output_for_node("fraud__drift_report")["estimates"]
    scored = pd.read_parquet(monitored.predictions_dir / entry["file"])
    truth = weighted_metric("roc_auc", labeled["is_fraud"].to_numpy(float), scored["probability"].to_numpy(), [[1.0] * len(scored)])[0]
    assert entry["realized"] == pytest.approx(truth) and entry["labeled_rows"] == len(labeled)
    assert entry["low"] <= entry["realized"] <= entry["high"] and abs(entry["error"]) < 0.03, entry

    # the degraded batch's estimate is about 0.045 below the holdout's: judged beyond its noise on 20,000 rows (not on 6,000)
    make_project({"monitoring": {"max_decay": 0.02}})
    score_unlabeled("degraded_quality", 20_000)
    result = run_job("fraud__monitoring_job")
    decayed = {e.check_name: e for e in result.get_asset_check_evaluations()}["estimated_performance"]
    assert not decayed.passed and "before any label has arrived" in decayed.description
    (_, found, why) = monitoring_windows(instance, names(monitored), 0)[-1]
    assert found and "CBPE" in why
