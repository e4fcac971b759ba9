"""Dead runs never block the loop (issue 17, point 1): a `dagster job execute` process killed with SIGKILL leaves its
run STARTED; with the daemon running, dead_run_sweeper marks it failed, an alert names it, and the run that was
waiting in the queue behind it starts."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from .conftest import REPO
from .support import simulate

BIN = Path(sys.executable).parent


def instance_config(home: Path) -> dict:
    """The shipped embedded instance (run queue, lanes, run monitoring), stored under `home`, one run at a time."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["storage"] = {"sqlite": {"base_dir": str(home / "storage")}}
    config["local_artifact_storage"]["config"]["base_dir"] = str(home)
    config["compute_logs"]["config"]["base_dir"] = str(home / "compute_logs")
    config["concurrency"]["runs"]["max_concurrent_runs"] = 1  # the dead run holds the only slot
    return config


def wait_for(condition, seconds: float, what: str, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what} within {seconds:.0f} s; daemon log:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.starts_first
def test_a_killed_run_is_marked_failed_and_the_queued_run_starts(make_project, tmp_path, monkeypatch):
    project = make_project({"automation": {"dead_run_check_seconds": 5}})
    simulate(project, batches=2)
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(home)))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    location = ["-m", "mlcicd.definitions"]

    # the run's process is killed (SIGKILL at the kill point halfway through boosting): no Dagster code runs after it
    killed = subprocess.run([BIN / "dagster", "job", "execute", *location, "-j", "training_job"], cwd=project.root,
                            env={**env, "MLCICD_FAULTS": "train.mid_boosting"}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    instance = dg.DagsterInstance.get()
    (dead,) = instance.get_runs()
    assert dead.status == dg.DagsterRunStatus.STARTED, "the killed run is left STARTED: nothing else would ever end it"

    # a run waiting behind it in the queue (one run at a time)
    launched = subprocess.run([BIN / "dagster", "job", "launch", *location, "-j", "fraud__ingestion_job"], cwd=project.root, env=env,
                              capture_output=True, text=True, timeout=120)
    assert launched.returncode == 0, launched.stderr[-2000:]
    waiting = next(r for r in instance.get_runs() if r.job_name == "fraud__ingestion_job")
    assert waiting.status == dg.DagsterRunStatus.QUEUED

    log = tmp_path / "daemon.log"
    with open(log, "w") as out:
        daemon = subprocess.Popen([BIN / "dagster-daemon", "run", *location], cwd=project.root, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started = time.monotonic()
        failed = wait_for(lambda: (r := instance.get_run_by_id(dead.run_id)).status == dg.DagsterRunStatus.FAILURE and r,
                          120, "the dead run was not marked failed", log)
        assert time.monotonic() - started < 120
        failure = next(e for e in instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE))
        assert "process" in failure.message and "no longer exists" in failure.message, failure.message

        alerts = project.alerts_log
        notice = wait_for(lambda: alerts.exists() and [json.loads(line) for line in alerts.read_text().splitlines()
                                                       if json.loads(line)["kind"] == "dead_run"], 30, "no dead_run alert", log)
        assert notice[0]["run_id"] == dead.run_id and dead.run_id in notice[0]["message"]

        queue_moved = wait_for(lambda: instance.get_run_by_id(waiting.run_id).status
                               in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.SUCCESS),
                               90, "the queued run did not start after the dead run was failed", log)
        assert queue_moved
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
