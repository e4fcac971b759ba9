"""kill -9 at each of the 20 kill points (mlcicd/faults.py) across ingestion, training, evaluation and promotion.

Each point starts from the same saved state (a copy of the project folder, its MLflow store and its Dagster
instance), runs the job in a forked process that dies there with SIGKILL, then checks what must hold after
any crash: the champion alias points at a version that passed its gates, the accepted store holds only whole
batches, no landed file is lost, and a re-run completes.
"""

import hashlib
import json
import subprocess
import sys
import os
import shutil
import signal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core.audit import decisions, unfinished
from mlcicd.core.ingest import list_accepted
from mlcicd.core.simulate import write_batches
from mlcicd.faults import KILL_POINTS
from mlcicd.mlflow_registry import CHAMPION, version_by_alias
from mlcicd.project import Project

from .conftest import ProjectFactory

INGESTION = ["ingest.before_write", "ingest.partial_written", "ingest.after_parquet", "ingest.after_record",
             "ingest.between_files", "quarantine.after_report", "atomic_write.before_rename"]
TRAINING = ["dataset.before_output", "split.before_output", "train.mid_boosting", "registry.after_log_model",
            "registry.before_challenger", "evaluate.after_candidate", "evaluate.before_output", "gates.before_results"]
PROMOTION = ["promotion.before_decision", "promotion.after_audit", "registry.after_champion_tags",
             "registry.after_champion_alias", "promotion.before_model_card"]
# small and quick; the gates here only need to pass for a sound candidate (what they judge is tested elsewhere)
SMALL = {
    "model": {"num_boost_round": 40},
    "gates": {"min_rows": 1000, "min_metrics": {"roc_auc": 0.6, "pr_auc": 0.02}, "max_regression": 0.3, "max_slice_regression": 0.5},
}


def test_every_kill_point_is_exercised():
    assert sorted(INGESTION + TRAINING + PROMOTION) == sorted(KILL_POINTS) and len(KILL_POINTS) >= 20


@pytest.fixture(scope="module")
def base(tmp_path_factory, mlflow_template, definitions):
    """base(phase): a saved state, prepared once per phase (the project folder with its MLflow store, and the
    Dagster instance folder); every crash of that phase starts from a copy of it."""
    saved = {}

    def prepared(phase: str) -> Path:
        if phase not in saved:
            root = tmp_path_factory.mktemp(f"base-{phase}")
            with pytest.MonkeyPatch.context() as patch:
                project = ProjectFactory(root / "project", mlflow_template, patch)(SMALL)
                home = root / "project_home"
                home.mkdir()
                (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
                with dg.DagsterInstance.from_config(str(home)):
                    pass  # its databases are created once here (about 1 s), not in every copy
                PREPARE[phase](project, home, definitions)
            saved[phase] = root
        return saved[phase]

    return prepared


@pytest.fixture
def copy_of(base, tmp_path, monkeypatch):
    def copy(phase: str) -> tuple[Project, Path]:
        target = tmp_path / "crashed"
        shutil.copytree(base(phase), target)
        monkeypatch.setenv("MLCICD_CONFIG", str(target / "project" / "mlcicd.yaml"))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return Project.load(target / "project" / "mlcicd.yaml"), target / "project_home"

    return copy


# A helper process that loads everything once, then forks one child per faulted run. (Forking the test
# worker itself is unsafe: it has threads. This process has none when it forks, which it checks.) It warms up
# with one real training and promotion on a scratch project, so that each child starts with every module
# loaded that a run imports on first use (about 1.5 s per child otherwise).
ZYGOTE = """
import json, os, signal, sys, threading
import dagster as dg
from mlcicd.definitions import defs  # built for each config (MLCICD_CONFIG), once
for line in sys.stdin:
    jobs, home, config, fault = json.loads(line)
    if fault is None:  # the warm-up, in this process
        os.environ["MLCICD_CONFIG"] = config
        with dg.DagsterInstance.from_config(home) as instance:
            ok = all(defs().resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False).success for job in jobs)
        print(json.dumps(0 if ok and threading.active_count() == 1 else f"warm-up ok={ok}, threads={threading.enumerate()}"), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        signal.alarm(120)  # a child that hangs dies, and its test fails, instead of stalling the suite
        os.environ.update({"MLCICD_FAULTS": fault, "MLCICD_CONFIG": config})
        with dg.DagsterInstance.from_config(home) as instance:
            defs().resolve_job_def(jobs[0]).execute_in_process(instance=instance, raise_on_error=False)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)), flush=True)
"""


def ask(zygote, jobs: list[str], home: Path, config: str, fault: str | None):
    zygote.stdin.write(json.dumps([jobs, str(home), config, fault]) + "\n")
    zygote.stdin.flush()
    return json.loads(zygote.stdout.readline())


@pytest.fixture(scope="module")
def zygote(tmp_path_factory, mlflow_template):
    # OpenMP (LightGBM) with one thread: a pool of OpenMP threads in the zygote would hang its forked children. No MLflow
    # download progress bars either: tqdm starts a monitor thread for them, and the zygote must have none when it forks.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    process = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    scratch = tmp_path_factory.mktemp("zygote-warm-up")
    with pytest.MonkeyPatch.context() as patch:
        project = ProjectFactory(scratch / "project", mlflow_template, patch)(SMALL)
    land(project, good=2, bad=False)
    home = scratch / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert ask(process, ["training_job", "promotion_job"], home, str(project.config_path), None) == 0
    yield process
    process.stdin.close()
    process.wait(timeout=30)


def run(job: str, home: Path, definitions, zygote=None, fault: str | None = None) -> int:
    """The job against the instance in `home`; with a fault, in a process forked by the zygote, which the fault kills."""
    if fault is None:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            return 0 if definitions.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False).success else 1
    return ask(zygote, [job], home, os.environ["MLCICD_CONFIG"], fault)


def content_hashes(*folders: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for folder in folders if folder.is_dir() for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and ".report." not in p.name}


def assert_store_is_whole(project: Project) -> None:
    for batch in list_accepted(project.accepted_dir):
        assert len(pd.read_parquet(batch.path)) == batch.rows, f"accepted batch {batch.batch_id} is partial"


def assert_champion_passed(project: Project, expected: set[str]) -> None:
    name = project.model_name("full")
    champion = version_by_alias(project, name, CHAMPION)
    version = None if champion is None else str(champion.version)
    assert version in expected, version
    if champion is not None:
        assert champion.tags.get("gates_passed") == "true", f"champion {version} never passed its gates"


def land(project: Project, good: int, start: int = 0, bad: bool = True) -> None:
    write_batches(project.landing_dir, batches=good, rows_per_batch=3000, start_index=start)
    if bad:
        write_batches(project.landing_dir, batches=1, rows_per_batch=300, scenario="schema_break", start_index=start + good)


@pytest.mark.parametrize("point", INGESTION)
def test_a_crash_during_ingestion_loses_nothing_and_a_rerun_completes(point, copy_of, definitions, zygote):
    project, home = copy_of("ingestion")
    landed = content_hashes(project.landing_dir)
    assert run("fraud__ingestion_job", home, definitions, zygote, fault=point) == -signal.SIGKILL, f"{point} was not reached"

    assert_store_is_whole(project)
    kept = content_hashes(project.landing_dir, project.archive_dir, project.quarantine_dir)
    assert landed <= kept, "a landed file was lost"
    for quarantined in project.quarantine_dir.glob("*.parquet") if project.quarantine_dir.is_dir() else []:
        assert quarantined.with_name(quarantined.name + ".report.txt").exists(), "quarantined without a report"

    assert run("fraud__ingestion_job", home, definitions) == 1, "the schema_break file still fails its gate"
    assert len(list_accepted(project.accepted_dir)) == 2 and not content_hashes(project.landing_dir)
    (report,) = project.quarantine_dir.glob("*.report.json")
    assert json.loads(report.read_text())["problems"]


def trained_champion(project: Project, home: Path, definitions) -> None:
    land(project, good=2, bad=False)
    assert run("training_job", home, definitions) == 0 and run("promotion_job", home, definitions) == 0
    land(project, good=1, start=5, bad=False)  # new data: the next training makes version 2


@pytest.mark.parametrize("point", TRAINING)
def test_a_crash_during_training_or_evaluation_keeps_the_champion_and_a_rerun_completes(point, copy_of, definitions, zygote):
    project, home = copy_of("training")
    assert run("training_job", home, definitions, zygote, fault=point) == -signal.SIGKILL, f"{point} was not reached"
    assert_champion_passed(project, {"1"})
    assert_store_is_whole(project)
    if point == "dataset.before_output":  # the killed run is still marked started: its dataset gates show as running, not failed
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_HOME", str(home))
            text = CliRunner().invoke(main, ["status"]).output
        assert "RUNNING  data_freshness" in text and "running now, in run " in text, text

    assert run("training_job", home, definitions) == 0, "a re-run trains and passes every gate"
    assert_champion_passed(project, {"1"})


def candidate_waiting(project: Project, home: Path, definitions) -> None:
    trained_champion(project, home, definitions)
    assert run("training_job", home, definitions) == 0


PREPARE = {
    "ingestion": lambda project, home, definitions: land(project, good=2),
    "training": trained_champion,
    "promotion": candidate_waiting,
}


@pytest.mark.parametrize("point", PROMOTION)
def test_a_crash_during_promotion_leaves_a_champion_that_passed_and_a_rerun_completes(point, copy_of, definitions, zygote):
    project, home = copy_of("promotion")
    assert run("promotion_job", home, definitions, zygote, fault=point) == -signal.SIGKILL, f"{point} was not reached"
    assert_champion_passed(project, {"1", "2"})

    assert run("promotion_job", home, definitions) == 0
    assert_champion_passed(project, {"2"})
    # the trail agrees with the registry: every intent is closed, and version 2 was promoted exactly once
    assert unfinished(project.audit_log, project.model_name("full")) == []
    promotions = [r for r in decisions(project.audit_log) if r["decision"] == "promoted" and r["phase"] == "done"]
    assert [r["to_version"] for r in promotions] == ["1", "2"], promotions
    if point == "promotion.after_audit":  # died between the intent and the alias: recorded as interrupted, not as a promotion
        (abandoned,) = [r for r in decisions(project.audit_log) if r["phase"] == "abandoned"]
        assert abandoned["to_version"] == "2" and "interrupted" in abandoned["reason"]
