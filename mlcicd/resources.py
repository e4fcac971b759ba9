"""Dagster resources: MLflow tracking (shared by the models), and each model's asset store.

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
from mlcicd.project import TIER_TAG, Project, git_commit, tier_folder


def run_tier(context) -> str:
    """The tier of the current run ("full", "ci" or "pr"), from the run's `mlcicd/tier` tag."""
    return context.run.tags.get(TIER_TAG, "full")


class MlflowTracking(dg.ConfigurableResource):
    """One MLflow run per Dagster run and model (in the model's own experiment), through dagster-mlflow.

    dagster-mlflow's `mlflow_tracking` is a legacy resource that imports mlflow at module load; this
    ConfigurableResource builds the same `MlFlow` object lazily, so the code location loads fast, and
    ends the MLflow runs when the Dagster run's resources are torn down (also under `dg.materialize`).
    An MLflow run starts at the first thing a model logs: a Dagster run that stops before (a quarantined batch,
    say) leaves no empty MLflow run. A run over several models (training_job) logs each model into its own MLflow run;
    MLflow has one active run per process, so switching models ends one run and resumes the other by its id.
    """

    _context: Any = PrivateAttr(default=None)
    _runs: dict = PrivateAttr(default_factory=dict)  # experiment -> (dagster-mlflow's MlFlow, its MLflow run id)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._context = context

    def for_model(self, project: Project, purpose: str | None = None) -> "ModelRun":
        """The model's MLflow run for one purpose: "training", "ci", "pr" or "monitoring" (default: by the run's tier)."""
        if purpose is None:
            tier = self._context.run.tags.get(TIER_TAG, "full") if self._context.run else "full"
            purpose = tier if tier in ("ci", "pr") else "training"
        return ModelRun(self, project, purpose)

    def _activate(self, project: Project, purpose: str):
        """dagster-mlflow's MlFlow for this Dagster run, model and purpose, started (or resumed) and made the active run."""
        import mlflow

        from mlcicd.mlflow_registry import ensure_experiment, environment_kept

        experiment = project.experiment_for(purpose)
        mlf, run_id = self._runs.get(experiment, (None, None))
        active = mlflow.active_run()
        if mlf is not None and active is not None and active.info.run_id == run_id:
            return mlf
        if active is not None:
            mlflow.end_run()  # another model's run in this Dagster run: it is resumed by its id when that model logs again
        if mlf is not None:
            with environment_kept():
                mlflow.set_tracking_uri(project.tracking_uri)
                mlflow.set_experiment(experiment)  # MLflow resumes a run only inside its own experiment
                mlflow.start_run(run_id=run_id)
            return mlf
        from dagster_mlflow.resources import MlFlow

        context = self._context
        ensure_experiment(project, purpose)
        tier = context.run.tags.get(TIER_TAG, "full") if context.run else "full"
        tags = {"git_commit": git_commit(project.root), "mlcicd_tier": tier, "mlcicd_model": project.name, "mlcicd_purpose": purpose}
        link = dagster_run_url(context.run.run_id)
        if link:
            tags["dagster_run_url"] = link
        tags["mlflow.note.content"] = run_description(project, purpose, context.run, link)
        shim = SimpleNamespace(
            log=context.log,
            dagster_run=context.run,
            run_id=context.run.run_id,
            resource_config={"experiment_name": experiment, "mlflow_tracking_uri": project.tracking_uri, "extra_tags": tags},
        )
        with environment_kept():  # dagster-mlflow sets the tracking URI; the user's override stays as it was
            mlf = MlFlow(shim)
        self._runs[experiment] = (mlf, mlflow.active_run().info.run_id)
        return mlf

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        import sys

        if self._runs and "mlflow" in sys.modules:
            import mlflow

            if mlflow.active_run() is not None:
                mlflow.end_run()
        self._runs.clear()


def dagster_run_url(run_id: str) -> str | None:
    """The Dagster UI's page of a run, when $MLCICD_DAGSTER_UI_URL says where the UI is (`make dev`: http://127.0.0.1:3000)."""
    from mlcicd.project import redact

    base = os.environ.get("MLCICD_DAGSTER_UI_URL")
    return f"{redact(base).rstrip('/')}/runs/{run_id}" if base else None


def run_description(project: Project, purpose: str, dagster_run, link: str | None) -> str:
    """The MLflow run's description (markdown, shown on its page): what made it, and a link back when the UI is known."""
    job = dagster_run.job_name if dagster_run else "a Dagster run"
    made = f"[{job} {dagster_run.run_id[:8]}]({link})" if link and dagster_run else f"`{job}` (Dagster run `{dagster_run.run_id if dagster_run else '?'}`)"
    return f"{project.experiment_description(purpose)}\n\nMade by the Dagster run {made}."


class ModelRun:
    """One model's MLflow run for one purpose within the Dagster run: what the assets log through."""

    def __init__(self, tracking: MlflowTracking, project: Project, purpose: str):
        self.tracking, self.project, self.purpose = tracking, project, purpose

    def _run(self):
        return self.tracking._activate(self.project, self.purpose)

    def name(self, text: str) -> None:
        """Name the run for what it is, e.g. "fraud v4 · training · data 06a0bb85" (MLflow's run name)."""
        self._run().set_tags({"mlflow.runName": text})

    def log_dataset(
        self, frame: pd.DataFrame, *, digest: str, source: str, name: str, target: str | None, batches: list[str],
        present: pd.Series | None = None, rows: int | None = None,
    ) -> None:
        """The training rows as an MLflow dataset input (the Datasets column): digest = their content hash (MLflow keeps
        36 characters), source = the accepted batches' folder; the batch ids go with it as a tag. `present` and `rows`:
        see training_rows_dataset."""
        import mlflow
        from mlflow.data.dataset_source_registry import resolve_dataset_source

        import warnings

        self._run()
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": MLflow registers file sources twice
            warnings.simplefilter("ignore", UserWarning)
            resolved = resolve_dataset_source(source)
        dataset = training_rows_dataset(frame, present, rows, source=resolved, targets=target, name=name, digest=digest[:36])
        mlflow.log_input(dataset, context="training", tags={"batches": ", ".join(batches)[:4000]})

    @property
    def run_id(self) -> str:
        return self._run().active_run().info.run_id

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


class DaskClusters(dg.ConfigurableResource):
    """The Dask clusters that models with model.engine: dask train on (core/distributed.py): a client of
    model.dask.scheduler, or of a LocalCluster of model.dask.workers one-thread processes. Each is opened at the first
    step that needs it and closed with the run's resources, so a run's steps share one LocalCluster (starting one
    takes about 2 s). Nothing is opened for a model that trains locally."""

    _open: dict = PrivateAttr(default_factory=dict)  # (scheduler, workers) -> (client, LocalCluster or None)

    def client(self, scheduler: str | None, workers: int):
        """The client to compute with (`with client.as_current():`, since a run may hold more than one)."""
        key = (scheduler, None if scheduler else workers)
        if key not in self._open:
            from distributed import Client, LocalCluster

            if scheduler:
                self._open[key] = (Client(scheduler, set_as_default=False), None)
            else:
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
                self._open[key] = (Client(cluster, set_as_default=False), cluster)
        return self._open[key][0]

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for client, cluster in self._open.values():
            client.close()
            if cluster is not None:
                cluster.close()
        self._open.clear()


class ProjectIOManager(dg.ConfigurableIOManager):
    """Stores one model's asset values under its assets folder: tables as Parquet, records (dicts) as JSON. No pickles.
    The next step in the same process gets a table without reading it back (mlcicd.core.tables)."""

    assets_dir: str = Field(description="The model's asset store (data/<model>/assets/, or data/assets/ for a single mlcicd.yaml).")

    def _base(self, context) -> Path:
        """data/assets/<key> for the full tier; data/assets/tier-<name>/<key> for another, so a CI run never replaces a
        value production's promotion reads (mlcicd/tiers.py)."""
        try:
            tier = context.step_context.dagster_run.tags.get(TIER_TAG, "full")
        except dg.DagsterInvariantViolationError:  # no run (an IO manager called outside one): the full tier
            tier = "full"
        return tier_folder(Path(self.assets_dir), tier).joinpath(*context.asset_key.path[1:])  # path[0]: the model

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
        stale = base.with_suffix(".json" if path.suffix == ".parquet" else ".parquet")
        stale.unlink(missing_ok=True)  # the other form, from before a change of model.engine, would be read instead
        if isinstance(obj, pd.DataFrame):
            remember(path, obj, writer=context.step_key or "")

    def load_input(self, context: dg.InputContext) -> Any:
        base = self._base(context)
        parquet = base.with_suffix(".parquet")
        if parquet.exists():
            return read_table(parquet)
        if base.with_suffix(".json").exists():
            return json.loads(base.with_suffix(".json").read_text())
        if context.asset_key.path[-1] == "candidate_evaluation":
            raise FileNotFoundError(f"no candidate has been evaluated yet: run `mlcicd train` first (training_job); nothing is stored under {base.parent}")
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} has no stored value under {base.parent}; materialize it first "
            "(for example with training_job)"
        )


SCHEMA_SAMPLE_ROWS = 1000


def training_rows_dataset(frame: pd.DataFrame, present: pd.Series | None = None, rows: int | None = None, **kwargs):
    """MLflow's PandasDataset of the training rows, with the same schema MLflow would log, found faster. PandasDataset
    infers it by walking every value of every text column in Python (5-6 s per million rows, about a minute at ten
    million; there is no switch). Here the column types come from MLflow's public `infer_signature` on a sample (the
    rows passed the data contract, so each column holds one type), and whether a column is required (no missing
    value) from the whole column, vectorized. test_mlflow_model.py holds the two schemas equal.

    With the Dask engine, `frame` is a sample of the rows, which stay on the workers: `present` (no missing value, per
    column) and `rows` (how many) are then the whole training rows', counted there."""
    from functools import cached_property

    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    class TrainingRows(PandasDataset):
        @cached_property  # to_dict reads it twice
        def schema(self) -> Schema:
            rows = self.df
            sample = pd.concat([rows.head(SCHEMA_SAMPLE_ROWS // 2), rows.dropna().head(SCHEMA_SAMPLE_ROWS // 2)])
            complete = rows.notna().all() if present is None else present
            return Schema([ColSpec(spec.type, spec.name, required=bool(complete[spec.name])) for spec in infer_signature(sample).inputs.inputs])

        @property
        def profile(self):
            return super().profile if rows is None else {"num_rows": rows, "num_elements": rows * len(self.df.columns)}

    return TrainingRows(frame, **kwargs)

