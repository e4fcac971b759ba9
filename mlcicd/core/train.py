"""LightGBM training through the shared feature path, for binary, multiclass and regression; deterministic for a seed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlcicd.config import DatasetSpec, ModelSpec
from mlcicd.faults import kill_point
from mlcicd.core.dataset import in_time_order
from mlcicd.core.features import FeatureState, encode_target, feature_matrix, featurize, fit_features
from mlcicd.core.tasks import task_of

# LightGBM objective and validation metrics (the first one drives early stopping) per task


@dataclass
class TrainedModel:
    booster: Any  # lightgbm.Booster
    features: FeatureState
    params: dict[str, Any]
    best_iteration: int

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return predict(self.booster, self.features, frame)


def predict(booster, features: FeatureState, rows) -> np.ndarray:
    """Raw rows in (a DataFrame, or column name -> values as the service holds a request), predictions out: the scoring
    path shared by every caller. Binary: probability of the positive class; multiclass: one probability per class
    (columns in `features.classes` order); regression: values."""
    return score_matrix(booster, feature_matrix(rows, features), features.feature_names)


def score_inputs(booster, inputs: pd.DataFrame) -> np.ndarray:
    """`predict` for rows already featurized (the Dask engine featurizes on the workers)."""
    return score_matrix(booster, inputs.to_numpy(dtype="float64"), list(inputs.columns))


SINGLE_THREAD_ROWS = 100  # fewer rows are scored on one thread: waking a second costs more than it saves, and on a busy
# service it waits for a core that other requests hold (8 clients, one row each: 1,880 -> 2,130 requests/s)


def score_matrix(booster, matrix: np.ndarray, names: list[str]) -> np.ndarray:
    """The model's best iteration on a feature matrix whose columns are `names`, and a refusal when they are not the
    columns the model was trained on."""
    if list(names) != booster.feature_name():
        raise ValueError(f"training/serving skew: the features are {list(names)} but the model expects {booster.feature_name()}")
    threads = {"num_threads": 1} if len(matrix) < SINGLE_THREAD_ROWS else {}
    return booster.predict(matrix, num_iteration=booster.best_iteration if booster.best_iteration > 0 else None, **threads)


def training_fingerprint(dataset: DatasetSpec, model: ModelSpec, num_boost_round: int, sample_rows: int | None) -> str:
    """A hash of every setting that shapes a trained model (the dataset spec, the model spec, the tier's rounds and
    sample): with the same data and the same code, the same fingerprint means the same model."""
    import hashlib
    import json

    shaping = {"dataset": dataset.model_dump(mode="json"), "model": model.model_dump(mode="json"), "rounds": num_boost_round, "sample_rows": sample_rows}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()


def nothing_new(champion_tags: dict, dataset_hash: str, commit: str, fingerprint: str) -> bool:
    """The champion was trained on exactly this data, by exactly this committed code, with exactly these settings: a
    retrain would learn nothing new. Unknown or uncommitted code never counts as the same."""
    known = commit != "unknown" and not commit.endswith("-dirty")
    return known and (champion_tags.get("dataset_hash"), champion_tags.get("git_commit"), champion_tags.get("training_fingerprint")) == (
        dataset_hash, commit, fingerprint)


def lightgbm_params(model: ModelSpec, task: str = "binary", classes: list[str] | None = None) -> dict[str, Any]:
    params = {
        **task_of(task).lightgbm_objective(classes),
        "verbosity": -1,
        "seed": model.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": model.num_threads,
    }
    params.update(model.params)
    return params


def train_model(
    train: pd.DataFrame, dataset: DatasetSpec, model: ModelSpec, num_boost_round: int, on_round: Callable[[int, int], None] | None = None
) -> TrainedModel:
    """Fit on the older rows, stop early on the newest `validation_fraction` (rows are in time or arrival order).
    `on_round(done, total)` is told the progress every few rounds."""
    import lightgbm as lgb

    if train[dataset.target].nunique() < 2:
        raise ValueError(f"the train set has a single value of '{dataset.target}'; there is nothing to learn")
    ordered = in_time_order(train, dataset.time_column) if dataset.time_column else train
    cut = int(len(ordered) * (1 - model.validation_fraction))
    fit_rows, valid_rows = ordered.iloc[:cut], ordered.iloc[cut:]
    features = fit_features(fit_rows, dataset)
    params = lightgbm_params(model, features.task, features.classes)
    fit_labels, valid_labels = encode_target(fit_rows[dataset.target], features), encode_target(valid_rows[dataset.target], features)
    keep = task_of(features.task).trainable(valid_labels)  # a class seen only in the validation rows cannot be scored by LightGBM
    if keep is not None:
        valid_rows, valid_labels = valid_rows[keep], valid_labels[keep]
    fit_set = lgb.Dataset(featurize(fit_rows, features), fit_labels, categorical_feature=features.categorical, free_raw_data=True)
    valid_inputs = featurize(valid_rows, features)
    valid_set = fit_set.create_valid(valid_inputs, valid_labels)
    callbacks = [
        lgb.early_stopping(model.early_stopping_rounds, first_metric_only=True, verbose=False),
        lambda env: kill_point("train.mid_boosting") if env.iteration + 1 == max(1, num_boost_round // 2) else None,
    ]
    if on_round is not None:
        step = max(1, num_boost_round // 50)
        callbacks.append(lambda env: on_round(env.iteration + 1, num_boost_round) if (env.iteration + 1) % step == 0 else None)
    booster = lgb.train(
        params,
        fit_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=callbacks,
    )
    if task_of(features.task).thresholded:
        features = with_operating_point(features, valid_labels, score_inputs(booster, valid_inputs), model)
    return TrainedModel(booster, features, params, int(booster.best_iteration or num_boost_round))


def with_operating_point(features: FeatureState, valid_labels, valid_scores, model: ModelSpec) -> FeatureState:
    """A thresholded task's features with the decision threshold model.operating_point chooses on the validation split."""
    from dataclasses import replace

    from mlcicd.core.operating_point import choose

    chosen = choose(model.operating_point, valid_labels, valid_scores)
    return replace(features, threshold=chosen.threshold, operating_point=chosen.to_dict())
