"""The shape of the code location: a change to the graph, the gates or the jobs shows up here in review."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg


MODELS = ("fraud", "merchants", "disputes")  # the shipped components under mlcicd/defs/models/
# every asset of a model is under its key prefix and in its group
EXPECTED_ASSETS = {f"{model}/{name}": model for model in MODELS for name in (
    "raw_batch", "training_dataset", "train_set", "holdout_set", "candidate_model", "candidate_evaluation", "champion", "drift_report", "drift_evidently_page",
    "batch_predictions", "deployment", "canary", "serving_metrics",
)}
EXPECTED_CHECKS = {
    ("raw_batch", "data_contract"),
    ("training_dataset", "data_freshness"),
    ("training_dataset", "min_rows"),
    ("training_dataset", "label_balance"),
    ("training_dataset", "unique_ids"),
    ("holdout_set", "no_leakage"),
    ("candidate_evaluation", "label_quality"),
    ("candidate_evaluation", "meets_thresholds"),
    ("candidate_evaluation", "no_regression"),
    ("candidate_evaluation", "no_slice_regression"),
    ("candidate_evaluation", "operating_point"),
    ("candidate_evaluation", "negative_flips"),
    ("candidate_evaluation", "calibration"),
    ("candidate_evaluation", "latency_and_size"),
    ("candidate_evaluation", "identity"),
    ("drift_report", "data_drift"),
    ("drift_report", "performance_decay"),
    ("drift_report", "estimated_performance"),
    ("deployment", "deployment_healthy"),
    ("serving_metrics", "serving_within_budget"),
    ("serving_metrics", "canary_comparison"),
}


def test_assets_have_their_names_groups_kinds_and_descriptions(definitions):
    graph = definitions.resolve_asset_graph()
    specs = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    assert {name: node.group_name for name, node in specs.items()} == EXPECTED_ASSETS
    for name, node in specs.items():
        assert node.kinds, f"{name} has no kinds"
        assert node.description and len(node.description) > 30, f"{name} needs a description a person can read"


def test_every_gate_is_a_blocking_check(definitions):
    graph = definitions.resolve_asset_graph()
    checks = {(key.asset_key.path[-1], key.name): graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert set(checks) == EXPECTED_CHECKS and len(graph.asset_check_keys) == 3 * len(EXPECTED_CHECKS), "every model has every gate"
    gates = {key: spec for key, spec in checks.items() if key[0] != "serving_metrics"}  # the service's budget: a WARN starts nothing
    assert all(spec.blocking for spec in gates.values()), "every gate blocks what comes after it (monitoring: fails its run)"
    freshness = graph.get(dg.AssetKey(["fraud", "training_dataset"])).freshness_policy
    assert freshness is not None and freshness.fail_window.to_timedelta().total_seconds() == 48 * 3600


def test_jobs_and_what_they_select(definitions):
    def selected(name):
        job = definitions.resolve_job_def(name)
        return {key.path[-1] for key in job.asset_layer.selected_asset_keys}

    training = {"raw_batch", "training_dataset", "train_set", "holdout_set", "candidate_model", "candidate_evaluation"}
    everyone = {key.path[0] for key in definitions.resolve_job_def("training_job").asset_layer.selected_asset_keys}
    assert everyone == set(MODELS), "training_job, promotion_job and ci_job run every model"
    assert selected("training_job") == training
    assert selected("ci_job") == training | {"champion"}
    assert selected("promotion_job") == {"champion", "deployment"}  # deployment says "nothing to deploy" with serving off
    assert not definitions.resolve_job_def("fraud__rollback_job").asset_layer.selected_asset_keys, "rollback_job is an op job with its own config"
    assert selected("fraud__ingestion_job") == {"raw_batch"}
    assert selected("fraud__monitoring_job") == {"drift_report", "drift_evidently_page"}
    assert selected("fraud__scoring_job") == {"batch_predictions"}
    assert selected("fraud__training_job") == training and definitions.resolve_job_def("fraud__training_job").tags["mlcicd/model"] == "fraud"
    assert definitions.resolve_job_def("ci_job").tags["mlcicd/tier"] == "ci"
    assert definitions.resolve_job_def("training_job").tags["mlcicd/tier"] == "full"


def test_loading_the_code_location_imports_no_heavy_library_and_tunes_nothing():
    code = (
        "import gc, sys, json; before = gc.get_threshold(); import mlcicd.definitions as d; d.defs();"
        "print(json.dumps({'heavy': [m for m in ('mlflow', 'lightgbm', 'evidently', 'sklearn', 'pandera') if m in sys.modules],"
        " 'collector': [before == gc.get_threshold(), gc.get_freeze_count()]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"heavy": [], "collector": [True, 0]}, "no process-wide tuning as an import side effect"


def test_dagster_cli_lists_the_jobs():
    dagster = [sys.executable, "-m", "dagster"]
    out = subprocess.run([*dagster, "job", "list", "-m", "mlcicd.definitions"], capture_output=True, text=True, check=True).stdout
    for job in ("training_job", "promotion_job", "fraud__rollback_job", "ci_job", "fraud__ingestion_job", "fraud__monitoring_job", "fraud__scoring_job"):
        assert job in out


def test_the_gate_table_is_what_the_checks_promotion_and_alerts_are_built_from(definitions):
    from mlcicd.core import gate_table
    from mlcicd.gate_checks import reverified_keys
    from mlcicd.names import Names
    from mlcicd.pipeline.training.checks import JUDGES

    graph = definitions.resolve_asset_graph()
    checks = {(key.asset_key.path[-1], key.name): graph.get_check_spec(key) for key in graph.asset_check_keys}
    table = {(gate.asset, gate.name): gate for gate in gate_table.GATES if gate.stage != "promotion"}
    assert set(checks) == set(table), "every check is a row of the gate table, and every row (but promotion's own) is a check"
    for key, spec in checks.items():
        assert (spec.blocking, spec.description) == (table[key].blocking, table[key].demands), key
    assert set(JUDGES) == {gate.name for gate in gate_table.stage("model")}, "each model gate has a judge, and only those"
    reverified = [(key.asset_key.path[-1], key.name) for key in reverified_keys(Names("fraud"))]
    assert reverified == [(g.asset, g.name) for g in gate_table.GATES if g.reverified]
    assert {name for _, name in reverified} >= {g.name for g in gate_table.GATES if g.stage in ("data", "model")}, \
        "promotion re-verifies every data and model gate, whichever asset it is on"
    assert gate_table.in_pipeline_order(["identity", "data_contract", "no_regression", "unknown"]) == ["data_contract", "no_regression", "identity", "unknown"]


def test_dg_checks_lists_and_launches_the_code_location(project, tmp_path):
    """`dg` (dagster-dg-cli) from the project root: the same code location as `dagster job execute`."""
    from mlcicd.core.simulate import write_batches

    from .conftest import REPO

    dg_cli = str(Path(sys.executable).parent / "dg")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}  # MLCICD_CONFIG: the test's project
    checked = subprocess.run([dg_cli, "check", "defs"], cwd=REPO, env=env, capture_output=True, text=True)
    assert checked.returncode == 0 and "All definitions loaded successfully" in checked.stdout + checked.stderr, checked.stderr[-2000:]
    listed = json.loads(subprocess.run([dg_cli, "list", "defs", "--json"], cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout)
    assert {"training_job", "promotion_job", "fraud__rollback_job", "ci_job"} <= {job["name"] for job in listed["jobs"]}
    from mlcicd.core.gate_table import GATES

    checks = {check["name"] for check in listed["asset_checks"]}
    assert checks == {gate.name for gate in GATES if gate.stage != "promotion"} and len(listed["asset_checks"]) == len(checks)
    assert "dead_run_sweeper" in {sensor["name"] for sensor in listed["sensors"]}
    write_batches(project.landing_dir, batches=1, rows_per_batch=500)
    launched = subprocess.run([dg_cli, "launch", "--job", "fraud__ingestion_job"], cwd=REPO, env=env, capture_output=True, text=True)
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert len(list(project.accepted_dir.rglob("*.parquet"))) == 1 and not list(project.landing_dir.iterdir())


def test_lineage_and_owners_tell_the_whole_story(definitions):
    """Issue 18 point 9: monitoring and scoring hang off the champion in the graph; every asset has its model's owner."""
    import dagster as dg

    from .support import shipped_settings

    graph = definitions.resolve_asset_graph()
    for asset in ("drift_report", "batch_predictions"):
        assert graph.get(dg.AssetKey(["fraud", asset])).parent_keys == {dg.AssetKey(["fraud", "champion"])}
    owners = {spec.key.to_user_string(): spec.owners for spec in definitions.resolve_all_asset_specs()}
    assert owners and all(found == [shipped_settings(key.split("/")[0])["card"]["owner"]] for key, found in owners.items()), owners
