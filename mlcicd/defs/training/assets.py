"""training_dataset -> train_set / holdout_set -> candidate_model -> candidate_evaluation."""

import dagster as dg
import pandas as pd

from mlcicd.core.dataset import dataset_hash, load_batches, sample, split_by_time, window
from mlcicd.core.ingest import list_accepted
from mlcicd.resources import MlflowTracking, ProjectResource, run_tier

from ..ingestion.assets import raw_batch

HASH_ATTR = "mlcicd_dataset_hash"  # carried in DataFrame.attrs (kept by Parquet) from the dataset to the split


@dg.asset(
    deps=[raw_batch],
    group_name="training",
    kinds={"pandas", "parquet"},
    description="The newest accepted batches (dataset.window_batches), in time order; its data version is a content hash.",
)
def training_dataset(context: dg.AssetExecutionContext, project: ProjectResource) -> dg.Output[pd.DataFrame]:
    proj = project.load()
    spec = proj.config.dataset
    tier = proj.tier(run_tier(context))
    batches = window(list_accepted(proj.accepted_dir), spec.window_batches)
    if not batches:
        raise dg.Failure(f"No accepted batches in {proj.accepted_dir}: land data in {proj.landing_dir} and ingest it first.")
    frame = sample(load_batches(batches, spec.time_column), tier.sample_rows, proj.config.model.seed)
    if spec.target not in frame.columns:
        raise dg.Failure(f"The accepted batches have no target column '{spec.target}' (dataset.target in mlcicd.yaml).")
    digest = dataset_hash(batches, tier.sample_rows)
    frame.attrs[HASH_ATTR] = digest
    return dg.Output(
        frame,
        data_version=dg.DataVersion(digest),
        metadata={
            "dataset_hash": digest,
            "dagster/row_count": len(frame),
            "batches": len(batches),
            "sampled_rows": tier.sample_rows or "all",
            "first_time": str(frame[spec.time_column].min()),
            "last_time": str(frame[spec.time_column].max()),
            "positive_rate": float(frame[spec.target].mean()),
        },
    )


@dg.multi_asset(
    outs={
        "train_set": dg.AssetOut(group_name="training", kinds={"pandas", "parquet"}, description="The older rows of training_dataset (everything before the holdout), for fitting the model."),
        "holdout_set": dg.AssetOut(
            group_name="training", kinds={"pandas", "parquet"}, description="The newest rows of training_dataset (dataset.holdout_fraction), never trained on, for evaluating candidate and champion."
        ),
    },
)
def train_holdout_split(training_dataset: pd.DataFrame, project: ProjectResource):
    spec = project.load().config.dataset
    train, holdout = split_by_time(training_dataset, spec.time_column, spec.holdout_fraction)
    digest = training_dataset.attrs[HASH_ATTR]
    for part in (train, holdout):
        part.attrs[HASH_ATTR] = digest
    cut = str(holdout[spec.time_column].min())
    yield dg.Output(train, output_name="train_set", metadata={"dagster/row_count": len(train), "dataset_hash": digest, "before": cut})
    yield dg.Output(holdout, output_name="holdout_set", metadata={"dagster/row_count": len(holdout), "dataset_hash": digest, "from": cut})


@dg.asset(
    group_name="training",
    kinds={"lightgbm", "mlflow"},
    description="A LightGBM model trained on train_set through the shared feature code, registered in MLflow as `challenger`.",
)
def candidate_model(
    context: dg.AssetExecutionContext, train_set: pd.DataFrame, project: ProjectResource, mlflow: MlflowTracking
) -> dg.Output[dict]:
    from mlcicd.core.train import train_model
    from mlcicd.mlflow_registry import log_candidate
    from mlcicd.project import git_commit

    proj = project.load()
    tier_name = run_tier(context)
    tier = proj.tier(tier_name)
    rounds = tier.num_boost_round or proj.config.model.num_boost_round
    trained = train_model(train_set, proj.config.dataset, proj.config.model, rounds)
    digest = train_set.attrs[HASH_ATTR]
    commit = git_commit(proj.root)
    mlflow.log_params({**trained.params, "num_boost_round": rounds, "train_rows": len(train_set), "tier": tier_name})
    mlflow.log_metrics({"best_iteration": trained.best_iteration})
    mlflow.set_tags({"dataset_hash": digest, "git_commit": commit})
    registered = log_candidate(
        proj,
        trained,
        model_name=proj.model_name(tier_name),
        tags={"dataset_hash": digest, "git_commit": commit, "dagster_run_id": context.run.run_id, "tier": tier_name},
    )
    value = {
        **registered.to_dict(),
        "dataset_hash": digest,
        "tier": tier_name,
        "best_iteration": trained.best_iteration,
        "train_rows": len(train_set),
        "git_commit": commit,
    }
    return dg.Output(
        value,
        metadata={
            "model": registered.name,
            "version": registered.version,
            "model_uri": registered.uri,
            "mlflow_run_id": registered.run_id or "",
            "best_iteration": trained.best_iteration,
            "dataset_hash": digest,
        },
    )


def _score(proj, model_name: str, version: str, holdout: pd.DataFrame, target: str) -> dict:
    from mlcicd.core.metrics import binary_metrics
    from mlcicd.core.train import predict
    from mlcicd.mlflow_registry import load_model

    booster, features = load_model(proj, model_name, version)
    return binary_metrics(holdout[target], predict(booster, features, holdout))


def _side_by_side(candidate: dict, champion: dict | None) -> str:
    rows = ["| metric | candidate | champion |", "|---|---|---|"]
    for name, value in candidate["metrics"].items():
        other = champion["metrics"].get(name) if champion and champion.get("metrics") else None
        rows.append(f"| {name} | {value:.4f} | {'-' if other is None else f'{other:.4f}'} |")
    return "\n".join(rows)


@dg.asset(
    group_name="training",
    kinds={"lightgbm", "mlflow"},
    description="The registered candidate and the current champion, scored on the same holdout, side by side.",
)
def candidate_evaluation(
    context: dg.AssetExecutionContext, candidate_model: dict, holdout_set: pd.DataFrame, project: ProjectResource, mlflow: MlflowTracking
) -> dg.Output[dict]:
    from mlcicd.mlflow_registry import CHAMPION, version_by_alias

    proj = project.load()
    target = proj.config.dataset.target
    name = candidate_model["name"]
    candidate = {"version": candidate_model["version"], "metrics": _score(proj, name, candidate_model["version"], holdout_set, target)}
    champion, champion_error = None, None
    current = version_by_alias(proj, name, CHAMPION)
    if current is not None:
        champion = {"version": str(current.version), "metrics": None}
        try:
            champion["metrics"] = _score(proj, name, str(current.version), holdout_set, target)
        except Exception as exc:  # a champion that cannot be scored fails the regression gate, with this reason
            champion_error = f"{type(exc).__name__}: {exc}"
            context.log.error(f"champion version {current.version} could not be scored: {champion_error}")
    mlflow.log_metrics({f"holdout_{k}": v for k, v in candidate["metrics"].items()})
    if champion and champion["metrics"]:
        mlflow.log_metrics({f"champion_holdout_{k}": v for k, v in champion["metrics"].items()})
    value = {
        "model_name": name,
        "tier": candidate_model["tier"],
        "dataset_hash": holdout_set.attrs[HASH_ATTR],
        "holdout_rows": len(holdout_set),
        "primary_metric": proj.config.gates.primary_metric,
        "candidate": candidate,
        "champion": champion,
        "champion_error": champion_error,
        "mlflow_run_id": mlflow.run_id,
    }
    primary = proj.config.gates.primary_metric
    return dg.Output(
        value,
        metadata={
            "candidate_version": candidate["version"],
            "champion_version": champion["version"] if champion else "none",
            f"candidate_{primary}": candidate["metrics"][primary],
            "holdout_rows": len(holdout_set),
            "dataset_hash": value["dataset_hash"],
            "comparison": dg.MetadataValue.md(_side_by_side(candidate, champion)),
        },
    )
