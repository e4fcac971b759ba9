"""The pipeline's work without Dagster or MLflow, in one process, through the same core functions: read the
landed batches, validate them against the contract, build and split the dataset, featurize and train,
evaluate on the holdout, and measure drift on a sample. Prints one JSON line: each stage's seconds and the
process's peak memory (RSS) after it, and the in-memory size of the training data. Measuring that size is not
the pipeline's work (it walks every string: 0.4 s at 1M rows), so its time is reported apart (`measuring_seconds`)
and left out of the stages; benchmarks/scale.py takes it off the script's wall time too.

Used by benchmarks/scale.py (the baseline of the overhead ratio, and the scaling figures).
Usage: python benchmarks/bare_pipeline.py path/to/mlcicd.yaml
"""

from __future__ import annotations

import json
import resource
import sys
import time


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def main(config_path: str) -> None:
    import pandas as pd

    from mlcicd.core.contract import validate
    from mlcicd.core.dataset import split_by_time
    from mlcicd.core.evaluate import evaluate_models
    from mlcicd.core.ingest import pending_files, read_batch
    from mlcicd.core.monitoring import drift_report
    from mlcicd.core.train import train_model
    from mlcicd.project import Project

    project = Project.load(config_path)
    spec, model = project.config.dataset, project.config.model
    stages, started = {}, time.perf_counter()
    baseline = peak_mb()

    def stage(name: str, since: float) -> float:
        now = time.perf_counter()
        stages[name] = {"seconds": round(now - since, 2), "peak_rss_mb": peak_mb()}
        return now

    t = time.perf_counter()
    frames = [read_batch(path) for path in pending_files(project.landing_dir)]
    t = stage("read", t)
    frames = [validate(frame, project.contract).validated for frame in frames]
    assert all(f is not None for f in frames), "the simulated batches meet the contract"
    t = stage("validate", t)
    data = pd.concat(frames, ignore_index=True).sort_values(spec.time_column, kind="stable", ignore_index=True)
    del frames
    train, holdout = split_by_time(data, spec.time_column, spec.holdout_fraction)
    t = stage("dataset", t)
    data_mb = round(data.memory_usage(deep=True).sum() / 2**20, 1)
    measuring = time.perf_counter() - t
    t = time.perf_counter()
    trained = train_model(train, spec, model, model.num_boost_round)
    t = stage("featurize_and_train", t)
    gates = project.config.gates
    evaluate_models((trained.booster, trained.features), None, holdout, target=spec.target, slice_columns=spec.slice_columns,
                    gates=gates, seed=model.seed)
    t = stage("evaluate", t)
    settings = project.config.monitoring
    reference = train.sample(n=min(settings.reference_rows, len(train)), random_state=model.seed)
    drift_report(reference, holdout, trained.features.numeric, trained.features.categorical, sample_rows=settings.sample_rows, seed=model.seed)
    stage("drift_on_sample", t)
    print(json.dumps({
        "rows": len(data), "training_data_mb": data_mb, "baseline_rss_mb": baseline, "stages": stages,
        "total_seconds": round(time.perf_counter() - started - measuring, 2), "measuring_seconds": round(measuring, 2),
        "peak_rss_mb": peak_mb(),
        "peak_over_data": round((peak_mb() - baseline) / data_mb, 2) if data_mb else None,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
