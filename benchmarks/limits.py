"""The gates' own costs at scale against the physical floor (issue 21): contract validation, the drift gate, evaluation, and
training_job against a bare LightGBM fit of the same rows and rounds, side by side in one run on one simulated data set.

- validation: `validate` (the vectorized check, pandera only when it is not certain) against the pandera path it replaced
  (`contract.schema().validate`, then the soft expectations), on the whole table at once; both must agree. Also
  `validation_shuffled_ids`: `validate` with the unique id columns shuffled (the simulator's ids ascend).
- drift: the data_drift gate's statistics (`monitoring.drift_report`: sampling and core/drift.py) against Evidently's
  DataDriftPreset on the same samples (what the gate used to wait for; now built after the gates).
- evaluation: `evaluate_models` of a candidate against a champion on the whole holdout (every gate's evidence), and
  `evaluation_scoring_only`: the part of it no gate logic can remove (the holdout's features, both models' predictions),
  and `evaluation_scoring_one_thread`, the same with LightGBM's predict on one thread (what the second core buys).
- training (sizes in --train-sizes): `dagster job execute training_job` against `lightgbm.train` alone on the featurized
  rows, same parameters, rounds and early stopping; both in fresh processes, so each includes its own start-up.

Run: `.venv/bin/python benchmarks/limits.py [--sizes 1000000 10000000] [--train-sizes 1000000] [--runs 3]` (or `make bench`).
Writes benchmarks/results/limits.json: each figure's median, every run, and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import BIN, ROOT, SET_UP, environment, fresh, simulated  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "limits.json"
TARGETS = {"validation_seconds_at_10M": 3.0, "drift_gate_seconds": 1.0, "evaluation_seconds_at_10M": 3.0,
           "training_job_over_fit_at_1M": 1.6, "training_job_over_fit_at_10M": 1.15}


def timed(function, runs: int) -> dict:
    seconds, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        seconds.append(round(time.perf_counter() - started, 3))
    return {"median": statistics.median(seconds), "all": seconds, "result": result}


def in_process(project: Path, runs: int) -> dict:
    """Validation, drift and evaluation on the project's landed rows, in this process."""
    import pandas as pd

    from mlcicd.core.dataset import split_by_time
    from mlcicd.core.evaluate import evaluate_models
    from mlcicd.core.ingest import pending_files, read_batch
    from mlcicd.core.monitoring import drift_report, evidently_drift
    from mlcicd.core.train import train_model
    from mlcicd.project import Project

    proj = Project.load(project / "mlcicd.yaml")
    spec, model, contract = proj.config.dataset, proj.config.model, proj.contract
    table = pd.concat([read_batch(path) for path in pending_files(proj.landing_dir)], ignore_index=True)
    figures = {"rows": len(table), **validation(table, contract, runs)}
    train, holdout = split_by_time(table, spec.time_column, spec.holdout_fraction)
    del table
    small = train.tail(200_000)  # two models to compare; their training is not what is measured here
    candidate = train_model(small, spec, model, 40)
    champion = train_model(small.head(150_000), spec, model.model_copy(update={"seed": model.seed + 1}), 40)
    numeric, categorical = candidate.features.numeric, candidate.features.categorical
    settings = proj.config.monitoring
    reference = train.sample(n=min(settings.reference_rows, len(train)), random_state=model.seed)
    figures["drift_gate"] = timed(lambda: drift_report(reference, holdout, numeric, categorical, sample_rows=settings.sample_rows,
                                                       seed=model.seed)["drifted"], runs)
    figures["drift_evidently_page"] = timed(lambda: evidently_drift(reference, holdout, numeric, categorical, sample_rows=settings.sample_rows,
                                                                    seed=model.seed, drift_share=settings.max_drift_share)["drifted_count"], 1)
    assert len(figures["drift_gate"]["result"]) == figures["drift_evidently_page"]["result"], "the gate and Evidently disagree"
    figures["drift_sample_rows"] = settings.sample_rows
    figures["holdout_rows"] = len(holdout)
    figures["evaluation_scoring_only"] = timed(lambda: scoring_only(holdout, candidate, champion), runs)
    # the same on one thread: how much LightGBM's predict gains from the second core (what more cores would buy)
    figures["evaluation_scoring_one_thread"] = timed(lambda: scoring_only(holdout, candidate, champion, threads=1), runs)
    figures["evaluation"] = timed(lambda: evaluate_models(
        (candidate.booster, candidate.features), (champion.booster, champion.features), holdout, target=spec.target,
        slice_columns=spec.slice_columns, gates=proj.config.gates, seed=model.seed)["comparison"]["delta"], runs)
    return figures


def scoring_only(holdout, candidate, champion, threads: int | None = None) -> int:
    """What evaluation cannot do without: the holdout's features (built once when the two models share them, as
    evaluate_models does) and LightGBM's predictions of both models (on `threads` threads; default: as the pipeline)."""
    from mlcicd.core.features import feature_matrix, same_inputs
    from mlcicd.core.train import score_matrix

    matrix = feature_matrix(holdout, candidate.features)
    for model in (candidate, champion):
        shared = matrix if same_inputs(candidate.features, model.features) else feature_matrix(holdout, model.features)
        if threads is None:
            score_matrix(model.booster, shared, model.features.feature_names)
        else:
            model.booster.predict(shared, num_threads=threads)
    return len(matrix)


def validation(table, contract, runs: int) -> dict:
    import numpy as np

    from mlcicd.core.contract import unusual, validate

    def fast(rows=table):
        result = validate(rows, contract)
        return {"passed": result.passed, "unusual": len(result.unusual)}

    def pandera():
        validated = contract.schema().validate(table, lazy=True)
        return {"passed": True, "unusual": len(unusual(validated, contract))}

    figures = {"validation": timed(fast, runs), "validation_with_pandera": timed(pandera, runs)}
    assert figures["validation"]["result"] == figures["validation_with_pandera"]["result"], "the two checks disagree"
    # the simulator's ids ascend, which the uniqueness test sees in one pass; shuffled, they must be sorted
    rng = np.random.default_rng(0)
    shuffled = table.assign(**{name: rng.permutation(table[name].to_numpy()) for name, rule in contract.columns.items() if rule.unique})
    figures["validation_shuffled_ids"] = timed(lambda: fast(shuffled), runs)
    assert figures["validation_shuffled_ids"]["result"] == figures["validation"]["result"], "shuffling the ids changed the verdict"
    return figures


BARE_FIT = """
import json, sys, time
started = time.perf_counter()
import lightgbm as lgb, pandas as pd
from mlcicd.core.dataset import split_by_time
from mlcicd.core.features import encode_target, featurize, fit_features
from mlcicd.core.ingest import pending_files, read_batch
from mlcicd.core.train import lightgbm_params
from mlcicd.project import Project
proj = Project.load(sys.argv[1]); spec, model = proj.config.dataset, proj.config.model
table = pd.concat([read_batch(p) for p in pending_files(proj.landing_dir)], ignore_index=True)
train, _ = split_by_time(table, spec.time_column, spec.holdout_fraction)
cut = int(len(train) * (1 - model.validation_fraction))
fit_rows, valid_rows = train.iloc[:cut], train.iloc[cut:]
features = fit_features(fit_rows, spec)
fit_x, valid_x = featurize(fit_rows, features), featurize(valid_rows, features)
fit_y, valid_y = encode_target(fit_rows[spec.target], features), encode_target(valid_rows[spec.target], features)
ready = time.perf_counter()
fit_set = lgb.Dataset(fit_x, fit_y, categorical_feature=features.categorical, free_raw_data=True)
booster = lgb.train(lightgbm_params(model, features.task, features.classes), fit_set, num_boost_round=model.num_boost_round,
                    valid_sets=[fit_set.create_valid(valid_x, valid_y)],
                    callbacks=[lgb.early_stopping(model.early_stopping_rounds, first_metric_only=True, verbose=False)])
done = time.perf_counter()
print(json.dumps({"fit_seconds": round(done - ready, 3), "process_seconds": round(done - started, 3), "rounds": booster.current_iteration()}))
"""


def training(template: Path, tmp: Path, runs: int) -> dict:
    """training_job through the CLI and the bare fit, alternating, each on a fresh copy of the landed rows. The job's copy
    has its Dagster instance storage and MLflow store already, as every run of a project after its very first has; what
    making them costs a new project once is measured apart (`new_project_stores_seconds`)."""
    ready, env = fresh(template, tmp, "ready")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", SET_UP], env=env, cwd=ready, check=True, capture_output=True)
    stores = round(time.perf_counter() - started, 3)
    jobs, fits, parts = [], [], []
    for run in range(runs):
        project = tmp / f"job-{run}"
        shutil.copytree(ready, project)
        started, wall_started = time.perf_counter(), time.time()
        subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "mlcicd.definitions", "-j", "training_job"], env=environment(project),
                       cwd=project, check=True, capture_output=True)
        jobs.append(round(time.perf_counter() - started, 3))
        parts.append(run_parts(project, wall_started, time.time()))
        shutil.rmtree(project)
        project = tmp / f"fit-{run}"
        shutil.copytree(template, project)
        out = subprocess.run([sys.executable, "-c", BARE_FIT, str(project / "mlcicd.yaml")], env=environment(project), cwd=project,
                             check=True, capture_output=True, text=True).stdout
        fits.append(json.loads(out.strip().splitlines()[-1]))
        shutil.rmtree(project)
    fit = [f["fit_seconds"] for f in fits]
    median = statistics.median
    return {
        "training_job_seconds": {"median": median(jobs), "all": jobs},
        "lightgbm_fit_seconds": {"median": median(fit), "all": fit},
        "bare_process_seconds": {"median": median(f["process_seconds"] for f in fits), "all": [f["process_seconds"] for f in fits]},
        "rounds": fits[0]["rounds"],
        "training_job_over_fit": round(median(jobs) / median(fit), 2),
        "fixed_cost_seconds": round(median(jobs) - median(fit), 2),
        "where_the_time_goes": {name: median(p[name] for p in parts) for name in parts[0]},  # medians; the fit is inside candidate_model
        "new_project_stores_seconds": stores,  # once per project: a process that imports dagster and mlflow and makes both stores
    }


RUN_EVENTS = """
import json, dagster as dg
with dg.DagsterInstance.get() as instance:
    run = instance.get_runs(limit=1)[0]
    print(json.dumps([(e.timestamp, e.dagster_event.event_type_value, e.step_key) for e in instance.all_logs(run.run_id) if e.dagster_event]))
"""


def run_parts(project: Path, started: float, ended: float) -> dict:
    """Where a training_job's wall time went, from its run's events (read in the project, as the job wrote them): start-up
    (interpreter, imports, definitions, the instance) before the run starts, each step from its start to its end, the time
    between steps, and what follows the run's end."""
    events = json.loads(subprocess.run([sys.executable, "-c", RUN_EVENTS], env=environment(project), cwd=project, check=True,
                                       capture_output=True, text=True).stdout)
    kinds = {"STEP_START": "start", "STEP_SUCCESS": "end", "STEP_FAILURE": "end"}
    steps: dict[str, dict] = {}
    for timestamp, kind, step in events:
        if kind in kinds:
            steps.setdefault(step.split("__", 1)[-1], {})[kinds[kind]] = timestamp
    first, last = events[0][0], events[-1][0]
    inside = sum(times["end"] - times["start"] for times in steps.values())
    parts = {"start_up_before_the_run": first - started, **{name: t["end"] - t["start"] for name, t in steps.items()},
             "between_steps": (last - first) - inside, "after_the_run": ended - last}
    return {name: round(seconds, 2) for name, seconds in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--train-sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result.update({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "targets": TARGETS,
                   "command": "python benchmarks/limits.py " + " ".join(sys.argv[1:])})
    result.setdefault("sizes", {})
    for rows in sorted(set(args.sizes) | set(args.train_sizes)):
        with tempfile.TemporaryDirectory() as tmp:
            template = simulated(Path(tmp) / "template", rows)
            entry = result["sizes"].setdefault(str(rows), {})
            if rows in args.sizes:
                entry.update(in_process(template, args.runs), in_process_command=result["command"])
            if rows in args.train_sizes:
                entry["training"] = {**training(template, Path(tmp), args.runs), "command": result["command"]}  # runs may differ by size
        OUT.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(json.dumps({rows: {k: (v["median"] if isinstance(v, dict) and "median" in v else v) for k, v in entry.items()}}, default=str), flush=True)


if __name__ == "__main__":
    main()
