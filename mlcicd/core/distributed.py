"""Training beyond one machine on an existing engine: LightGBM's Dask interface (`lightgbm.dask`) on a
`dask.distributed` cluster (a scheduler address from mlcicd.yaml, or a LocalCluster on this machine).

The result is an ordinary LightGBM booster, so it is registered, checked and scored exactly like one
trained locally (same FeatureState, same `predict`). lightgbm.dask has no early stopping; the rounds are
trained in full and the best iteration is read from the validation metric's history instead.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

# metric name in LightGBM's evals_result -> higher is better?
HIGHER_IS_BETTER = {"auc": True, "binary_logloss": False, "multi_logloss": False, "multi_error": False, "l2": False, "l1": False}


@contextmanager
def dask_client(scheduler: str | None, workers: int):
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def train_on_dask(
    fit_x: pd.DataFrame, fit_y: np.ndarray, valid_x: pd.DataFrame, valid_y: np.ndarray, params: dict[str, Any],
    num_boost_round: int, task: str, categorical: list[str], scheduler: str | None, workers: int,
):
    """A booster trained with lightgbm.dask; `best_iteration` set from the validation history."""
    import dask.dataframe as dd
    import lightgbm as lgb

    from mlcicd.core.tasks import task_of

    estimator_class = getattr(lgb, task_of(task).dask_estimator)
    settings = {k: v for k, v in params.items() if k not in ("num_class", "metric")}  # the estimator infers classes
    metric = params["metric"][0] if isinstance(params.get("metric"), list) else params.get("metric")
    with dask_client(scheduler, workers) as client:
        partitions = max(1, len(client.scheduler_info()["workers"]))
        x = dd.from_pandas(fit_x, npartitions=partitions)
        y = dd.from_pandas(pd.Series(fit_y, index=fit_x.index), npartitions=partitions)
        vx = dd.from_pandas(valid_x, npartitions=partitions)
        vy = dd.from_pandas(pd.Series(valid_y, index=valid_x.index), npartitions=partitions)
        estimator = estimator_class(client=client, n_estimators=num_boost_round, **settings)
        estimator.fit(x, y, eval_X=vx, eval_y=vy, eval_metric=metric, categorical_feature=categorical or "auto")
        local = estimator.to_local()
    booster = local.booster_
    history = next(iter(local.evals_result_.values()), {}).get(metric)
    if history:
        scores = np.asarray(history)
        best = int(np.argmax(scores) if HIGHER_IS_BETTER.get(metric, False) else np.argmin(scores)) + 1
        booster.best_iteration = best
    return booster
