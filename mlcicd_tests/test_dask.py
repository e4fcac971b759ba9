"""model.engine: dask keeps the rows on the workers. training_dataset and train_set are manifests (the accepted
Parquet files, the sample, the cut); workers read the files, count what the data gates need, featurize and train;
only the holdout comes to the driver. The model is registered, gated and scored like a local one."""

import numpy as np
import pandas as pd
import yaml

from mlcicd.core.features import fit_features
from mlcicd.core.ingest import list_accepted
from mlcicd.core.simulate import simulate_batch
from mlcicd.core.train import predict
from mlcicd.mlflow_registry import load_model

from .real_data import DATASETS, Scenario
from .support import checks, cli, dask_cluster, simulate


def test_an_external_cluster_trains_where_the_rows_are(make_project, run_job, tmp_path):
    overrides = {"num_boost_round": 60, "engine": "dask", "dask": {"max_holdout_rows": 2000}}
    with dask_cluster(tmp_path) as address:
        overrides["dask"]["scheduler"] = address
        project = make_project({"model": overrides})
        simulate(project, batches=4)
        result = run_job("training_job")
        from distributed import Client

        with Client(address) as client:
            ran = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    verdicts = checks(result)
    assert result.success, {k: v.description for k, v in verdicts.items() if not v.passed}
    assert any("read_parquet" in prefix for prefix in ran), ran  # the workers read the accepted files themselves
    assert "train_part" in ran and "labels_and_span" in ran, ran  # lightgbm.dask trained there; a worker judged the labels

    time = project.config.dataset.time_column
    manifest = result.output_for_node("fraud__training_dataset")
    accepted = list_accepted(project.accepted_dir)
    assert manifest["paths"] == [str(b.path) for b in accepted] and manifest["rows"] == sum(b.rows for b in accepted) == 24000
    train_set = result.output_for_node("fraud__train_holdout_split", "train_set")
    holdout = result.output_for_node("fraud__train_holdout_split", "holdout_set")
    cut = pd.Timestamp(train_set["cut"]["time"])
    rows = pd.concat([pd.read_parquet(p) for p in manifest["paths"]], ignore_index=True)
    newest = rows[time] >= cut
    assert train_set["rows"] == int((~newest).sum()) and abs(newest.mean() - 0.2) < 0.01  # dataset.holdout_fraction
    # the holdout came to the driver as a sample of model.dask.max_holdout_rows, and says so
    assert len(holdout) == 2000 and (holdout[time] >= cut).all() and holdout[time].is_monotonic_increasing
    assert holdout["transaction_id"].isin(rows.loc[newest, "transaction_id"]).all()
    said = result.asset_materializations_for_node("fraud__train_holdout_split")
    sampled = next(m.metadata["sampled"].value for m in said if m.asset_key.path[-1] == "holdout_set")
    assert sampled.startswith(f"2,000 of the {int(newest.sum()):,} holdout rows"), sampled

    model = result.output_for_node("fraud__candidate_model")
    assert 1 <= model["best_iteration"] <= 60 and model["train_rows"] == train_set["rows"]
    booster, features = load_model(project, model["name"], model["version"])
    in_memory = fit_features(rows[~newest], project.config.dataset)  # the same state as fitting on the rows in memory
    assert (features.numeric, features.categorical, features.vocabularies, features.classes) == (
        in_memory.numeric, in_memory.categorical, in_memory.vocabularies, in_memory.classes)
    assert 0 < features.threshold < 1 and features.operating_point["rows"] > 0
    evaluation = result.output_for_node("fraud__candidate_evaluation")
    assert evaluation["candidate"]["metrics"]["roc_auc"] > 0.8
    scores = predict(booster, features, simulate_batch(90, 500))
    assert scores.shape == (500,) and np.all((scores > 0) & (scores < 1))


def test_on_the_workers_the_data_gates_judge_as_they_do_in_memory(make_project, run_job):
    """A batch that repeats the newest batch's ids a day later: unique_ids refuses it on either engine, and every data
    gate gives the same verdict."""
    project = make_project()
    simulate(project, batches=4)
    newest = sorted(project.landing_dir.iterdir())[-1]
    repeated = pd.read_parquet(newest) if newest.suffix == ".parquet" else pd.read_csv(newest, parse_dates=["event_time"])
    repeated["event_time"] = repeated["event_time"] + pd.Timedelta(days=1)
    repeated.to_parquet(project.landing_dir / "repeated.parquet", index=False)
    verdicts = {}
    for engine in ("local", "dask"):
        make_project({"model": {"engine": engine, "dask": {"workers": 2}}})
        result = run_job("training_job")
        verdicts[engine] = {k: (v.passed, v.description) for k, v in checks(result).items() if k != "data_contract"}
        assert not result.success
    local, dask = verdicts["local"], verdicts["dask"]
    assert set(local) == set(dask) == {"data_freshness", "min_rows", "label_balance", "unique_ids"}  # the run stopped there
    assert {k: v[0] for k, v in local.items()} == {k: v[0] for k, v in dask.items()}
    assert not dask["unique_ids"][0] and dask["unique_ids"][1].startswith(f"{len(repeated):,} 'transaction_id' value(s) appear more than once")
    assert dask["min_rows"] == local["min_rows"] and dask["label_balance"] == local["label_balance"]
    shown = dask["unique_ids"][1].split("(e.g. ")[1].rstrip(").").split("; ")
    assert set(shown) <= set(repeated["transaction_id"].astype(str)) and len(shown) == 3

    # duplicates allowed: the run goes on to the split, and the repeated ids are on both sides of it, so no_leakage refuses
    leakage = {}
    for engine in ("local", "dask"):
        make_project({"model": {"engine": engine, "dask": {"workers": 2}}, "dataset": {"duplicates": "allow"}})
        result = run_job("training_job")
        assert not result.success and checks(result)["unique_ids"].passed
        leakage[engine] = checks(result)["no_leakage"]
    assert not leakage["local"].passed and not leakage["dask"].passed
    both = [v.description.split(" row(s) are in both")[0] for v in leakage.values()]
    assert both[0] == both[1] == f"{len(repeated):,}", both


def test_real_data_without_a_time_column_is_split_by_arrival_as_in_memory(tmp_path, mlflow_template, monkeypatch, run_job, instance):
    """ISLR Default (no time column, no id column) cut into daily batches: the Dask engine holds out exactly the rows the
    local engine holds out (the newest by arrival, cut at the same row), and both models pass every gate."""
    dataset = next(d for d in DATASETS if d.name == "islr_default")
    root = tmp_path / dataset.name
    monkeypatch.setenv("MLCICD_CONFIG", str(root / "mlcicd.yaml"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    scenario = Scenario(dataset, root, run_job, cli, instance, mlflow_template)
    scenario.init()
    assert scenario.project.config.dataset.time_column is None
    assert run_job(scenario.own("ingestion_job")).success
    holdouts, metrics = {}, {}
    for engine in ("local", "dask"):
        config = yaml.safe_load((root / "mlcicd.yaml").read_text())
        config["model"].update(engine=engine, dask={"workers": 2})
        (root / "mlcicd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        result = run_job("training_job")
        assert result.success, {k: v.description for k, v in checks(result).items() if not v.passed}
        holdouts[engine] = result.output_for_node(scenario.own("train_holdout_split"), "holdout_set")
        metrics[engine] = result.output_for_node(scenario.own("candidate_evaluation"))["candidate"]["metrics"]
    local, dask = holdouts["local"], holdouts["dask"]
    pd.testing.assert_frame_equal(local, dask[local.columns], check_dtype=False, check_categorical=False)
    assert abs(metrics["local"]["roc_auc"] - metrics["dask"]["roc_auc"]) < 0.03, metrics


def test_the_ci_tier_samples_on_the_workers(make_project, run_job):
    """tiers.ci.sample_rows with the Dask engine: the workers draw the sample (a fraction, recorded in the manifest) and
    the CI loop runs on it, under its own model name."""
    project = make_project({"model": {"engine": "dask", "dask": {"workers": 2}}, "tiers": {"ci": {"sample_rows": 10000}}})
    simulate(project, batches=4)
    result = run_job("ci_job")
    assert result.success, {k: v.description for k, v in checks(result).items() if not v.passed}
    manifest = result.output_for_node("fraud__training_dataset")
    assert manifest["sample_fraction"] == 10000 / 24000 and abs(manifest["rows"] - 10000) < 500, manifest
    train_set = result.output_for_node("fraud__train_holdout_split", "train_set")
    holdout = result.output_for_node("fraud__train_holdout_split", "holdout_set")
    assert train_set["rows"] + len(holdout) == manifest["rows"]
    assert result.output_for_node("fraud__candidate_model")["name"].endswith("-ci")
