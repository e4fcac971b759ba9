"""LightGBM training through the shared feature path; deterministic for a seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlcicd.config import DatasetSpec, ModelSpec
from mlcicd.core.features import FeatureState, featurize, fit_features


@dataclass
class TrainedModel:
    booster: Any  # lightgbm.Booster
    features: FeatureState
    params: dict[str, Any]
    best_iteration: int

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return predict(self.booster, self.features, frame)


def predict(booster, features: FeatureState, frame: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class for raw rows: the scoring path shared by every caller."""
    inputs = featurize(frame, features)
    if list(inputs.columns) != booster.feature_name():
        raise ValueError(
            f"training/serving skew: the features are {list(inputs.columns)} but the model expects {booster.feature_name()}"
        )
    return booster.predict(inputs, num_iteration=booster.best_iteration if booster.best_iteration > 0 else None)


def lightgbm_params(model: ModelSpec) -> dict[str, Any]:
    params = {
        "objective": "binary",
        "metric": ["binary_logloss", "auc"],
        "verbosity": -1,
        "seed": model.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": model.num_threads,
    }
    params.update(model.params)
    return params


def train_model(train: pd.DataFrame, dataset: DatasetSpec, model: ModelSpec, num_boost_round: int) -> TrainedModel:
    import lightgbm as lgb

    if train[dataset.target].nunique() < 2:
        raise ValueError(f"the train set has a single value of '{dataset.target}'; a classifier needs both classes")
    ordered = train.sort_values(dataset.time_column, kind="stable")
    cut = int(len(ordered) * (1 - model.validation_fraction))
    fit_rows, valid_rows = ordered.iloc[:cut], ordered.iloc[cut:]
    features = fit_features(fit_rows, dataset)
    params = lightgbm_params(model)
    fit_set = lgb.Dataset(
        featurize(fit_rows, features), fit_rows[dataset.target], categorical_feature=features.categorical,
        free_raw_data=True,
    )
    valid_set = fit_set.create_valid(featurize(valid_rows, features), valid_rows[dataset.target])
    booster = lgb.train(
        params,
        fit_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(model.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    return TrainedModel(booster, features, params, int(booster.best_iteration or num_boost_round))
