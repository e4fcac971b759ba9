"""The whole loop through its jobs: ingest, train, evaluate, gate, promote (or refuse), and say why."""

import json
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core.audit import decisions, read
from mlcicd.core.simulate import write_batches
from mlcicd.mlflow_registry import CHALLENGER, CHAMPION, client, version_by_alias

from .support import ALL_GATES, DEGRADED, PROMOTION_CHECKS, checks, simulate

def alias(project, tier: str, name: str):
    version = version_by_alias(project, project.model_name(tier), name)
    return None if version is None else str(version.version)


def test_ci_job_on_a_fresh_clone_runs_the_whole_loop_and_promotes(project, run_job):
    assert not project.data_dir.joinpath("landing").exists()
    result = run_job("ci_job")
    assert result.success
    verdicts = checks(result)
    assert set(verdicts) == ALL_GATES
    assert all(v.passed for v in verdicts.values())
    assert all(v.severity == dg.AssetCheckSeverity.ERROR for v in verdicts.values())

    assert alias(project, "ci", CHAMPION) == "1" and alias(project, "ci", CHALLENGER) is None
    assert alias(project, "full", CHAMPION) is None, "the CI tier never touches the production model"
    (record,) = decisions(project.audit_log)
    assert record["decision"] == "promoted" and record["to_version"] == "1" and record["from_version"] is None

    # one MLflow run for the Dagster run, finished, with params, metrics, dataset hash and commit
    mlflow_client = client(project)
    experiment = mlflow_client.get_experiment_by_name(project.experiment_for("ci"))
    (run,) = mlflow_client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert run.data.tags["dataset_hash"] == record["dataset_hash"]
    assert "git_commit" in run.data.tags and run.data.params["tier"] == "ci"
    assert 0.8 <= run.data.metrics["holdout_roc_auc"] < 0.97


@pytest.mark.persistent_instance  # `mlcicd status` reads the gate results from the instance
def test_training_then_ci_then_promotion_promotes_a_good_candidate_and_says_why(project, run_job):
    simulate(project)
    trained = run_job("training_job")
    assert trained.success
    assert alias(project, "full", CHALLENGER) == "1" and alias(project, "full", CHAMPION) is None
    # a CI run in between (a pull request, say) has its own model and stored values: production's evidence stays
    assert run_job("ci_job").success and alias(project, "ci", CHAMPION) == "1"
    assert (project.assets_dir / "tier-ci" / "candidate_evaluation.json").exists()

    promoted = run_job("promotion_job")
    assert promoted.success
    assert alias(project, "full", CHAMPION) == "1" and alias(project, "full", CHALLENGER) is None

    out = CliRunner().invoke(main, ["status"]).output
    assert out.startswith("champion: version 1 of mlcicd-fraud, roc_auc 0.")
    assert "promoted because every gate passed for version 1" in out
    report = json.loads(CliRunner().invoke(main, ["status", "--json"]).output)
    assert report["champion"]["version"] == "1" and report["challenger"] is None
    assert report["last_decision"]["decision"] == "promoted"
    assert set(report["last_decision"]["gates"]) == PROMOTION_CHECKS
    assert report["gates"]["no_regression"]["passed"] and set(report["gates"]) == ALL_GATES


def test_a_degraded_candidate_is_not_promoted_and_the_champion_stays(make_project, run_job):
    project = make_project()
    simulate(project)
    assert run_job("training_job").success and run_job("promotion_job").success

    make_project(DEGRADED)
    simulate(project, batches=1)
    trained = run_job("training_job")
    assert not trained.success
    regression = checks(trained)["no_regression"]
    assert not regression.passed
    assert "against champion version 1's" in regression.description and "it is worse than the champion" in regression.description
    assert alias(project, "full", CHALLENGER) == "2"

    refused = run_job("promotion_job")
    assert not refused.success
    assert alias(project, "full", CHAMPION) == "1", "the champion did not move"
    last = read(project.audit_log)[-1]
    assert last["decision"] == "refused" and last["to_version"] == "2" and last["from_version"] == "1"
    assert "gate no_regression did not pass" in last["reason"]


def test_a_bad_batch_stops_training_in_the_same_run(project, run_job):
    write_batches(project.landing_dir, batches=3, rows_per_batch=5000)
    write_batches(project.landing_dir, batches=1, rows_per_batch=5000, scenario="schema_break", start_index=3)
    result = run_job("training_job")
    assert not result.success
    assert not checks(result)["data_contract"].passed
    materialized = {e.asset_key.to_user_string() for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert materialized == {"fraud/raw_batch"}, "nothing after the failed gate ran"
    assert alias(project, "full", CHALLENGER) is None


def test_promotion_refuses_an_evaluation_that_its_gates_did_not_see(project, run_job, definitions, instance):
    simulate(project)
    assert run_job("training_job").success
    # Re-evaluate without running the gates: the newest evaluation now has no gate results of its own.
    again = dg.materialize(
        list(definitions.assets),  # the assets without their checks
        selection=[dg.AssetKey(["fraud", "candidate_evaluation"])],
        resources=definitions.resources,
        instance=instance,
        tags={"mlcicd/tier": "full"},
    )
    assert again.success
    refused = run_job("promotion_job")
    assert not refused.success
    assert alias(project, "full", CHAMPION) is None
    reason = read(project.audit_log)[-1]["reason"]
    assert "its latest result is for an older fraud/candidate_evaluation, not the current one" in reason


@pytest.mark.parametrize("floor, expect_ok", [(0.5, True), (0.99, False)])
def test_dagster_job_execute_exit_code_follows_the_gates(make_project, tmp_path, floor, expect_ok):
    """What a CI step runs: `dagster job execute -j ci_job`, through Dagster's own command line in its own process (as
    CI runs it: in this process Dagster would reuse the definitions it loaded for an earlier test's project), on an
    instance under DAGSTER_HOME."""
    import os
    import subprocess
    import sys

    make_project({"gates": {"min_metrics": {"roc_auc": floor}}})
    home = tmp_path / "dagster_home"
    home.mkdir()
    command = [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "mlcicd.definitions", "-j", "ci_job"]
    run = subprocess.run(command, env={**os.environ, "DAGSTER_HOME": str(home)}, capture_output=True, text=True)
    assert (run.returncode == 0) is expect_ok, run.stdout[-3000:] + run.stderr[-3000:]
    if not expect_ok:
        assert "below the required 0.99" in run.stdout + run.stderr


def test_the_registered_model_scores_exactly_like_the_model_that_was_trained(project, run_job):
    """One feature path: retraining in process on the stored train_set (deterministic) and scoring the holdout
    gives the very probabilities that the registered version gives after the round trip through MLflow. And the
    version's pip requirements pin what it was trained with."""
    from pathlib import Path

    import lightgbm
    import mlflow
    import numpy as np
    import pandas as pd

    from mlcicd.core.train import predict, train_model
    from mlcicd.mlflow_registry import load_model

    assert run_job("ci_job").success
    stored = project.assets_dir / "tier-ci"  # the CI tier's values, apart from production's
    train = pd.read_parquet(stored / "train_set.parquet")
    holdout = pd.read_parquet(stored / "holdout_set.parquet")
    in_memory = train_model(train, project.config.dataset, project.config.model, project.tier("ci").num_boost_round)
    booster, features = load_model(project, project.model_name("ci"), "1")
    assert features == in_memory.features and features.feature_names == in_memory.features.feature_names
    np.testing.assert_array_equal(predict(booster, features, holdout), in_memory.predict(holdout))

    local = mlflow.artifacts.download_artifacts(f"models:/{project.model_name('ci')}/1", tracking_uri=project.tracking_uri)
    requirements = (Path(local) / "requirements.txt").read_text().split()
    assert f"lightgbm=={lightgbm.__version__}" in requirements and f"mlflow=={mlflow.__version__}" in requirements


def test_mlflow_tracking_uri_overrides_the_local_store(project, run_job, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    assert run_job("ci_job").success
    elsewhere = MlflowClient(tracking_uri=f"sqlite:///{other}")
    assert str(elsewhere.get_model_version_by_alias(project.model_name("ci"), CHAMPION).version) == "1"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert alias(project, "ci", CHAMPION) is None, "nothing went to the default store"
