"""Shared fixtures: throwaway mlcicd projects in temporary folders, each with its own data and MLflow store."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:  # imported where used: the xdist controller process loads this file too, and runs no test
    import dagster as dg

    from mlcicd.project import Project

REPO = Path(__file__).resolve().parents[1]
FRAUD = REPO / "mlcicd" / "defs" / "models" / "fraud" / "defs.yaml"  # the shipped fraud model; tests run it as one mlcicd.yaml

# Small and quick, but big enough that a good model clears the shipped gates.
TEST_OVERRIDES = {
    "simulator": {"batches": 4, "rows_per_batch": 6000, "ci_rows": 24000},
    "model": {"num_boost_round": 120, "num_threads": 1},
    # Latency is measured on a machine busy with two test workers, servers and a browser: the shipped budgets
    # (50 / 250 ms) would fail at random here. The latency gate itself is tested with budgets set per test;
    # elsewhere 5 timed repetitions are enough (30 cost 9% of the suite's time).
    "gates": {"latency": {"one_row_p95_ms": 1000, "batch_1000_p95_ms": 2000, "repeats": 5, "blocks": 1}},
    # The HTML evaluation report (Evidently) is tested in test_tasks.py; elsewhere it would only cost seconds per run.
    "tiers": {
        "full": {"evaluation_report": False},
        "ci": {"sample_rows": 24000, "num_boost_round": 100, "model_name_suffix": "-ci", "evaluation_report": False},
        "pr": {"model_name_suffix": "-pr", "evaluation_report": False},  # trained like production's champion
    },
}


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and value:
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def pytest_collection_modifyitems(items):
    """Tests marked `starts_first` (the longest ones, mostly waiting on servers they start) run at the start of
    their worker's share. At the end of the run one of them would keep a single worker busy while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("starts_first") is None)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store, created once (creating one costs about 2 s) and copied per project."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


class ProjectFactory:
    def __init__(self, root: Path, template: Path, monkeypatch):
        self.root, self.template, self.monkeypatch = root, template, monkeypatch

    def __call__(self, overrides: dict | None = None) -> Project:
        """A project folder with the shipped contract, the shipped config plus overrides, and MLCICD_CONFIG set."""
        from mlcicd.project import Project

        shipped = {"name": "fraud", **yaml.safe_load(FRAUD.read_text())["attributes"]}
        config = deep_merge(deep_merge(shipped, TEST_OVERRIDES), overrides or {})
        return Project.load(self.write(config))

    def write(self, config: dict) -> Path:
        """Write a config as it is (valid or not) into the project folder; return its path."""
        shutil.copytree(REPO / "contracts", self.root / "contracts", dirs_exist_ok=True)
        (self.root / "mlcicd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        store = self.root / "data" / "mlflow" / "mlflow.db"
        if not store.exists():
            store.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.template, store)
        self.monkeypatch.setenv("MLCICD_CONFIG", str(self.root / "mlcicd.yaml"))
        self.monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return self.root / "mlcicd.yaml"


@pytest.fixture
def make_project(tmp_path, mlflow_template, monkeypatch) -> ProjectFactory:
    return ProjectFactory(tmp_path / "project", mlflow_template, monkeypatch)


@pytest.fixture
def project(make_project) -> Project:
    return make_project()


class CurrentDefinitions:
    """The code location's definitions for the test's current project ($MLCICD_CONFIG), built when used: each model's
    settings are captured in its definitions, so a test that changes its config gets definitions that match."""

    def now(self) -> dg.Definitions:
        from mlcicd.definitions import defs

        return defs()

    def __getattr__(self, name: str):
        return getattr(self.now(), name)


@pytest.fixture(scope="session")
def definitions() -> CurrentDefinitions:
    return CurrentDefinitions()


@pytest.fixture
def instance(request, tmp_path, monkeypatch):
    """The Dagster instance in-process runs use: Dagster's in-memory instance, which runs the suite's jobs in about
    half the time of SQLite files. A test whose CLI calls (`mlcicd status`, ...) read what its runs recorded is
    marked `persistent_instance` and gets SQLite files under DAGSTER_HOME. Either way DAGSTER_HOME is the test's
    own folder, so nothing in a test reads or writes the repository's instance."""
    import dagster as dg

    home = tmp_path / "dagster"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    persistent = request.node.get_closest_marker("persistent_instance")
    with dg.instance_for_test(temp_dir=str(home)) if persistent else dg.DagsterInstance.ephemeral(tempdir=str(home)) as inst:
        yield inst


@pytest.fixture
def run_job(definitions, instance):
    """Execute a job of the code location in process against the test's instance; returns the result."""

    def run(name: str, run_config: dict | None = None, tags: dict | None = None):
        job = definitions.resolve_job_def(name)
        return job.execute_in_process(instance=instance, run_config=run_config, tags=tags, raise_on_error=False)

    return run
