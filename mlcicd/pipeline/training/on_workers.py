"""The training assets with model.engine: dask, where the rows stay on the workers (core/distributed.py).

training_dataset and train_set are manifests (records naming the accepted Parquet files, the sample and the cut), not
rows; holdout_set is rows, as with the local engine, so evaluation and the model gates are the same code. The steps
compute on the run's cluster (resources.DaskClusters: model.dask.scheduler, or one LocalCluster per run). The data gates
are the same functions, given what the workers counted.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from mlcicd.core.dataset import dataset_hash, in_time_order, newest_ingestion, window
from mlcicd.core.ingest import list_accepted
from mlcicd.gate_checks import check_result, shown
from mlcicd.names import Names
from mlcicd.project import Project
from mlcicd.resources import DaskClusters, run_tier

from .assets import BATCHES_ATTR, HASH_ATTR, holdout_share

def on_cluster(clusters: DaskClusters, proj: Project):
    """Compute on this model's cluster for the rest of the block."""
    return clusters.client(proj.config.model.dask.scheduler, proj.config.model.dask.workers).as_current()


def rows_of(manifest: dict):
    """The manifest's rows, lazily, on the workers (the train rows only, once the split has set the cut)."""
    from mlcicd.core.distributed import before, read_rows

    rows = read_rows(manifest["paths"], manifest["sample_fraction"], manifest["seed"])
    return before(rows, manifest["cut"], manifest["time_column"]) if "cut" in manifest else rows


def build_manifest(context: dg.AssetExecutionContext, n: Names, proj: Project, clusters: DaskClusters):
    import dask

    from mlcicd.core import gates
    from mlcicd.core.distributed import repeated_keys

    spec, thresholds = proj.config.dataset, proj.config.gates
    tier = proj.tier(run_tier(context))
    batches = window(list_accepted(proj.accepted_dir), spec.window_batches)
    if not batches:
        raise dg.Failure(f"No accepted batches in {proj.accepted_dir}: land data in {proj.landing_dir} and ingest it first.")
    accepted = sum(b.rows for b in batches)
    fraction = tier.sample_rows / accepted if tier.sample_rows and accepted > tier.sample_rows else None
    digest = dataset_hash(batches, tier.sample_rows)
    manifest = {
        "engine": "dask", "paths": [str(b.path) for b in batches], "batches": [b.batch_id for b in batches], "dataset_hash": digest,
        "sample_fraction": fraction, "seed": proj.config.model.seed, "time_column": spec.time_column,
        "holdout_share": holdout_share(spec, batches),
    }
    with on_cluster(clusters, proj):
        rows = rows_of(manifest)
        if spec.target not in rows.columns:
            raise dg.Failure(f"The accepted batches have no target column '{spec.target}' (dataset.target in mlcicd.yaml).")
        columns = [spec.target, *([spec.time_column] if spec.time_column else [])]
        balance, count, span = dask.delayed(labels_and_span)(rows[columns], spec, thresholds).compute()
        duplicated, examples = repeated_keys(rows, spec.id_column)
    manifest["rows"], manifest["repeated_keys"] = int(count), duplicated
    time_range = {"first_time": str(span[0]), "last_time": str(span[1])} if span else {}
    yield dg.Output(
        manifest,
        data_version=dg.DataVersion(digest),
        metadata=shown({
            "dataset_hash": digest,
            "dagster/row_count": manifest["rows"],
            "batches": len(batches),
            "sampled_rows": f"about {tier.sample_rows:,} (a {fraction:.4f} sample drawn on the workers)" if fraction else "all",
            "task": spec.task,
            "engine": "dask: the rows stay on the workers",
            **time_range,
            **{k: v for k, v in balance.numbers.items() if k.startswith(("share_", "positive_rate", "target_"))},
        }),
    )
    for verdict in (
        gates.freshness_gate(newest_ingestion(batches), datetime.now(timezone.utc), thresholds.max_data_age_hours),
        gates.min_rows_gate(manifest["rows"], thresholds.min_rows),
        balance,
        gates.unique_ids_gate(duplicated, spec.id_column, examples, spec.duplicate_policy),
    ):
        yield check_result(verdict, asset_key=n.key("training_dataset"))


def labels_and_span(frame, spec, thresholds) -> tuple:
    """On one worker, given the target (and time) column of every row: the label_balance verdict, the number of rows and
    the time span."""
    from mlcicd.core.gates import label_balance_gate

    verdict = label_balance_gate(spec.task, frame[spec.target], positive_rate=thresholds.positive_rate,
                                 min_class_share=thresholds.min_class_share)
    span = (frame[spec.time_column].min(), frame[spec.time_column].max()) if spec.time_column else ()
    return verdict, len(frame), span


def split_manifest(manifest: dict, n: Names, proj: Project, clusters: DaskClusters):
    """train_set: the manifest with the cut; holdout_set: the newest rows, brought to the driver (sampled above
    model.dask.max_holdout_rows)."""
    import dask

    from mlcicd.core.distributed import drawn, find_cut, from_cut, kept, newest_rows, shared_keys
    from mlcicd.core.gates import leakage_gate

    spec, limit = proj.config.dataset, proj.config.model.dask.max_holdout_rows
    time = spec.time_column
    with on_cluster(clusters, proj):
        rows = rows_of(manifest)
        cut = find_cut(rows, time, manifest["holdout_share"], manifest["rows"])
        train = {**manifest, "cut": cut}
        older, newer = rows_of(train), from_cut(rows, cut, time)
        span = (older[time].min(), older[time].max()) if time else ()
        expected = newest_rows(manifest["rows"], manifest["holdout_share"])
        train_rows, holdout_rows, holdout, *span = dask.compute(
            older[spec.target].size, newer[spec.target].size, drawn(newer, limit, expected, manifest["seed"]), *span)
        holdout = kept(holdout, limit, manifest["seed"])
        holdout = in_time_order(holdout, time) if time else holdout.reset_index(drop=True)
        # a key on both sides of the cut is a key that repeats: when none repeats in the window, none can (no pass needed)
        shared, examples = shared_keys(older, holdout, spec.id_column) if manifest.get("repeated_keys", 1) else (0, [])
    train.update(rows=int(train_rows), **({"first_time": str(span[0]), "last_time": str(span[1])} if span else {}))
    holdout.attrs.update({HASH_ATTR: manifest["dataset_hash"], BATCHES_ATTR: manifest["batches"]})
    sampled = len(holdout) < holdout_rows
    starts = str(holdout[time].min()) if time else None
    where = starts or f"(by arrival: after row {cut['position']:,})"
    yield dg.Output(train, output_name="train_set", metadata={
        "dagster/row_count": train["rows"], "dataset_hash": manifest["dataset_hash"], "before": where,
        "engine": "dask: a manifest; the rows stay on the workers"})
    yield dg.Output(holdout, output_name="holdout_set", metadata={
        "dagster/row_count": len(holdout), "dataset_hash": manifest["dataset_hash"], "from": where,
        "sampled": f"{len(holdout):,} of the {int(holdout_rows):,} holdout rows (model.dask.max_holdout_rows), drawn on the workers with "
                   f"seed {manifest['seed']}" if sampled else "no: every holdout row"})
    allowed = spec.id_column is None and spec.duplicate_policy == "allow"
    yield check_result(leakage_gate(shared, train.get("last_time"), starts, examples, identical_rows_allowed=allowed), asset_key=n.key("holdout_set"))


def fit_on_workers(train_set: dict, proj: Project, rounds: int, clusters: DaskClusters):
    """The model trained where the rows are, and what the driver keeps of them for MLflow: a sample of
    monitoring.reference_rows (the drift reference, the input example, the logged dataset's schema) and, per column,
    whether no value is missing."""
    import dask

    from mlcicd.core.distributed import drawn, kept, train_on_workers

    wanted, seed = proj.config.monitoring.reference_rows, proj.config.model.seed
    with on_cluster(clusters, proj):
        rows = rows_of(train_set)
        trained = train_on_workers(rows, proj.config.dataset, proj.config.model, rounds, train_set["rows"])
        missing, seen = dask.compute(rows.isna().sum(), drawn(rows, wanted, train_set["rows"], seed))
    return trained, kept(seen, wanted, seed).reset_index(drop=True), missing == 0

