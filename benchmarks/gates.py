"""What the whole gate set adds to a 100k-row training run (target: under 3 s).

Run: `.venv/bin/python benchmarks/gates.py [--rows 100000] [--runs 5]`. Writes benchmarks/results/gates.json.

1. In process, on the pure core: the evidence the gates need (data gates; candidate slices, calibration,
   latency, size; champion scoring with slices; the paired bootstrap) against what an evaluation without
   gates would do anyway (score candidate and champion on the holdout, basic metrics).
2. In Dagster: a real training_job on the same rows, and the wall time of its check steps from the event log.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def core_figures(rows: int, runs: int) -> dict:
    import pandas as pd

    from mlcicd.core import gates
    from mlcicd.core.dataset import split_by_time
    from mlcicd.core.evaluate import evaluate_models
    from mlcicd.core.features import encode_target
    from mlcicd.core.metrics import task_metrics
    from mlcicd.core.simulate import simulate_batch
    from mlcicd.core.train import predict, train_model

    from mlcicd.config import parse_config
    from shipped import shipped_settings

    config = parse_config(shipped_settings(), ROOT / "mlcicd" / "defs" / "models" / "fraud" / "defs.yaml")
    spec, g = config.dataset, config.gates
    frame = pd.concat([simulate_batch(i, rows // 4) for i in range(4)], ignore_index=True)
    train, holdout = split_by_time(frame, spec.time_column, spec.holdout_fraction)
    start = time.perf_counter()
    candidate = train_model(train, spec, config.model, config.model.num_boost_round)
    train_seconds = time.perf_counter() - start
    champion = train_model(train.iloc[: len(train) // 2], spec, config.model, config.model.num_boost_round)
    y = holdout[spec.target]

    def without_gates():
        for model in (candidate, champion):
            task_metrics("binary", encode_target(y, model.features), predict(model.booster, model.features, holdout))

    def with_gates():
        gates.freshness_gate(datetime.now(timezone.utc), datetime.now(timezone.utc), g.max_data_age_hours)
        gates.min_rows_gate(len(frame), g.min_rows)
        gates.label_balance_gate(spec.task, frame[spec.target], positive_rate=g.positive_rate, min_class_share=g.min_class_share)
        duplicated = frame[spec.id_column][frame[spec.id_column].duplicated()]
        gates.unique_ids_gate(int(duplicated.nunique()), spec.id_column)
        shared = pd.Index(train[spec.id_column]).intersection(pd.Index(holdout[spec.id_column]))
        gates.leakage_gate(len(shared), str(train[spec.time_column].max()), str(holdout[spec.time_column].min()))
        evaluate_models((candidate.booster, candidate.features), (champion.booster, champion.features), holdout,
                        target=spec.target, slice_columns=spec.slice_columns, gates=g, seed=config.model.seed)

    base, full = median_time(without_gates, runs), median_time(with_gates, runs)
    return {"rows": rows, "train_seconds": train_seconds, "evaluation_without_gates_s": base, "evaluation_with_gates_s": full,
            "gate_compute_overhead_s": full - base}


def dagster_figures(rows: int) -> dict:
    import dagster as dg

    from mlcicd.core.simulate import write_batches

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(ROOT / "contracts", project / "contracts")
        from shipped import write_config

        write_config(project)
        os.environ["MLCICD_CONFIG"] = str(project / "mlcicd.yaml")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        write_batches(project / "data" / "landing", batches=4, rows_per_batch=rows // 4)
        from mlcicd.definitions import defs

        definitions = defs()
        (Path(tmp) / "home").mkdir()
        with dg.instance_for_test(temp_dir=str(Path(tmp) / "home")) as instance:
            job = definitions.resolve_job_def("training_job")
            assert job.execute_in_process(instance=instance).success
            assert definitions.resolve_job_def("promotion_job").execute_in_process(instance=instance).success
            start = time.perf_counter()
            result = job.execute_in_process(instance=instance)  # now with a champion to compare against
            wall = time.perf_counter() - start
            steps = {}
            for event in instance.all_logs(result.run_id):
                dagster_event = event.dagster_event
                if dagster_event and dagster_event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                    steps[dagster_event.step_key] = dagster_event.event_specific_data.duration_ms / 1000
            check_steps = {k: v for k, v in steps.items() if k.startswith(("candidate_evaluation_", "raw_batch_")) or k == "model_gates"}
            return {"training_job_wall_s": wall, "check_steps_s": sum(check_steps.values()), "steps_s": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    core = core_figures(args.rows, args.runs)
    dagster = dagster_figures(args.rows)
    result = {
        "what": "cost of the whole gate set on a training run",
        "command": f".venv/bin/python benchmarks/gates.py --rows {args.rows} --runs {args.runs}",
        "core": core,
        "dagster": dagster,
        "gate_overhead_s": core["gate_compute_overhead_s"] + dagster["check_steps_s"],
        "target_s": 3.0,
    }
    out = ROOT / "benchmarks" / "results" / "gates.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    shown = {k: result[k] for k in ("gate_overhead_s", "target_s")}
    shown |= {"core": core, "check_steps_s": dagster["check_steps_s"], "training_job_wall_s": dagster["training_job_wall_s"]}
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
