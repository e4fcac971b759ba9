"""Dagster resources: the project (config and paths), MLflow tracking, and the asset store.

They are thin: each hands the pure core what it needs and keeps no state beyond one run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field, PrivateAttr

from mlcicd.core.ingest import atomic_write
from mlcicd.core.tables import read_table, remember
from mlcicd.project import TIER_TAG, Project, git_commit


class ProjectResource(dg.ConfigurableResource):
    """The mlcicd project: mlcicd.yaml and every path derived from it."""

    config_path: str | None = Field(None, description="Path of mlcicd.yaml; default: $MLCICD_CONFIG, else ./mlcicd.yaml.")

    def load(self) -> Project:
        return Project.load(self.config_path)


def run_tier(context) -> str:
    """The tier of the current run ("full" or "ci"), from the run's `mlcicd/tier` tag."""
    return context.run.tags.get(TIER_TAG, "full")


class MlflowTracking(dg.ConfigurableResource):
    """One MLflow run per Dagster run, through dagster-mlflow.

    dagster-mlflow's `mlflow_tracking` is a legacy resource that imports mlflow at module load; this
    ConfigurableResource builds the same `MlFlow` object lazily, so the code location loads fast, and
    ends the MLflow run when the Dagster run's resources are torn down (also under `dg.materialize`).
    The MLflow run starts at the first thing logged: a Dagster run that stops before (a quarantined batch,
    say) leaves no empty MLflow run, and `dagster job execute`, which builds the resources once more after
    the run to hand back its result, does not open the store again.
    """

    project: ProjectResource
    _context: Any = PrivateAttr(default=None)
    _mlf: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._context = context

    def _run(self):
        """dagster-mlflow's MlFlow for this Dagster run, started (or resumed, by run id) on first use."""
        if self._mlf is None:
            from dagster_mlflow.resources import MlFlow

            from mlcicd.mlflow_registry import ensure_experiment, environment_kept

            context, project = self._context, self.project.load()
            ensure_experiment(project)
            tier = context.run.tags.get(TIER_TAG, "full") if context.run else "full"
            shim = SimpleNamespace(
                log=context.log,
                dagster_run=context.run,
                run_id=context.run.run_id,
                resource_config={
                    "experiment_name": project.config.model.experiment,
                    "mlflow_tracking_uri": project.tracking_uri,
                    "extra_tags": {"git_commit": git_commit(project.root), "mlcicd_tier": tier},
                },
            )
            with environment_kept():  # dagster-mlflow sets the tracking URI; the user's override stays as it was
                self._mlf = MlFlow(shim)
        return self._mlf

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._mlf is not None:
            self._mlf.end_run()

    @property
    def run_id(self) -> str:
        mlf = self._run()
        return mlf.mlflow_run_id or mlf.active_run().info.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        self._run().log_params({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float]) -> None:
        finite = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and v == v and abs(v) != float("inf")}
        self._run().log_metrics(finite)

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._run().set_tags({k: str(v) for k, v in tags.items()})

    def log_artifact(self, local_path: str, folder: str) -> None:
        self._run().log_artifact(local_path, folder)

    def ui_url(self, artifact: str = "") -> str:
        """This run (and one of its artifacts) in the MLflow UI: $MLCICD_MLFLOW_UI_URL, else `make mlflow-ui`'s address."""
        from mlcicd.project import redact

        # the link goes into Dagster's event log and the reports: a password in the address never does
        base = redact(os.environ.get("MLCICD_MLFLOW_UI_URL", "http://127.0.0.1:5000")).rstrip("/")
        run = self._run().active_run()
        url = f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        return url + (f"/artifacts/{artifact}" if artifact else "")


class ProjectIOManager(dg.ConfigurableIOManager):
    """Stores asset values under data/assets/: tables as Parquet, records (dicts) as JSON. No pickles.
    The next step in the same process gets a table without reading it back (mlcicd.core.tables)."""

    project: ProjectResource

    def _base(self, context) -> Path:
        """data/assets/<key> for the full tier; data/assets/tier-<name>/<key> for another, so a CI run never replaces a
        value production's promotion reads (mlcicd/tiers.py)."""
        try:
            tier = context.step_context.dagster_run.tags.get(TIER_TAG, "full")
        except dg.DagsterInvariantViolationError:  # no run (an IO manager called outside one): the full tier
            tier = "full"
        root = self.project.load().assets_dir
        return (root if tier == "full" else root / f"tier-{tier}").joinpath(*context.asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        base = self._base(context)
        base.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, pd.DataFrame):
            path, write = base.with_suffix(".parquet"), lambda p: obj.to_parquet(p, index=False)
        elif isinstance(obj, dict):
            path, write = base.with_suffix(".json"), lambda p: p.write_text(json.dumps(obj, indent=2, default=str))
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store a {type(obj).__name__}; return a DataFrame or a dict")
        atomic_write(path, write)
        if isinstance(obj, pd.DataFrame):
            remember(path, obj, writer=context.step_key or "")

    def load_input(self, context: dg.InputContext) -> Any:
        base = self._base(context)
        parquet = base.with_suffix(".parquet")
        if parquet.exists():
            return read_table(parquet)
        if base.with_suffix(".json").exists():
            return json.loads(base.with_suffix(".json").read_text())
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} has no stored value under {base.parent}; materialize it first "
            "(for example with training_job)"
        )
