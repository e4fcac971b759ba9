"""`mlcicd serve` on a free loopback port, real requests (good and bad), blue-green deployments (one that
swaps under load with no failed request, one that fails and goes back), the canary and the budget."""

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core.audit import read
from mlcicd.core.deploy import call, records
from mlcicd.core.simulate import simulate_batch
from mlcicd.core.train import predict
from mlcicd.mlflow_registry import CHALLENGER, CHAMPION, HASH_TAG, client, load_model, version_by_alias

from .support import sensor, free_port, wait_until_up


def alias(project, name):
    version = version_by_alias(project, project.model_name("full"), name)
    return None if version is None else str(version.version)


@pytest.fixture
def served(make_project, run_job, tmp_path):
    """A champion (version 1), a candidate waiting (version 2), and `mlcicd serve` answering on a free port."""
    port = free_port()
    serving = {"port": port, "canary_share": 0.5, "min_requests": 5, "canary": {"min_requests": 5, "max_latency_ratio": 50}}
    project = make_project({"serving": {**serving, "enabled": False}})  # no service yet: version 1 is promoted, not deployed
    CliRunner().invoke(main, ["simulate", "--batches", "3"])
    assert run_job("training_job").success and run_job("promotion_job").success
    CliRunner().invoke(main, ["simulate", "--batches", "1"])
    assert run_job("training_job").success
    assert (alias(project, CHAMPION), alias(project, CHALLENGER)) == ("1", "2")
    project = make_project({"serving": {**serving, "enabled": True}})

    def start(faults: str = ""):
        log = tmp_path / f"serve-{len(started)}.log"
        env = {**os.environ, "MLCICD_FAULTS": faults}
        with open(log, "w") as out:
            process = subprocess.Popen([sys.executable, "-m", "mlcicd.cli", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
        started.append(process)
        wait_until_up(f"http://127.0.0.1:{port}/health", process, log)
        return f"http://127.0.0.1:{port}"

    started: list[subprocess.Popen] = []
    yield project, start
    for process in started:  # stopped by PID
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def stop_server(project, base: str) -> None:
    """Stop the service by its PID (`mlcicd serve` writes it to data/serving/server.pid)."""
    import time

    pid = int((project.data_dir / "serving" / "server.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if call(base, "GET", "/health")[0] == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"the service (pid {pid}) did not stop")


def post(base: str, body: bytes, content_type: str = "application/json", slot: str = ""):
    request = urllib.request.Request(f"{base}/predict{'?slot=' + slot if slot else ''}", data=body, method="POST", headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def unlabeled(rows: int, batch: int = 50) -> pd.DataFrame:
    return simulate_batch(batch, rows).drop(columns=["is_fraud"])


def materialize(definitions, instance, key: str):
    return dg.materialize(
        list(definitions.assets), selection=[dg.AssetKey(["fraud", key])], resources=definitions.resources, instance=instance, raise_on_error=False
    )


def test_health_and_predictions_through_the_one_feature_path(served):
    project, start = served
    base = start()
    status, health = call(base, "GET", "/health")
    assert status == 200 and health["version"] == "1" and health["model"] == project.model_name("full")
    assert health["artifact_sha256"] == client(project).get_model_version(health["model"], "1").tags[HASH_TAG]
    assert health["uptime_seconds"] > 0

    rows = unlabeled(30)
    booster, features = load_model(project, health["model"], "1")
    status, body = post(base, json.dumps({"records": records(rows)}).encode())
    assert status == 200 and body["version"] == "1" and len(body["predictions"]) == 30
    served_scores = [p["probability"] for p in body["predictions"]]
    np.testing.assert_allclose(served_scores, predict(booster, features, rows), rtol=0, atol=1e-12)  # same as batch scoring
    assert [p["decision"] for p in body["predictions"]] == [int(p >= 0.5) for p in served_scores]

    status, body = post(base, rows.head(3).to_csv(index=False).encode(), "text/csv")
    assert status == 200 and len(body["predictions"]) == 3
    np.testing.assert_allclose([p["probability"] for p in body["predictions"]], served_scores[:3], atol=1e-12)
    bad_requests_get_a_4xx_that_names_the_field(project, base)
    admin_endpoints_need_the_token_always(project, base)
    prometheus_metrics_count_what_was_answered(project, base)


def prometheus_metrics_count_what_was_answered(project, base):
    """Issue 18 point 8: GET /metrics in Prometheus' text format, per model version and slot."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/plain")
        families = {family.name: family for family in text_string_to_metric_families(response.read().decode())}
    model = project.model_name("full")

    def value(family: str, sample: str, **labels) -> float:
        return sum(s.value for s in families[family].samples if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))

    ok = value("mlcicd_requests", "mlcicd_requests_total", model=model, version="1", slot="live", status="200")
    assert ok >= 2, "at least the two good requests above (JSON and CSV)"
    assert value("mlcicd_request_errors", "mlcicd_request_errors_total", model=model, kind="client") >= 5
    assert value("mlcicd_request_errors", "mlcicd_request_errors_total", kind="server") == 0, "bad input never answers 5xx"
    assert value("mlcicd_request_latency_seconds", "mlcicd_request_latency_seconds_count", model=model, version="1", slot="live") >= ok
    assert value("mlcicd_predicted_rows", "mlcicd_predicted_rows_total", model=model, version="1", slot="live") >= 33
    assert value("mlcicd_live_version", "mlcicd_live_version", model=model) == 1


def admin_endpoints_need_the_token_always(project, base):
    """No MLCICD_SERVE_TOKEN set: the first start made a token file, readable by its owner only (issue 17, point 2)."""
    import stat

    token_file = project.data_dir / "serving" / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert call(base, "POST", "/admin/discard", {})[0] == 401
    assert call(base, "POST", "/admin/discard", {}, token="guessed")[0] == 401
    assert call(base, "POST", "/admin/discard", {}, token=token_file.read_text().strip())[0] == 200


BAD_REQUESTS = [
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b"[]", "application/json", 400, "no rows"),
    (b'"text"', "application/json", 400, "expected"),
    (b"amount\n1", "text/plain", 415, "unsupported content type"),
]


def bad_requests_get_a_4xx_that_names_the_field(project, base):
    good = records(unlabeled(1))[0]
    for body, content_type, expected, words in BAD_REQUESTS:
        status, answer = post(base, body, content_type)
        assert status == expected and words in answer["error"], (body, answer)
    field_cases = [
        ({k: v for k, v in good.items() if k != "amount"}, "field 'amount' is missing"),
        ({**good, "amount": "lots"}, "field 'amount': 1 value(s) are not numbers"),
        ({**good, "amount": -5}, "field 'amount': value(s) below the minimum 0"),
        ({**good, "channel": "carrier pigeon"}, "field 'channel': value(s) not allowed"),
        ({**good, "customer_age": 40.5}, "field 'customer_age': 1 value(s) are not whole numbers"),
        ({**good, "event_time": "next tuesday-ish"}, "field 'event_time': 1 value(s) are not dates/times"),
        ({**good, "shoe_size": 44}, "field 'shoe_size' is not in the data contract"),
        ({**good, "region": None}, "field 'region': 1 missing value(s)"),
    ]
    for record, words in field_cases:
        status, answer = post(base, json.dumps({"records": [record]}).encode())
        assert status == 422, (record, answer)
        assert any(words in p for p in answer["problems"]), (words, answer)
    status, _ = post(base, json.dumps({"records": [{**good, "device_risk_score": None}]}).encode())
    assert status == 200, "a nullable field may be null"
    log = [json.loads(line) for line in (project.data_dir / "serving" / "requests.jsonl").read_text().splitlines()]
    assert not [r for r in log if r["status"] >= 500], "bad input never gives a server error"


def test_a_failed_deployment_goes_back_and_a_good_one_swaps_under_load_with_no_failed_request(served, definitions, instance):
    project, start = served
    name = project.model_name("full")

    # 1. the new version's predictions differ from batch scoring: nothing switches, the alias goes back
    server = start(faults="serve.standby_skew")
    client(project).set_registered_model_alias(name, CHAMPION, "2")  # as promotion_job does
    result = materialize(definitions, instance, "deployment")
    assert not result.success
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "failed at skew" in check.description and "version 1 keeps serving" in check.description
    assert call(server, "GET", "/health")[1]["version"] == "1"
    assert alias(project, CHAMPION) == "1"
    record = read(project.audit_log)[-1]
    assert record["decision"] == "rolled_back" and record["from_version"] == "2" and record["to_version"] == "1"
    assert "largest difference from batch scoring" in record["reason"]

    # 2. a healthy service: version 2 goes live while requests keep coming, and none fails
    stop_server(project, server)
    base = start()
    body = json.dumps({"records": records(unlabeled(5))}).encode()
    answers, stop = [], threading.Event()

    def traffic():
        while not stop.is_set() and len(answers) < 3000:
            answers.append(post(base, body))

    def wait_for_answers(count: int) -> None:
        for _ in range(600):
            if len(answers) >= count:
                return
            stop.wait(0.05)
        raise AssertionError(f"only {len(answers)} requests answered")

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        wait_for_answers(5)  # traffic flows before the deployment starts ...
        client(project).set_registered_model_alias(name, CHAMPION, "2")
        result = materialize(definitions, instance, "deployment")
        wait_for_answers(len(answers) + 5)  # ... and goes on after it
    finally:
        stop.set()
        thread.join(timeout=60)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and "stage, health, smoke, skew, switch" in check.description
    assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:3]
    versions = [answer["version"] for _, answer in answers]
    assert versions[0] == "1" and versions[-1] == "2" and versions == sorted(versions), "one switch, no flapping"
    assert call(base, "GET", "/health")[1]["version"] == "2"


def test_canary_is_compared_with_the_champion_and_a_breach_starts_a_rollback(served, definitions, instance, make_project):

    project, start = served
    base = start()
    config = yaml.safe_load(project.config_path.read_text())
    config["promotion"]["require_canary"] = True  # promotion needs a passed canary window for exactly the candidate
    project.config_path.write_text(yaml.safe_dump(config))
    assert not definitions.resolve_job_def("promotion_job").execute_in_process(instance=instance, raise_on_error=False).success
    assert "no canary window has been judged for version 2" in read(project.audit_log)[-1]["gates"]["canary_passed"]["reason"]

    assert materialize(definitions, instance, "canary").success  # version 2 passed every gate: it may see traffic
    traffic = unlabeled(600)  # varied rows: the two prediction distributions are compared
    slots = [post(base, json.dumps({"records": records(traffic.iloc[i * 10:(i + 1) * 10])}).encode())[1]["slot"] for i in range(60)]
    assert 10 < slots.count("canary") < 50, "about half of the requests go to the canary"

    metrics = materialize(definitions, instance, "serving_metrics")
    checks = {c.check_name: c for c in metrics.get_asset_check_evaluations()}
    assert checks["serving_within_budget"].passed, checks["serving_within_budget"].description
    assert checks["canary_comparison"].passed, checks["canary_comparison"].description
    assert checks["canary_comparison"].metadata["canary_version"].value == "2"

    # now the passed canary window of version 2 is part of its promotion's evidence
    assert definitions.resolve_job_def("promotion_job").execute_in_process(instance=instance, raise_on_error=False).success
    record = read(project.audit_log)[-1]
    assert record["decision"] == "promoted" and record["to_version"] == "2" and record["gates"]["canary_passed"]["passed"] is True

    sensor_context = dg.build_sensor_context(instance=instance)
    assert isinstance(sensor("fraud__rollback_on_serving_breach")(sensor_context), dg.SkipReason), "within budget: nothing to do"
    config = yaml.safe_load(project.config_path.read_text())
    config["serving"]["p95_latency_ms"] = 0.001  # an impossible budget: a breach
    project.config_path.write_text(yaml.safe_dump(config))
    metrics = materialize(definitions, instance, "serving_metrics")
    budget = {c.check_name: c for c in metrics.get_asset_check_evaluations()}["serving_within_budget"]
    assert not budget.passed and budget.severity == dg.AssetCheckSeverity.ERROR and "breaches its budget" in budget.description
    request = sensor("fraud__rollback_on_serving_breach")(dg.build_sensor_context(instance=instance, cursor=sensor_context.cursor))
    assert isinstance(request, dg.RunRequest) and request.job_name in (None, "fraud__rollback_job")
    assert "serving budget breached" in request.run_config["ops"]["fraud__roll_back"]["config"]["reason"]
    rolled = definitions.resolve_job_def("fraud__rollback_job").execute_in_process(instance=instance, run_config=request.run_config, raise_on_error=False)
    assert rolled.success and alias(project, CHAMPION) == "1"
    assert call(base, "GET", "/health")[1]["version"] == "1", "rollback_job deploys the version it went back to"
    assert read(project.audit_log)[-1]["decision"] == "rolled_back" and "serving budget breached" in read(project.audit_log)[-1]["reason"]


def test_a_canary_window_from_the_champions_own_distribution_is_not_read_as_a_shift():
    """Both slots answer a few hundred requests of fraud scores (mostly near 0, a few high): a random split of one
    distribution must pass the canary's PSI rule nearly always, and a real shift must still fail it."""
    from mlcicd.config import CanarySpec
    from mlcicd.core.serving_gates import canary_gate

    rng = np.random.default_rng(7)

    def window(scores: np.ndarray) -> dict:
        return {"requests": len(scores), "versions": ["1"], "server_error_rate": 0.0, "p95_ms": 10.0, "scores": list(scores)}

    def scores(rows: int) -> np.ndarray:
        values = rng.beta(0.3, 12, rows)
        high = rng.random(rows) < 0.03
        values[high] = rng.random(high.sum())
        return values

    settings = CanarySpec(min_requests=50)
    passed = [canary_gate(window(scores(300)), window(scores(300)), settings)[0].passed for _ in range(300)]
    assert sum(passed) >= 297, f"{300 - sum(passed)} of 300 same-distribution windows were read as a shift"
    shifted = np.clip(scores(300) + 0.3, 0, 1)
    verdict, judged = canary_gate(window(shifted), window(scores(300)), settings)
    assert judged and not verdict.passed and "predictions shifted" in verdict.reason
