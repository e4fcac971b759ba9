"""model.engine: dask: the same pipeline trains through lightgbm.dask on a dask.distributed LocalCluster, and the
result is registered, gated and scored like a local model."""

import numpy as np

from mlcicd.core.simulate import simulate_batch
from mlcicd.core.train import predict
from mlcicd.mlflow_registry import load_model

from .support import checks, simulate


def test_training_on_a_dask_cluster_passes_the_same_gates(make_project, run_job):
    project = make_project({"model": {"engine": "dask", "dask": {"workers": 2}, "num_boost_round": 60}})
    simulate(project, batches=4)
    result = run_job("training_job")
    verdicts = checks(result)
    assert result.success, {k: v.description for k, v in verdicts.items() if not v.passed}
    evaluation = result.output_for_node("fraud__candidate_evaluation")
    assert evaluation["candidate"]["metrics"]["roc_auc"] > 0.8
    model = result.output_for_node("fraud__candidate_model")
    assert 1 <= model["best_iteration"] <= 60
    booster, features = load_model(project, model["name"], model["version"])
    rows = simulate_batch(90, 500)
    scores = predict(booster, features, rows)
    assert scores.shape == (500,) and np.all((scores > 0) & (scores < 1))
