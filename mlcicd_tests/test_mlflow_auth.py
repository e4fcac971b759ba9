"""The production profile's MLflow: the tracking server with its basic-auth app (`scripts/production.sh mlflow`), the
pipeline's own account (`scripts/production.sh accounts`), and nobody else able to move the champion (issue 17,
point 2): the pipeline trains and promotes through the server; another account and an anonymous caller are refused
when they try to set the alias, and the champion stays where the pipeline put it."""

import os
import signal
import subprocess

import pytest

from mlcicd.mlflow_registry import CHAMPION
from mlcicd.production import mlflow_api

from .conftest import REPO
from .support import free_port, simulate, wait_until_up

ADMIN = ("admin", "admin-secret-for-the-test")
PIPELINE = ("mlcicd-pipeline", "pipeline-secret-for-the-test")
ANALYST = ("analyst", "analyst-secret-for-the-test")


@pytest.fixture
def auth_server(tmp_path, mlflow_template):
    port = free_port()
    env = {
        **os.environ, "MLCICD_MLFLOW_PORT": str(port), "MLCICD_MLFLOW_WORKERS": "1",
        "MLCICD_MLFLOW_BACKEND_URI": f"sqlite:///{mlflow_template.parent / f'server-{port}.db'}",
        "MLCICD_MLFLOW_ARTIFACTS": str(tmp_path / "artifacts"), "MLCICD_MLFLOW_AUTH_INI": str(tmp_path / "auth.ini"),
        "MLCICD_MLFLOW_AUTH_DB_URI": f"sqlite:///{tmp_path / 'auth.db'}",
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1], "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-key-for-the-test",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    import shutil

    shutil.copy(mlflow_template, mlflow_template.parent / f"server-{port}.db")  # an empty store, already migrated
    log = tmp_path / "mlflow.log"
    with open(log, "w") as out:
        process = subprocess.Popen(["bash", REPO / "scripts" / "production.sh", "mlflow"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/health", process, log, seconds=120)
    yield base, env
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.starts_first
def test_only_the_pipelines_account_moves_the_champion_on_the_production_tracking_server(auth_server, make_project, run_job, monkeypatch):
    import stat

    base, env = auth_server
    assert stat.S_IMODE(os.stat(env["MLCICD_MLFLOW_AUTH_INI"]).st_mode) == 0o600, "the auth config is its owner's only"
    project = make_project()
    accounts = subprocess.run(["bash", REPO / "scripts" / "production.sh", "accounts"], capture_output=True, text=True, timeout=120,
                              env={**env, "MLFLOW_TRACKING_URI": base, "MLFLOW_TRACKING_PASSWORD": PIPELINE[1],
                                   "MLCICD_CONFIG": str(project.root / "mlcicd.yaml")})
    assert accounts.returncode == 0, accounts.stderr[-2000:]
    name = project.model_name("full")
    assert f"created the registered model {name}" in accounts.stdout and PIPELINE[1] not in accounts.stdout

    # the pipeline works through the server with its own account (MLflow's client reads the two variables)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", base)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", PIPELINE[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PIPELINE[1])
    simulate(project, batches=3)
    assert run_job("training_job").success and run_job("promotion_job").success
    status, answer = mlflow_api(base, "GET", f"/api/2.0/mlflow/registered-models/alias?name={name}&alias={CHAMPION}", account=PIPELINE)
    assert status == 200 and answer["model_version"]["version"] == "1"

    # anyone else: an anonymous caller, and an account the admin made for a person, may read but not move the alias
    assert mlflow_api(base, "POST", "/api/2.0/mlflow/users/create", {"username": ANALYST[0], "password": ANALYST[1]}, ADMIN)[0] == 200
    move = {"name": name, "alias": CHAMPION, "version": "1"}
    assert mlflow_api(base, "POST", "/api/2.0/mlflow/registered-models/alias", move)[0] == 401
    status, answer = mlflow_api(base, "POST", "/api/2.0/mlflow/registered-models/alias", move, ANALYST)
    assert status == 403, answer
    assert mlflow_api(base, "DELETE", "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": CHAMPION}, ANALYST)[0] == 403
    status, answer = mlflow_api(base, "GET", f"/api/2.0/mlflow/registered-models/alias?name={name}&alias={CHAMPION}", account=ANALYST)
    assert status == 200 and answer["model_version"]["version"] == "1", "another account reads the champion, and it has not moved"
    assert mlflow_api(base, "POST", "/api/2.0/mlflow/registered-models/alias", move, PIPELINE)[0] == 200, "the pipeline's account may"
