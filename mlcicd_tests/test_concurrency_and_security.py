"""Two triggers at once never ingest a file twice or promote twice; and the security guarantees: loopback
binds, verified model artifacts, no pickles from the landing zone, no path out of data/."""

import re
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.config import ConfigError
from mlcicd.core.audit import decisions, read
from mlcicd.core.ingest import ingest_file, list_accepted
from mlcicd.core.simulate import write_batches
from mlcicd.mlflow_registry import CHAMPION, client, version_by_alias

from .conftest import REPO


def test_two_ingestions_of_the_same_file_at_once_accept_it_once(project):
    (path,) = write_batches(project.landing_dir, batches=1, rows_per_batch=2000)
    start, verdicts = threading.Barrier(2), []

    def ingest():
        start.wait()
        verdicts.append(ingest_file(path, project.contract, project.accepted_dir, project.archive_dir, project.quarantine_dir).status)

    threads = [threading.Thread(target=ingest) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(verdicts) == ["accepted", "duplicate"]
    assert len(list_accepted(project.accepted_dir)) == 1
    assert [p.name for p in project.archive_dir.iterdir()] == [path.name]


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    return folder


def execute(job: str, definitions, home: Path) -> bool:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return definitions.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False).success


@pytest.mark.starts_first
def test_a_schedule_and_a_sensor_promoting_at_once_promote_once(project, definitions, home):
    CliRunner().invoke(main, ["simulate", "--batches", "3"])
    assert execute("training_job", definitions, home)
    command = [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "mlcicd.definitions", "-j", "promotion_job"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs[0][-2000:]
    made = sorted(record["decision"] for record in decisions(project.audit_log))
    assert made == ["promoted", "unchanged"], "the second decision saw the first one's result"
    assert str(version_by_alias(project, project.model_name("full"), CHAMPION).version) == "1"


def test_a_tampered_model_artifact_is_refused_before_promotion_and_scoring(project, definitions, home):
    CliRunner().invoke(main, ["simulate", "--batches", "3"])
    assert execute("training_job", definitions, home)
    name = project.model_name("full")
    source = client(project).get_model_version(name, "1").source
    model_files = [p for p in project.mlflow_dir.rglob("booster.txt")]
    assert model_files, f"no model file found for {source}"
    for path in model_files:
        path.write_text(path.read_text().replace("num_leaves=", "num_leaves=1", 1))  # tampered with after registration

    assert not execute("promotion_job", definitions, home)
    record = read(project.audit_log)[-1]
    assert record["decision"] == "refused" and record["gates"]["artifact_integrity"]["passed"] is False
    assert "the model files changed after registration" in record["gates"]["artifact_integrity"]["reason"]
    assert version_by_alias(project, name, CHAMPION) is None

    override = {"ops": {"fraud__champion": {"config": {"override": True, "reason": "the deadline is today, promote it anyway"}}}}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        forced = definitions.resolve_job_def("promotion_job").execute_in_process(instance=instance, run_config=override, raise_on_error=False)
    assert not forced.success and version_by_alias(project, name, CHAMPION) is None, "an override never waives artifact integrity"
    assert "never identity" in read(project.audit_log)[-1]["reason"]


def test_web_uis_bind_to_loopback_unless_told_otherwise(project):
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"dagster dev -h 127\.0\.0\.1", makefile) and re.search(r"mlflow ui .*--host 127\.0\.0\.1", makefile)
    assert "dagster-webserver -h 127.0.0.1" in (REPO / "scripts" / "production.sh").read_text()
    assert project.config.serving.host == "127.0.0.1"


def test_nothing_is_unpickled_anywhere_in_the_code():
    code = "\n".join(p.read_text() for p in (REPO / "mlcicd").rglob("*.py"))
    assert not re.search(r"pickle\.loads?\(|read_pickle|joblib\.load|cloudpickle\.load|torch\.load", code)


def test_paths_that_would_escape_data_are_refused(project, run_job, make_project):
    write_batches(project.landing_dir, batches=1, rows_per_batch=500)
    (project.root / "outside.parquet").write_bytes((next(project.landing_dir.iterdir())).read_bytes())
    result = run_job("fraud__ingestion_job", run_config={"ops": {"fraud__raw_batch": {"config": {"files": ["../outside.parquet"]}}}})
    assert not result.success
    assert (project.root / "outside.parquet").exists() and list_accepted(project.accepted_dir) == []
    with pytest.raises(ConfigError, match="model.registered_name"):
        make_project({"model": {"registered_name": "../../etc/model"}})
