"""Helpers shared by the tests (one place; no test file imports another): gate lists, check results, simulated data,
sensor ticks, and services started on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.core import gate_table

# derived from the gate table, as the code's own lists are
MODEL_GATES = [gate.name for gate in gate_table.stage("model")]
ALL_GATES = {gate.name for gate in gate_table.GATES if gate.stage in ("data", "model")}  # what a training run judges
PROMOTION_CHECKS = ALL_GATES | {"data_freshness_now", "identity_now", "artifact_integrity"}  # what a promotion records (no canary asked for)

# A code change that makes the model much worse: tiny trees, barely trained.
DEGRADED = {"model": {"num_boost_round": 4, "params": {"num_leaves": 2, "learning_rate": 0.02, "feature_fraction": 0.3}}}


def shipped_settings(model: str = "fraud") -> dict:
    """A shipped model's settings (the attributes of mlcicd/defs/models/<model>/defs.yaml), as a single-model config."""
    import yaml

    from mlcicd.models import MODELS_DIR

    return {"name": model, **yaml.safe_load((MODELS_DIR / model / "defs.yaml").read_text())["attributes"]}


def shipped_config(model: str = "fraud"):
    from mlcicd.config import parse_config
    from mlcicd.models import MODELS_DIR

    return parse_config(shipped_settings(model), MODELS_DIR / model / "defs.yaml")


def cli(*args: str) -> str:
    """`mlcicd <args>` through its click entry point; fails the test with the output unless it exits 0."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def checks(result) -> dict:
    """A run's asset check evaluations by check name."""
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def simulate(project, batches=4, scenario="baseline"):
    result = CliRunner().invoke(main, ["simulate", "--batches", str(batches), "--scenario", scenario])
    assert result.exit_code == 0, result.output


def sensor(name: str):
    """A sensor of the code location for the test's current project ($MLCICD_CONFIG), e.g. fraud__drift_sensor."""
    from mlcicd.definitions import defs

    return defs().get_sensor_def(name)


def tick(instance, cursor=None):
    """One evaluation of the landing sensor against a test instance."""
    import dagster as dg

    return sensor("fraud__landing_sensor")(dg.build_sensor_context(instance=instance, cursor=cursor))


def settle(project, seconds=10):
    """Pretend the landed files were written `seconds` ago."""
    past = time.time() - seconds
    for path in project.landing_dir.iterdir():
        os.utime(path, (past, past))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    """Wait until `url` answers 200; fail with the end of the service's log if it exits or never answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[:3]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{process.args[:3]} did not answer {url} within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: int = 2):
    """A dask.distributed scheduler and `workers` one-thread workers on loopback, each its own process (as on a real
    cluster, none is a child of a client); yields the scheduler's address."""
    import sys

    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    commands = [[sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
    commands += [[sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                  "--name", f"worker-{i}"] for i in range(workers)]
    processes = []
    try:
        for i, command in enumerate(commands):
            log = open(folder / f"dask-{i}.log", "w")  # noqa: SIM115 - closed with the process
            processes.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log))
            if i == 0 and not _wait_for_port(port):  # the scheduler first: a worker that finds none retries, slowly
                raise AssertionError(f"the dask scheduler did not listen on {address}: {(folder / 'dask-0.log').read_text()[-2000:]}")
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=90)
        yield address
    finally:
        for process, _ in processes:
            process.terminate()
        for process, log in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def _wait_for_port(port: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False
