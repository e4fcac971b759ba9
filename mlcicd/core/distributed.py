"""model.engine: dask. The rows stay on the workers; the driver (the Dagster step) holds a manifest.

The manifest names the accepted Parquet files of the training window, the sample (if the tier samples) and the cut
between the train rows and the holdout. Workers read the files themselves (`dd.read_parquet`), compute what the data
gates and the feature state need (counts, distinct values, duplicated ids), featurize their own partitions with the
same `featurize` and fitted state as every other path, and train with `lightgbm.dask`. Only the holdout comes to the
driver, for evaluation: whole, or sampled to model.dask.max_holdout_rows with the sample recorded.

Without early stopping in lightgbm.dask, the rounds are trained in full and the best iteration is read from the
validation history that lightgbm.dask returns: that of the worker whose model it keeps, computed on that worker's share
of the validation rows (with tiny data it may hold none; then every round is kept, and lightgbm warns). The result is
an ordinary LightGBM booster with a FeatureState, registered, checked and scored like a local one. Workers must see the
accepted files at the same paths (one machine, or a shared volume).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlcicd.config import DatasetSpec, ModelSpec
from mlcicd.core.features import FeatureState, encode_target, feature_columns, featurize, state_from
from mlcicd.core.tasks import task_of

# lightgbm.dask, given validation data, fetches training parts to the client, one by one, until it finds one that carries
# validation rows (lightgbm/dask.py, `_train`: `"eval_set" in part.result()`), so the driver briefly holds a whole part.
# Partitions of at most this many rows keep that to about 50 MB (at 10M rows, 2.5M-row files gave a 0.6 GB peak).
PART_ROWS = 250_000

# LightGBM's metric names (not core/metrics.py's) where higher is better, by its own rule; every other one is a loss or an
# error. ndcg and map are named with their cut-off in the history ("ndcg@5").
LIGHTGBM_HIGHER_IS_BETTER = ("auc", "auc_mu", "average_precision", "ndcg", "map")


def read_rows(paths: Sequence[str], sample_fraction: float | None = None, seed: int = 0):
    """The window's rows as a lazy Dask frame, one or more partitions per file, in the files' order; sampled (the same
    rows for the same files, fraction and seed) when the tier samples."""
    import dask.dataframe as dd

    files = [dd.read_parquet(str(p)) for p in paths]  # one by one: read_parquet given a list sorts it by name
    rows = dd.concat(files) if len(files) > 1 else files[0]
    return rows.sample(frac=sample_fraction, random_state=seed) if sample_fraction else rows


# ---- the cut between older and newer rows ---------------------------------------------------------------------


def find_cut(rows, time_column: str | None, newest_share: float, total: int) -> dict:
    """Where the newest `newest_share` of the rows begins: {"time": iso} (rows at or after that time; rows of the same
    instant fall on one side together) or, without a time column, {"position": n} (rows after the first n, in the
    files' order, which is arrival order)."""
    cut = total - newest_rows(total, newest_share)
    if cut <= 0 or cut >= total:
        raise ValueError(f"cannot split {total} rows into older rows and a newest {newest_share:.0%}")
    if not time_column:
        return {"position": cut}
    first_newest = rows[time_column].nlargest(total - cut).min().compute()  # the k-th newest time, found on the workers
    return {"time": pd.Timestamp(first_newest).isoformat()}


def newest_rows(total: int, newest_share: float) -> int:
    """How many of `total` rows the newest `newest_share` is (at a time cut, rows of the cut's instant add to it)."""
    return total - int(round(total * (1 - newest_share)))


def before(rows, cut: dict, time_column: str | None):
    """The rows older than the cut."""
    if "time" in cut:
        return rows[rows[time_column] < _instant(cut, rows, time_column)]
    return _by_position(rows, cut["position"], older=True)


def from_cut(rows, cut: dict, time_column: str | None):
    """The rows at or after the cut."""
    if "time" in cut:
        return rows[rows[time_column] >= _instant(cut, rows, time_column)]
    return _by_position(rows, cut["position"], older=False)


def _instant(cut: dict, rows, time_column: str) -> pd.Timestamp:
    """The cut as a time comparable with the column (naive with naive times, in their zone with zoned ones)."""
    instant = pd.Timestamp(cut["time"])
    zone = getattr(rows[time_column].dtype, "tz", None)
    if zone is None:
        return instant.tz_localize(None) if instant.tz is not None else instant
    return instant.tz_convert(zone) if instant.tz is not None else instant.tz_localize(zone)


def _by_position(rows, position: int, older: bool):
    import dask.dataframe as dd

    lengths = rows.map_partitions(len).compute().tolist()
    parts, start = [], 0
    for index, length in enumerate(lengths):
        end, part = start + length, rows.partitions[index]
        if older and end <= position or not older and start >= position:
            parts.append(part)
        elif start < position < end:
            keep = position - start
            parts.append(part.map_partitions(lambda p, k=keep, o=older: p.iloc[:k] if o else p.iloc[k:]))
        start = end
    return dd.concat(parts) if len(parts) > 1 else parts[0]


# ---- what the data gates and the feature state need, computed on the workers ----------------------------------


def row_keys_of(rows, id_column: str | None):
    """What identifies a row (core/dataset.row_keys), per partition."""
    from mlcicd.core.dataset import row_keys

    if id_column:
        return rows[id_column]
    return rows.map_partitions(row_keys, None, meta=(None, "uint64"))


def repeated_keys(rows, id_column: str | None) -> tuple[int, list]:
    """How many ids (or whole rows) appear more than once, and up to three of them as a person reads them."""
    import dask

    keys = row_keys_of(rows, id_column)
    counts = keys.value_counts()
    repeated = counts[counts > 1]
    size, first = dask.compute(repeated.size, repeated.head(3, npartitions=-1, compute=False))
    first = list(first.index)
    if not size or id_column:
        return int(size), first
    shown = rows[keys.isin(first)].drop_duplicates().head(3, npartitions=-1)
    return int(size), [row.to_dict() for _, row in shown.iterrows()]


def shared_keys(older, newer: pd.DataFrame, id_column: str | None) -> tuple[int, list]:
    """How many rows of `older` (on the workers) share their id, or all their values, with a row of `newer` (in memory),
    with up to three of the shared keys."""
    import dask

    from mlcicd.core.dataset import row_keys

    known = pd.Index(row_keys(newer, id_column)).unique()
    keys = row_keys_of(older, id_column)
    shared = keys[keys.isin(known)]
    count, first = dask.compute(shared.size, shared.head(3, npartitions=-1, compute=False))
    return int(count), list(first)


def fit_features_on_workers(rows, spec: DatasetSpec) -> FeatureState:
    """The same FeatureState fit_features would give on these rows in memory: the distinct values come back, the rows
    do not."""
    import dask

    numeric, categorical = feature_columns(rows.dtypes, spec)
    few = {"split_out": 1}  # a few distinct values: summed up the tree, no shuffle
    distinct, targets = dask.compute({c: rows[c].dropna().unique(**few) for c in categorical}, rows[spec.target].dropna().unique(**few))
    return state_from(numeric, categorical, distinct, targets, spec)


# ---- training ------------------------------------------------------------------------------------------------


def _labels(part: pd.DataFrame, features: FeatureState, target: str) -> pd.Series:
    return pd.Series(encode_target(part[target], features), index=part.index, dtype="float64")


def _trainable(part: pd.DataFrame, features: FeatureState, target: str) -> pd.DataFrame:
    keep = task_of(features.task).trainable(encode_target(part[target], features))  # a class unseen in training cannot be scored
    return part if keep is None else part[keep]


def _scores(inputs: pd.DataFrame, booster) -> pd.Series:
    from mlcicd.core.train import score_inputs

    return pd.Series(score_inputs(booster, inputs), index=inputs.index, dtype="float64")


def train_on_workers(rows, dataset: DatasetSpec, model: ModelSpec, num_boost_round: int, total: int):
    """Fit on the older rows, choose the best round (and a binary model's threshold) on the newest
    model.validation_fraction: train_model's recipe, with every row kept on the workers. Returns a TrainedModel."""
    import dask
    import lightgbm as lgb
    from dask.dataframe.utils import make_meta

    from mlcicd.core.train import TrainedModel, lightgbm_params, with_operating_point

    rows = rows.repartition(npartitions=max(rows.npartitions, -(-total // PART_ROWS)))  # see PART_ROWS
    cut = find_cut(rows, dataset.time_column, model.validation_fraction, total)
    fit_rows, valid_rows = before(rows, cut, dataset.time_column), from_cut(rows, cut, dataset.time_column)
    features = fit_features_on_workers(fit_rows, dataset)
    kind = task_of(features.task)
    if kind.is_classifier and len(features.classes or []) < 2:
        raise ValueError(f"the train set has a single value of '{dataset.target}'; there is nothing to learn")
    valid_rows = valid_rows.map_partitions(_trainable, features, dataset.target, meta=make_meta(valid_rows))
    params = lightgbm_params(model, features.task, features.classes)
    inputs_meta = pd.DataFrame({c: pd.Series(dtype="float64") for c in features.feature_names})
    x, vx = (part.map_partitions(featurize, features, meta=inputs_meta) for part in (fit_rows, valid_rows))
    y, vy = (part.map_partitions(_labels, features, dataset.target, meta=(dataset.target, "float64")) for part in (fit_rows, valid_rows))
    x, y, vx, vy = _without_empty_parts(*dask.persist(x, y, vx, vy))  # featurized once, kept on the workers
    settings = {k: v for k, v in params.items() if k not in ("num_class", "metric", "num_threads")}  # lightgbm.dask sets these
    metric = params["metric"][0] if isinstance(params.get("metric"), list) else params.get("metric")
    estimator = getattr(lgb, kind.dask_estimator)(n_estimators=num_boost_round, **settings)
    estimator.fit(x, y, eval_X=(vx,), eval_y=(vy,), eval_metric=metric, categorical_feature=features.categorical or "auto")
    booster = estimator.to_local().booster_
    history = next(iter(estimator.evals_result_.values()), {}).get(metric)
    if history:
        scores = np.asarray(history)
        higher = metric.split("@")[0] in LIGHTGBM_HIGHER_IS_BETTER
        booster.best_iteration = int(np.argmax(scores) if higher else np.argmin(scores)) + 1
    if kind.thresholded:
        labels, scores = dask.compute(vy, vx.map_partitions(_scores, booster, meta=("score", "float64")))
        features = with_operating_point(features, labels.to_numpy(), scores.to_numpy(), model)
    return TrainedModel(booster, features, params, int(booster.best_iteration or num_boost_round))


def _without_empty_parts(x, y, vx, vy):
    """The persisted inputs and labels without the partitions the cuts emptied (LightGBM refuses an empty part)."""

    def kept(inputs, labels):
        lengths = inputs.map_partitions(len).compute().tolist()
        full = [i for i, length in enumerate(lengths) if length]
        if not full:
            raise ValueError("no rows to train on or to validate with after the cuts")
        return inputs.partitions[full], labels.partitions[full]

    return (*kept(x, y), *kept(vx, vy))


def drawn(rows, n: int, total: int, seed: int):
    """About 1.1 n of the `total` rows, drawn on the workers (lazy; all of them when there are no more than n):
    `kept` keeps n of them once they are here."""
    return rows if total <= n else rows.sample(frac=min(1.0, 1.1 * n / total), random_state=seed)


def kept(rows: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most n of `rows`, chosen at random, in their order."""
    if len(rows) <= n:
        return rows
    return rows.iloc[np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))]
