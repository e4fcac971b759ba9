"""The registered model as any MLflow user meets it: pyfunc.load_model, `mlflow models serve`, and runs that say what
they are (names, experiments per purpose, the dataset input, the LoggedModel's name, the link back to Dagster)."""

import json
import os
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pandas as pd
import pytest

from mlcicd.core.dataset import load_batches
from mlcicd.core.ingest import list_accepted
from mlcicd.core.train import predict
from mlcicd.mlflow_registry import CHAMPION, client, load_model, version_by_alias

from .support import free_port, simulate, wait_until_up


@pytest.fixture
def promoted(project, run_job, monkeypatch):
    monkeypatch.setenv("MLCICD_DAGSTER_UI_URL", "http://dagster.example.internal:3000/")
    simulate(project, batches=4)
    trained = run_job("training_job")
    assert trained.success
    assert run_job("promotion_job").success
    return project, trained


def raw_rows(project, rows: int = 200) -> pd.DataFrame:
    """Rows as a caller has them: from an accepted batch, without the label, text as text (mlcicd reads categories as
    pandas categoricals, which MLflow's schema enforcement does not take for a string column)."""
    frame = load_batches(list_accepted(project.accepted_dir)[-1:], project.config.dataset.time_column)
    frame = frame.drop(columns=[project.config.dataset.target]).head(rows).reset_index(drop=True)
    return frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


def mlcicd_predictions(project, frame) -> np.ndarray:
    name = project.model_name("full")
    booster, features = load_model(project, name, str(version_by_alias(project, name, CHAMPION).version))
    return predict(booster, features, frame)


@pytest.mark.starts_first
def test_any_mlflow_user_can_load_and_serve_the_champion(promoted, tmp_path):
    import mlflow.pyfunc
    from mlflow.models import Model

    project, _ = promoted
    uri = f"models:/{project.model_name('full')}@{CHAMPION}"
    os.environ["MLFLOW_TRACKING_URI"] = project.tracking_uri  # what an MLflow user sets (monkeypatch undoes it after the test)
    try:
        model = mlflow.pyfunc.load_model(uri)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI")
    frame = raw_rows(project)
    expected = mlcicd_predictions(project, frame)
    assert np.max(np.abs(np.asarray(model.predict(frame)) - expected)) <= 1e-12

    metadata = Model.load(mlflow.artifacts.download_artifacts(uri, tracking_uri=project.tracking_uri))
    inputs = {spec.name: spec for spec in metadata.signature.inputs.inputs}
    contract = project.contract
    assert set(inputs) == set(contract.columns) - {project.config.dataset.target}, "the signature is the contract's raw columns"
    assert inputs["merchant_category"].type.name == "string" and inputs["amount"].type.name == "double"
    assert inputs["amount"].required and not inputs["transaction_id"].required, "required where the model reads the column"
    assert metadata.saved_input_example_info is not None

    # `mlflow models serve` on loopback, in this environment (where mlcicd, the feature path, is installed)
    port = free_port()
    log = tmp_path / "serve.log"
    # as in an activated virtualenv: MLflow starts `uvicorn` from the PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": project.tracking_uri, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    mlflow_cli = [sys.executable, "-m", "mlflow"]
    with open(log, "w") as out:
        server = subprocess.Popen(
            [*mlflow_cli, "models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,  # its own group: uvicorn is a child
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server, log, seconds=120)
        body = json.loads(frame.head(20).to_json(orient="split", date_format="iso", index=False))
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=json.dumps({"dataframe_split": body}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            served = np.asarray(json.loads(response.read())["predictions"], dtype=float)
    finally:  # stopped by its process group: `mlflow models serve` execs uvicorn in a child that outlives a TERM to it
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    assert np.max(np.abs(served - expected[:20])) <= 1e-12


def test_mlflow_runs_say_what_they_are(promoted, run_job):
    project, trained = promoted
    registry = client(project)
    experiments = {e.name: e for e in registry.search_experiments()}
    training = experiments[project.experiment_for("training")]
    assert "Training runs of the fraud model" in training.tags["mlflow.note.content"]
    (run,) = registry.search_runs([training.experiment_id])
    digest = run.data.tags["dataset_hash"]
    assert run.info.run_name == f"fraud v1 · training · data {digest[:8]}"
    assert run.data.tags["dagster_run_url"] == f"http://dagster.example.internal:3000/runs/{trained.run_id}"
    assert f"]({run.data.tags['dagster_run_url']})" in run.data.tags["mlflow.note.content"], "a markdown link on the run's page"

    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == digest[:36]
    assert json.loads(dataset_input.dataset.source)["uri"] == project.accepted_dir.resolve().as_uri()
    batches = {b.batch_id for b in list_accepted(project.accepted_dir)}
    tags = {t.key: t.value for t in dataset_input.tags}
    assert set(tags["batches"].split(", ")) == batches and tags["mlflow.data.context"] == "training"

    version = registry.get_model_version(project.model_name("full"), "1")
    logged = registry.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.name == "fraud-v1"

    assert run_job("ci_job").success
    after = {e.name: e for e in registry.search_experiments()}
    (ci_run,) = registry.search_runs([after[project.experiment_for("ci")].experiment_id])
    assert ci_run.info.run_name.startswith("fraud v1 · ci · data ")
    assert len(registry.search_runs([training.experiment_id])) == 1, "a CI run never lands in the training experiment"


def test_metadata_shows_rounded_numbers_and_the_stored_value_keeps_them_whole(promoted):
    """Issue 18 point 9: the UI shows 0.8751, the stored evaluation keeps every digit."""
    _, trained = promoted
    evaluation = trained.output_for_node("fraud__candidate_evaluation")
    exact = evaluation["candidate"]["metrics"]["roc_auc"]
    (materialization,) = trained.asset_materializations_for_node("fraud__candidate_evaluation")
    shown = materialization.metadata["candidate_roc_auc"].value
    assert shown == float(f"{exact:.4g}") and len(repr(shown)) <= len("0.12345") and shown != exact


def test_the_training_rows_schema_is_the_one_mlflow_would_infer():
    """MLflow's own inference walks every value in Python (seconds per million rows); ours must log the same schema."""
    import warnings

    import pandas as pd
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.pandas_dataset import PandasDataset

    from mlcicd.core.simulate import simulate_batch
    from mlcicd.resources import SCHEMA_SAMPLE_ROWS, training_rows_dataset

    rows = pd.concat([simulate_batch(i, 3000) for i in range(2)], ignore_index=True)
    rows.loc[len(rows) - 1, "channel"] = None  # a text column missing one value, past the sample's first rows
    rows["device_risk_score"] = rows["device_risk_score"].where(rows.index < SCHEMA_SAMPLE_ROWS * 3)  # missing only late
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source("file:///tmp")
    theirs = PandasDataset(rows, source=source, targets="is_fraud").schema
    ours = training_rows_dataset(rows, source=source, targets="is_fraud").schema
    assert ours == theirs and ours.to_dict() == theirs.to_dict()
    assert {c.name: c.required for c in ours.inputs}["channel"] is False
