"""The scenario matrix: promotion happens if and only if every gate passes, and a refusal names the gate.
Then overrides, modes and rollbacks: never silent, always audited."""

import json
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core.audit import read
from mlcicd.core.simulate import simulate_batch, write_batches
from mlcicd.mlflow_registry import CHALLENGER, CHAMPION, client, version_by_alias
from .support import sensor, DEGRADED, PROMOTION_CHECKS


def champion_of(project) -> str | None:
    version = version_by_alias(project, project.model_name("full"), CHAMPION)
    return None if version is None else str(version.version)


def land(project, batches=4, rows=6000, scenario="baseline"):
    from mlcicd.core.simulate import next_batch_index

    start = next_batch_index([project.data_dir])
    write_batches(project.landing_dir, batches=batches, rows_per_batch=rows, scenario=scenario, start_index=start)


def failed_gates(result) -> set[str]:
    return {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}


def promote(run_job, **config):
    return run_job("promotion_job", {"ops": {"fraud__champion": {"config": config}}} if config else None)


def age_batches(project, days: float):
    """Make every accepted batch look as if it had been ingested `days` ago (no new data since)."""
    when = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
    for record_path in project.accepted_dir.glob("*.json"):
        record = json.loads(record_path.read_text())
        record_path.write_text(json.dumps({**record, "ingested_at": when}))


@pytest.fixture
def with_champion(make_project, run_job):
    """A project whose champion (version 1) was trained and promoted on good data."""
    project = make_project()
    land(project)
    assert run_job("training_job").success and promote(run_job).success
    assert champion_of(project) == "1"
    return project


def assert_refused(project, run_job, gate: str, champion_before):
    refused = promote(run_job)
    assert not refused.success
    assert champion_of(project) == champion_before, "the champion never moves on a failed gate"
    last = read(project.audit_log)[-1]
    assert last["decision"] == "refused" and gate in last["reason"], last["reason"]
    return last


# ---- the matrix -----------------------------------------------------------------------------------


def test_good_data_promotes(make_project, run_job):
    project = make_project()
    land(project)
    trained = run_job("training_job")
    assert trained.success and failed_gates(trained) == set()
    assert promote(run_job).success and champion_of(project) == "1"
    record = read(project.audit_log)[-1]
    assert record["decision"] == "promoted" and all(g["passed"] for g in record["gates"].values())
    assert set(record["metrics"]) == {"candidate", "champion"} and record["dataset_hash"]


def test_degraded_model_is_refused_by_no_regression(with_champion, make_project, run_job):
    make_project(DEGRADED)
    land(with_champion, batches=1)
    assert "no_regression" in failed_gates(run_job("training_job"))
    assert_refused(with_champion, run_job, "gate no_regression did not pass", "1")


def test_one_class_holdout_fails_closed(make_project, run_job):
    project = make_project()
    contract = project.contract_path.read_text().replace(", min_distinct: 2", "")  # a contract that lets a one-class day in
    project.contract_path.write_text(contract)
    land(project, batches=3, rows=5000)
    quiet_day = simulate_batch(3, 6000).assign(is_fraud=0)  # the newest day: no fraud reported at all
    quiet_day.to_parquet(project.landing_dir / "batch-00003-no-fraud.parquet", index=False)
    trained = run_job("training_job")
    assert "meets_thresholds" in failed_gates(trained)
    (evaluation,) = [e for e in trained.get_asset_check_evaluations() if e.check_name == "meets_thresholds"]
    assert "roc_auc could not be computed (got nan)" in evaluation.description
    assert_refused(project, run_job, "gate meets_thresholds did not pass", None)


def test_stale_data_is_refused_by_freshness(make_project, run_job):
    project = make_project()
    land(project)
    assert run_job("training_job").success
    age_batches(project, days=10)  # nothing new has landed for ten days
    last = assert_refused(project, run_job, "gate data_freshness_now did not pass", None)
    assert "ingested 240.0 hours ago" in last["reason"]
    retrained = run_job("training_job")
    assert failed_gates(retrained) == {"data_freshness"}, "a periodic retrain on old data stops at the gate"


def test_schema_break_is_refused_by_the_contract(make_project, run_job):
    project = make_project()
    land(project)
    assert run_job("training_job").success
    land(project, batches=1, scenario="schema_break")
    assert failed_gates(run_job("training_job")) == {"data_contract"}
    assert_refused(project, run_job, "gate data_contract did not pass", None)


def test_one_slice_regressed_is_refused_by_the_slice_gate(with_champion, make_project, run_job):
    # dropping device risk hurts some segments much more than the whole
    # (the decisions at the operating point fall too, and negative flips rise: allowed here, so the slice gate is judged alone)
    make_project({"dataset": {"drop_columns": ["device_risk_score"]}, "gates": {
        "max_regression": 0.1, "max_slice_regression": 0.05, "max_operating_point_drop": 0.5, "max_negative_flip_rate": 0.5}})
    assert run_job("training_job").success is False
    last = assert_refused(with_champion, run_job, "gate no_slice_regression did not pass", "1")
    failed = {name for name, result in last["gates"].items() if not result["passed"]}
    assert failed == {"no_slice_regression"}, "the whole model is fine; one segment is not"
    assert "channel=pos" in last["gates"]["no_slice_regression"]["reason"]


def test_candidate_over_the_latency_budget_is_refused(make_project, run_job):
    project = make_project({"gates": {"latency": {"one_row_p95_ms": 0.001}}})
    land(project)
    assert failed_gates(run_job("training_job")) == {"latency_and_size"}
    last = assert_refused(project, run_job, "gate latency_and_size did not pass", None)
    assert "over the budget of 0.001 ms" in last["reason"]


def test_an_evaluation_of_an_older_candidate_is_refused(make_project, run_job, definitions, instance):
    import dagster as dg

    project = make_project()
    land(project)
    assert run_job("training_job").success
    newer = dg.materialize(list(definitions.assets), selection=[dg.AssetKey(["fraud", "candidate_model"])], resources=definitions.resources, instance=instance)
    assert newer.success and str(version_by_alias(project, project.model_name("full"), CHALLENGER).version) == "2"
    assert_refused(project, run_job, "the latest evaluation is of version 1, but the candidate waiting is version 2", None)


# ---- overrides, modes, rollbacks -------------------------------------------------------------------


def test_override_needs_a_reason_and_is_recorded_as_an_override(with_champion, make_project, run_job):
    make_project(DEGRADED)
    land(with_champion, batches=1)
    run_job("training_job")
    assert not promote(run_job, override=True, reason="because").success, "an override without a real reason is refused"
    assert champion_of(with_champion) == "1"

    reason = "Incident 42: the old model's feature feed is being switched off tonight."
    assert promote(run_job, override=True, reason=reason, requested_by="alice").success
    assert champion_of(with_champion) == "2"
    last = read(with_champion.audit_log)[-1]
    assert last["decision"] == "overridden" and reason in last["reason"] and "no_regression" in last["reason"]
    assert last["triggered_by"].startswith("alice (as requested; ") and ("OS user" in last["triggered_by"] or "CI " in last["triggered_by"])
    tags = client(with_champion).get_model_version(with_champion.model_name("full"), "2").tags
    assert tags["gates_passed"] == "false" and tags["last_decision"] == "overridden"


@pytest.mark.parametrize("mode, promoted", [("manual", False), ("auto", True)])
def test_mode_decides_whether_automation_may_promote(make_project, run_job, mode, promoted):
    project = make_project({"promotion": {"mode": mode}})
    land(project)
    assert run_job("training_job").success
    result = run_job("promotion_job", tags={"dagster/sensor_name": "promote_after_training"})
    assert result.success is promoted
    last = read(project.audit_log)[-1]
    assert last["triggered_by"] == "sensor promote_after_training"
    if not promoted:
        assert "promotion.mode is manual" in last["reason"] and champion_of(project) is None
        assert promote(run_job).success, "a person may still promote in manual mode"
    assert champion_of(project) == "1"


def test_rollback_goes_back_to_the_previous_champion_and_is_audited(with_champion, run_job):
    land(with_champion, batches=1)
    assert run_job("training_job").success and promote(run_job).success
    assert champion_of(with_champion) == "2"
    result = run_job("fraud__rollback_job", {"ops": {"fraud__roll_back": {"config": {"reason": "version 2 misbehaves in production"}}}})
    assert result.success and champion_of(with_champion) == "1"
    last = read(with_champion.audit_log)[-1]
    assert last["decision"] == "rolled_back" and last["from_version"] == "2" and last["to_version"] == "1"
    assert "version 2 misbehaves" in last["reason"]


def test_rollback_refuses_a_version_that_never_passed_its_gates_unless_overridden(with_champion, make_project, run_job):
    make_project(DEGRADED)
    land(with_champion, batches=1)
    run_job("training_job")  # version 2: failed its gates, never promoted

    def rollback(**config):
        return run_job("fraud__rollback_job", {"ops": {"fraud__roll_back": {"config": config}}})

    assert not rollback(to_version="2").success and champion_of(with_champion) == "1"
    assert "never passed its gates" in read(with_champion.audit_log)[-1]["reason"]
    assert not rollback(to_version="99").success and "does not exist" in read(with_champion.audit_log)[-1]["reason"]
    assert rollback(to_version="2", override=True, reason="forensics: reproduce last week's scores exactly").success
    assert champion_of(with_champion) == "2" and "OVERRIDE" in read(with_champion.audit_log)[-1]["reason"]


def test_rollback_refuses_a_version_whose_files_changed_after_registration(with_champion, run_job):
    land(with_champion, batches=1)
    assert run_job("training_job").success and promote(run_job).success and champion_of(with_champion) == "2"
    registry = client(with_champion)
    version_1 = registry.get_model_version(with_champion.model_name("full"), "1")
    logged = registry.get_logged_model(version_1.source.removeprefix("models:/"))  # MLflow 3: the version's source is its logged model
    folder = Path(logged.artifact_location.removeprefix("file://"))
    (model_file,) = folder.rglob("booster.txt")
    model_file.write_text(model_file.read_text().replace("num_leaves=", "num_leaves=1", 1))  # tampered with after registration

    refused = run_job("fraud__rollback_job", {"ops": {"fraud__roll_back": {"config": {"reason": "version 2 misbehaves"}}}})
    assert not refused.success and champion_of(with_champion) == "2", "the champion never moves to files nobody registered"
    last = read(with_champion.audit_log)[-1]
    assert last["decision"] == "refused" and last["to_version"] == "1"
    assert last["gates"]["artifact_integrity"]["passed"] is False
    assert "the model files changed after registration" in last["reason"]

    overridden = run_job("fraud__rollback_job", {"ops": {"fraud__roll_back": {"config": {
        "to_version": "1", "override": True, "reason": "I know what I am doing, roll back anyway"}}}})
    assert not overridden.success and champion_of(with_champion) == "2", "an override never waives the files' identity"
    assert "never identity" in read(with_champion.audit_log)[-1]["reason"]


def tamper(project, version: str) -> None:
    registry = client(project)
    logged = registry.get_logged_model(registry.get_model_version(project.model_name("full"), version).source.removeprefix("models:/"))
    (model_file,) = Path(logged.artifact_location.removeprefix("file://")).rglob("booster.txt")
    model_file.write_text(model_file.read_text().replace("num_leaves=", "num_leaves=1", 1))


def test_scoring_and_serving_say_why_when_the_champions_files_fail_their_check(with_champion, make_project, run_job):
    from mlcicd.core.simulate import write_batches
    from mlcicd.serving import ModelServer, ServingError

    land(with_champion, batches=1)
    assert run_job("training_job").success and promote(run_job).success and champion_of(with_champion) == "2"
    tamper(with_champion, "2")

    write_batches(with_champion.scoring_dir, batches=1, rows_per_batch=200, drop_columns=("is_fraud",))
    scoring = run_job("fraud__scoring_job")
    (failure,) = scoring.get_step_failure_events()
    said = failure.event_specific_data.error.message
    assert "Champion version 2 of" in said and "cannot be used for scoring" in said and "changed after registration" in said
    assert list(with_champion.scoring_dir.iterdir()), "nothing was scored, nothing was moved"

    with pytest.raises(ServingError, match="champion version 2 of .* cannot be served: .*fallback_to_last_good"):
        ModelServer(with_champion).load_champion()
    server = ModelServer(make_project({"serving": {"fallback_to_last_good": True}}))
    said = server.load_champion(fallback=True)
    assert server.slots["live"].version == "1" and "serving version 1 instead" in said, said


@pytest.mark.persistent_instance  # `mlcicd status` reads the gate results from the instance
def test_status_and_history_show_champion_challenger_gates_and_trail(with_champion, make_project, run_job):
    make_project(DEGRADED)
    land(with_champion, batches=1)
    run_job("training_job")
    promote(run_job)  # refused
    report = json.loads(CliRunner().invoke(main, ["status", "--json"]).output)
    assert report["champion"]["version"] == "1" and report["challenger"]["version"] == "2"
    assert report["gates"]["no_regression"]["passed"] is False and report["gates"]["min_rows"]["passed"] is True
    text = CliRunner().invoke(main, ["status"]).output
    assert "FAIL  no_regression" in text and "challenger: version 2" in text
    trail = CliRunner().invoke(main, ["history"]).output.splitlines()
    assert trail[0].split()[:3] == ["when", "(UTC)", "decision"]
    assert [line.split()[1] for line in trail[1:] if not line.startswith(" ")] == ["promoted", "refused"]  # (whys wrap, indented)
    records = json.loads(CliRunner().invoke(main, ["history", "--json"]).output)
    assert [r["decision"] for r in records] == ["promoted", "refused"]
    assert set(records[-1]["gates"]) == PROMOTION_CHECKS


def test_slices_that_cannot_be_judged_fail_the_slice_gate(with_champion, make_project, run_job):
    make_project({"gates": {"slice_min_rows": 1_000_000}})  # no slice of the holdout is that large
    land(with_champion, batches=1)
    trained = run_job("training_job")
    assert failed_gates(trained) == {"no_slice_regression"}
    (evaluation,) = [e for e in trained.get_asset_check_evaluations() if e.check_name == "no_slice_regression"]
    assert "cannot be ruled out" in evaluation.description


def test_retraining_with_nothing_new_registers_nothing(make_project, run_job):
    """Same data, same committed code, same settings: recorded as unchanged, no new version (issue 17, point 8)."""
    import subprocess

    from mlcicd.core.audit import read as read_audit

    project = make_project()
    for command in (["init", "-q"], ["add", "mlcicd.yaml", "contracts"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"]):
        subprocess.run(["git", *command], cwd=project.root, check=True)
    land(project)
    assert run_job("training_job").success and promote(run_job).success and champion_of(project) == "1"

    again = run_job("training_job")
    assert again.success
    (candidate,) = again.asset_materializations_for_node("fraud__candidate_model")
    assert "nothing new to learn" in candidate.metadata["unchanged"].value
    assert promote(run_job).success
    versions = client(project).search_model_versions(f"name = '{project.model_name('full')}'")
    assert [str(v.version) for v in versions] == ["1"], "nothing was registered"
    last = read_audit(project.audit_log)[-1]
    assert last["decision"] == "unchanged" and "nothing new to learn" in last["reason"]

    land(project, batches=1)  # new data: a new candidate again
    assert run_job("training_job").success
    assert len(client(project).search_model_versions(f"name = '{project.model_name('full')}'")) == 2


def test_an_alias_moved_outside_the_pipeline_is_noticed_refused_and_reverted_by_config(with_champion, make_project, run_job, instance):
    """Anyone with the registry's address can move an alias; mlcicd compares it with its audit trail (issue 17, point 2)."""
    import dagster as dg

    from mlcicd.core.simulate import write_batches
    from mlcicd.serving import ModelServer, ServingError

    land(with_champion, batches=1)
    assert run_job("training_job").success  # version 2 waits as the challenger
    name = with_champion.model_name("full")
    client(with_champion).set_registered_model_alias(name, CHAMPION, "2")  # what a POST to the registry's alias endpoint does

    said = CliRunner().invoke(main, ["status", "--json"])
    assert said.exit_code == 0, said.output[-500:] + repr(said.exception)
    report = json.loads(said.stdout)  # stdout alone: Dagster's notice about an instance without dagster.yaml goes to stderr
    assert "moved outside the pipeline" in report["champion_audit"]
    write_batches(with_champion.scoring_dir, batches=1, rows_per_batch=200, drop_columns=("is_fraud",))
    (failure,) = run_job("fraud__scoring_job").get_step_failure_events()
    assert "Nothing was scored" in failure.event_specific_data.error.message
    with pytest.raises(ServingError, match="moved outside the pipeline"):
        ModelServer(with_champion).load_champion()

    def tick(cursor=None):
        return sensor("fraud__unaudited_champion_alert")(dg.build_sensor_context(instance=instance, cursor=cursor))

    first = tick()
    alerts = [json.loads(line) for line in with_champion.alerts_log.read_text().splitlines()]
    assert [a["kind"] for a in alerts] == ["unaudited_champion"] and alerts[0]["version"] == "2"
    assert "revert_unaudited is off" in str(first)

    make_project({"promotion": {"revert_unaudited": True}})
    request = tick(cursor="2")
    assert isinstance(request, dg.RunRequest)
    assert run_job("fraud__rollback_job", request.run_config).success and champion_of(with_champion) == "1"
    last = read(with_champion.audit_log)[-1]
    assert last["decision"] == "rolled_back" and "moved outside the pipeline" in last["reason"]
    assert json.loads(CliRunner().invoke(main, ["status", "--json"]).stdout)["champion_audit"] is None


def test_every_decision_records_a_known_identity_and_requested_by_beside_it(monkeypatch):
    from mlcicd.core.audit import actor

    for variable in ("USER", "LOGNAME", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "CI"):
        monkeypatch.delenv(variable, raising=False)
    assert actor().startswith(("OS user ", "OS uid ")) and "unknown" not in actor(), "USER unset: the uid's name, never 'unknown'"
    assert actor("alice@example.com") == "Dagster user alice@example.com"
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert actor() == "CI actor octocat"


def test_the_audit_trail_is_chained_and_keeps_each_champions_hash_beyond_the_registrys_reach(with_champion, run_job):
    """Whoever can write the registry can rewrite a version's SHA-256 tag with its files; the chained trail keeps the hash
    recorded at the move, and `mlcicd audit verify` finds an edited record (issue 17, point 2, second bullet)."""
    from mlcicd.mlflow_registry import HASH_TAG, artifact_sha256
    from mlcicd.serving import ModelServer, ServingError

    assert CliRunner().invoke(main, ["audit", "verify"]).exit_code == 0
    name = with_champion.model_name("full")
    registry = client(with_champion)
    logged = registry.get_logged_model(registry.get_model_version(name, "1").source.removeprefix("models:/"))
    (model_file,) = Path(logged.artifact_location.removeprefix("file://")).rglob("booster.txt")
    model_file.write_text(model_file.read_text().replace("num_leaves=", "num_leaves=1", 1))
    registry.set_model_version_tag(name, "1", HASH_TAG, artifact_sha256(str(model_file.parents[0])))  # the tag rewritten to match
    with pytest.raises(ServingError, match="the registry's record was rewritten"):
        ModelServer(with_champion).load_champion()

    lines = with_champion.audit_log.read_text().splitlines()
    lines[0] = lines[0].replace('"promoted"', '"overridden"', 1)  # someone edits the first record
    with_champion.audit_log.write_text("\n".join(lines) + "\n")
    checked = CliRunner().invoke(main, ["audit", "verify"])
    assert checked.exit_code != 0 and "line 2 does not hold the SHA-256 of line 1" in checked.output
