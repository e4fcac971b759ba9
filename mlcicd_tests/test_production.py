"""The production profile: PostgreSQL for the Dagster instance and MLflow, the run queue's lanes, and the
Helm values kept in step with it.

The PostgreSQL test needs a server (127.0.0.1:5432 as user postgres, or $MLCICD_TEST_PG_URL). Where none
answers it skips and says why; `.ci/run` sets MLCICD_REQUIRE_POSTGRES=1, which turns the skip into a failure.
"""

import json
import os
import uuid

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from dagster._cli import cli as dagster_cli

from mlcicd.cli import main
from mlcicd.production import drop_database, ensure_database

from .conftest import REPO

PG_URL = os.environ.get("MLCICD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
SECRET = "s3cr3t-pw-4711"  # trust authentication ignores it; it must never be shown anywhere
PRODUCTION_YAML = REPO / "deploy" / "production" / "dagster.yaml"


@pytest.fixture
def postgres():
    """Two throwaway databases (Dagster's and MLflow's) on the test server, dropped afterwards."""
    try:
        import psycopg2

        psycopg2.connect(f"{PG_URL}/postgres", connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: no server to test against
        reason = f"no PostgreSQL at {PG_URL.split('@')[-1]} ({type(exc).__name__}: {str(exc).strip()[:120]})"
        if os.environ.get("MLCICD_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"MLCICD_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    suffix = uuid.uuid4().hex[:10]
    server = PG_URL.replace("postgresql://", "postgresql+psycopg2://")
    if "@" in server and ":" not in server.split("//")[1].split("@")[0]:
        server = server.replace("@", f":{SECRET}@", 1)  # a password in the URL, as production has one
    urls = {"dagster": f"{server}/mlcicd_test_dagster_{suffix}", "mlflow": f"{server}/mlcicd_test_mlflow_{suffix}"}
    for url in urls.values():
        ensure_database(url)
    yield urls
    for url in urls.values():
        drop_database(url)


@pytest.mark.starts_first
def test_training_and_promotion_run_on_postgresql(make_project, postgres, tmp_path, monkeypatch):
    import mlflow

    project = make_project()
    home = tmp_path / "production_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(PRODUCTION_YAML.read_text())  # the shipped production instance, as is
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MLCICD_DAGSTER_PG_URL", postgres["dagster"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres["mlflow"])
    assert CliRunner().invoke(main, ["simulate", "--batches", "3"]).exit_code == 0
    shown = []
    for job in ("training_job", "promotion_job"):  # Dagster's command line, in this process (libraries already imported)
        run = CliRunner().invoke(dagster_cli, ["job", "execute", "-m", "mlcicd.definitions", "-j", job])
        assert run.exit_code == 0, run.output[-3000:] + repr(run.exception)
        assert "RUN_SUCCESS" in run.output, "the run's log is what is checked for credentials below"
        shown.append(run.output)

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        for run in instance.get_runs():  # credentials are in no log line, run config, tag or metadata
            shown += [json.dumps(run.run_config), json.dumps(run.tags)]
            shown += [entry.message + json.dumps(str(entry.dagster_event)) for entry in instance.all_logs(run.run_id)]
        runs = {run.job_name: run.status for run in instance.get_runs()}
        assert runs == {"training_job": dg.DagsterRunStatus.SUCCESS, "promotion_job": dg.DagsterRunStatus.SUCCESS}
        key = dg.AssetCheckKey(dg.AssetKey(["fraud", "candidate_evaluation"]), "no_regression")
        assert instance.get_latest_asset_check_evaluation_record(key).event.asset_check_evaluation.passed
    registry = mlflow.MlflowClient(tracking_uri=postgres["mlflow"], registry_uri=postgres["mlflow"])
    champion = registry.get_model_version_by_alias(project.model_name("full"), "champion")
    assert str(champion.version) == "1" and champion.tags["gates_passed"] == "true"
    local_uri = f"sqlite:///{project.mlflow_dir / 'mlflow.db'}"
    local = mlflow.MlflowClient(tracking_uri=local_uri, registry_uri=local_uri)
    assert local.search_registered_models() == [], "the registry is in PostgreSQL, not in the local SQLite store"
    status = CliRunner().invoke(main, ["status", "--json"])
    shown += [status.output, project.audit_log.read_text(), json.dumps(champion.tags)]
    if SECRET in postgres["dagster"]:
        assert json.loads(status.output)["tracking_uri"].count("***") == 1
        assert not [text for text in shown if SECRET in text], "a password was shown"


def lanes(config: dict) -> list[dict]:
    return config["concurrency"]["runs"]["tag_concurrency_limits"]


def test_the_run_queue_runs_one_training_and_one_promotion_at_a_time(definitions, tmp_path):
    """Five queued runs (three trainings, two promotions) under the production limits: the queue starts one
    of each lane, and the rest wait."""
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    production = yaml.safe_load(PRODUCTION_YAML.read_text())
    overrides = {
        "run_coordinator": production["run_coordinator"],
        "concurrency": production["concurrency"],
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    with instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        target = ModuleTarget(module_name="mlcicd.definitions", attribute=None, working_directory=str(REPO), location_name="mlcicd")
        with create_test_daemon_workspace_context(target, instance) as workspace_context:
            location = next(iter(workspace_context.create_request_context().get_code_location_entries().values())).code_location
            repository = next(iter(location.get_repositories().values()))
            queued = []
            for job_name in ("training_job", "training_job", "ci_job", "promotion_job", "fraud__rollback_job"):
                remote_job = repository.get_full_job(job_name)
                run = instance.create_run_for_job(
                    job_def=definitions.resolve_job_def(job_name), remote_job_origin=remote_job.get_remote_origin(),
                    job_code_origin=remote_job.get_python_origin(), status=dg.DagsterRunStatus.NOT_STARTED, tags=remote_job.tags,
                )
                instance.submit_run(run.run_id, workspace_context.create_request_context())
                queued.append(run)
            assert all(instance.get_run_by_id(r.run_id).status == dg.DagsterRunStatus.QUEUED for r in queued)
            list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace_context))
            started = [instance.get_run_by_id(r.run_id) for r in queued]
            by_lane = {}
            for run in started:
                if run.status != dg.DagsterRunStatus.QUEUED:
                    by_lane.setdefault(run.tags["mlcicd/lane"], []).append(run.job_name)
    assert {lane: len(jobs) for lane, jobs in by_lane.items()} == {"training": 1, "promotion": 1}, by_lane


def test_embedded_production_and_helm_limits_agree():
    embedded = yaml.safe_load((REPO / "dagster.yaml").read_text())
    production = yaml.safe_load(PRODUCTION_YAML.read_text())
    helm = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    helm_limits = helm["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert lanes(embedded) == lanes(production) == helm_limits
    assert {limit["value"]: limit["limit"] for limit in helm_limits} == {"training": 1, "promotion": 1}
    deployment = helm["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "mlcicd.definitions"]
    assert helm["postgresql"]["enabled"] is False and "password" not in yaml.safe_dump(helm["postgresql"]).lower()
