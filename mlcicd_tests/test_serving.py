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
    serving = {"port": port, "canary_share": 0.5, "min_requests": 5, "canary": {"min_requests": 5, "max_latency_ratio": 50, "max_error_rate_increase": 0.05}}
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
    # the decision is at the model's own operating point (chosen on its validation split), not at a fixed 0.5
    assert features.operating_point["rule"] == "max_f1" and features.threshold != 0.5 and health["threshold"] == features.threshold
    assert [p["decision"] for p in body["predictions"]] == [int(p >= features.threshold) for p in served_scores]

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
    traffic = unlabeled(600)  # varied rows: the canary's decisions are compared with the champion's on the same rows
    answers = [post(base, json.dumps({"records": records(traffic.iloc[(i % 60) * 10:(i % 60 + 1) * 10])}).encode())[1] for i in range(400)]
    slots = [answer["slot"] for answer in answers]
    assert 140 < slots.count("canary") < 260, "about half of the requests go to the canary"
    assert len({answer["request_id"] for answer in answers}) == 400, "every answer has its own request id (for POST /feedback)"

    metrics = materialize(definitions, instance, "serving_metrics")
    checks = {c.check_name: c for c in metrics.get_asset_check_evaluations()}
    assert checks["serving_within_budget"].passed, checks["serving_within_budget"].description
    canary = checks["canary_comparison"]
    assert canary.passed and "every measure is proven within its limit, so it may be promoted now" in canary.description, canary.description
    assert canary.metadata["canary_version"].value == "2" and canary.metadata["disagreement_high"].value < 0.1
    assert "<img alt=\"errors\"" in open(canary.metadata["report"].value).read(), "the canary report plots the sequence"

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


def request_log(canary: dict, live: dict, rng, start: float = 1.7e9) -> pd.DataFrame:
    """A request log as the service writes it: `canary` and `live` give each slot's requests, error rate, median latency
    (ms) and disagreement rate, interleaved in time."""
    frames = []
    for slot, spec in (("canary", canary), ("live", live)):
        n = spec["requests"]
        frames.append(pd.DataFrame({
            "at": pd.to_datetime(start + np.sort(rng.random(n)) * 600, unit="s", utc=True), "slot": slot, "version": "2" if slot == "canary" else "1",
            "status": np.where(rng.random(n) < spec.get("errors", 0.0), 500, 200), "latency_ms": spec.get("latency", 5.0) * rng.lognormal(0, 0.4, n),
            "request_id": [f"{slot}{i}" for i in range(n)],
            "disagreement": (rng.random(n) < spec.get("disagreement", 0.01)).astype(float) if slot == "canary" else np.nan,
        }))
    return pd.concat(frames).sort_values("at", ignore_index=True)


def test_the_canary_is_judged_sequentially_without_false_alarms_from_peeking():
    """Issue 20 point 3, a small fixed-seed version of benchmarks/error_rates.py: a canary as good as the champion, judged
    after every 50 requests (peeking, as a person watching the page would), is almost never called worse; a canary with
    three times the server errors is stopped early, well before 2,000 requests; a good one is promoted early."""
    from mlcicd.config import CanarySpec
    from mlcicd.core.serving_gates import canary_gate, canary_streams

    rng = np.random.default_rng(11)
    settings = CanarySpec(min_requests=50, max_error_rate_increase=0.01, max_disagreement=0.05)

    def first_decision(canary: dict, live: dict, limit: int = 2000) -> tuple[int | None, bool | None]:
        log = request_log({**canary, "requests": limit}, {**live, "requests": limit}, rng)
        canary_rows = np.flatnonzero(log["slot"].to_numpy() == "canary")
        for seen in range(50, limit + 1, 50):  # look after every 50 canary requests
            upto = log.iloc[: canary_rows[seen - 1] + 1]
            verdict, decided, _ = canary_gate(canary_streams(upto, None, settings), settings, trajectories=False)
            if decided:
                return seen, verdict.passed
        return None, None

    alike = [first_decision({"errors": 0.02}, {"errors": 0.02}) for _ in range(12)]
    assert sum(passed is False for _, passed in alike) == 0, f"false alarms from peeking: {alike}"
    stopped, passed = first_decision({"errors": 0.08}, {"errors": 0.02})
    assert passed is False and stopped < 1500, (stopped, passed)
    clean, passed = first_decision({"errors": 0.0, "disagreement": 0.0}, {"errors": 0.0})
    assert passed is True and clean < 2000, "no errors, no disagreement, alike latency: promoted before the window's end"


def test_ab_mode_keeps_a_caller_on_one_version_and_judges_the_outcomes_posted_later(served, definitions, instance):
    """Issue 20 point 3, A/B mode: sticky assignment by a hash of a request field (here the region), business outcomes
    posted later to POST /feedback with the request id, and the two versions compared on them with the same
    anytime-valid test. Bad feedback is a 4xx, never a 5xx."""
    project, start = served
    config = yaml.safe_load(project.config_path.read_text())
    config["serving"]["canary"]["ab"] = {"key_field": "region", "min_feedback": 20}
    project.config_path.write_text(yaml.safe_dump(config))
    base = start()
    assert materialize(definitions, instance, "canary").success
    traffic = unlabeled(2000)
    rng = np.random.default_rng(5)
    met: dict[str, set] = {}
    for i in range(160):
        rows = traffic[traffic["region"] == ("north", "south", "east", "west", "central")[i % 5]].iloc[(i // 5) * 3:(i // 5) * 3 + 3]
        status, answer = post(base, json.dumps({"records": records(rows)}).encode())
        assert status == 200
        met.setdefault(rows["region"].iloc[0], set()).add(answer["slot"])
        converted = rng.random() < (0.2 if answer["slot"] == "canary" else 0.6)  # the canary's users convert far less
        feedback = {"request_id": answer["request_id"], "outcome": int(converted)}
        status, _ = call(base, "POST", "/feedback", feedback)
        assert status == 200
    assert all(len(slots) == 1 for slots in met.values()), f"a region met both versions: {met}"
    assert {"canary", "live"} == set().union(*met.values()), "with a share of 0.5 some regions meet each version"
    for bad in ({"request_id": "nope", "outcome": 1}, {"request_id": "a" * 32, "outcome": "yes"}, {"request_id": "a" * 32}, [1]):
        status, body = call(base, "POST", "/feedback", bad)
        assert status == 400 and body["error"], bad

    metrics = materialize(definitions, instance, "serving_metrics")
    canary = {c.check_name: c for c in metrics.get_asset_check_evaluations()}["canary_comparison"]
    assert not canary.passed and canary.severity == dg.AssetCheckSeverity.ERROR, canary.description
    assert "worse beyond its limit, stop and roll back" in canary.description and "business outcome" in canary.description
    assert canary.metadata["outcome_low"].value > 0, "the champion's outcome is better beyond noise"
