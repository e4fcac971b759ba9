"""Batch scoring with a shadow challenger, and alerts that reach a log and a webhook without ever crashing."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import numpy as np
import pandas as pd
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core.simulate import write_batches
from mlcicd.core.train import predict
from mlcicd.mlflow_registry import load_model
from .support import sensor, DEGRADED


def test_scoring_uses_the_champion_and_shadows_the_challenger(make_project, run_job):
    project = make_project()
    write_batches(project.landing_dir, batches=4, rows_per_batch=6000)
    assert run_job("training_job").success and run_job("promotion_job").success
    make_project(DEGRADED)
    write_batches(project.landing_dir, batches=1, rows_per_batch=6000, start_index=4)
    run_job("training_job")  # version 2 fails its gates and waits as challenger

    out = CliRunner().invoke(main, ["simulate", "--unlabeled", "--batches", "2", "--rows", "3000"])
    assert out.exit_code == 0 and "unlabeled" in out.output
    write_batches(project.scoring_dir, batches=1, rows_per_batch=100, scenario="schema_break", start_index=20, drop_columns=("is_fraud",))
    result = run_job("fraud__scoring_job")
    assert result.success
    (materialization,) = result.asset_materializations_for_node("fraud__batch_predictions")
    meta = materialization.metadata
    assert meta["files_scored"].value == 2 and meta["files_rejected"].value == 1
    assert meta["champion_version"].value == "1" and meta["challenger_version"].value == "2"
    assert 0 < meta["shadow_mean_abs_difference"].value < 1 and meta["shadow_psi"].value > 0

    predictions = sorted(project.predictions_dir.glob("*.parquet"))
    assert len(predictions) == 2
    scored = pd.read_parquet(predictions[0])
    assert {"probability", "challenger_probability", "decision", "challenger_decision"} <= set(scored.columns)
    source = pd.read_parquet(project.archive_dir / "scored" / "batch-00005-baseline.parquet")
    booster, features = load_model(project, project.model_name("full"), "1")
    np.testing.assert_allclose(scored["probability"], predict(booster, features, source))  # the one feature path
    # decided at the champion's own operating point, the challenger's at its own
    assert features.threshold != 0.5 and (scored["decision"] == (scored["probability"] >= features.threshold)).all()
    challenger_threshold = load_model(project, project.model_name("full"), "2")[1].threshold
    assert (scored["challenger_decision"] == (scored["challenger_probability"] >= challenger_threshold)).all()
    assert (project.quarantine_dir / "batch-00020-schema_break.parquet.report.txt").exists()


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def failed_training(project, run_job):
    write_batches(project.landing_dir, batches=3, rows_per_batch=2000)
    write_batches(project.landing_dir, batches=1, rows_per_batch=200, scenario="schema_break", start_index=3)
    result = run_job("training_job")
    assert not result.success
    return result


def test_a_failed_run_is_logged_and_posted_to_the_webhook(project, run_job, instance, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLCICD_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/alerts")
    try:
        result = failed_training(project, run_job)
        run = instance.get_run_by_id(result.run_id)
        (failure,) = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"]
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_instance=instance, dagster_run=run, dagster_event=failure,
        ).for_run_failure()
        sensor("run_failure_alert")(context)
    finally:
        server.shutdown()
    (alert,) = [json.loads(line) for line in project.alerts_log.read_text().splitlines()]
    assert alert["kind"] == "run_failure" and alert["run_id"] == result.run_id and alert["webhook"].startswith("sent")
    assert Hook.received[-1]["run_id"] == result.run_id


def test_failed_gates_are_noticed_once_and_a_dead_webhook_is_only_logged(project, run_job, instance, monkeypatch):
    monkeypatch.setenv("MLCICD_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nobody-listens")
    failed_training(project, run_job)

    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        result = sensor("gate_failure_alert")(context)
        return context.cursor, result

    cursor, first = tick(None)
    assert "1 gate failure notice(s) sent" in first.skip_message
    _, second = tick(cursor)
    assert "0 gate failure notice(s) sent" in second.skip_message
    (alert,) = [json.loads(line) for line in project.alerts_log.read_text().splitlines()]
    assert alert["gate"] == "data_contract" and "schema_break" in alert["message"]
    assert alert["webhook"].startswith("failed: URLError")
