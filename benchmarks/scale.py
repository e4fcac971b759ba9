"""Scaling and orchestration overhead (issue 6: benchmarks a and b).

a. overhead: the full pipeline through Dagster (`dagster job execute` training_job, promotion_job and
   monitoring_job, with MLflow, gates and reports) against a bare script doing the same work in one process
   (read, validate, featurize, train, evaluate, drift on a sample; `benchmarks/bare_pipeline.py`).
b. scaling: the bare pipeline's stages at each size, each stage's wall time and the process's peak memory,
   against the in-memory size of the training data.

Run: `.venv/bin/python benchmarks/scale.py [--sizes 100000 1000000 10000000] [--overhead-sizes 100000 1000000]`
(or `make bench`). Writes benchmarks/results/scale.json. Data is simulated in 4 batches per size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BATCHES = 4


def project_copy(tmp: Path) -> tuple[Path, dict]:
    project = tmp / "project"
    project.mkdir()
    shutil.copytree(ROOT / "contracts", project / "contracts")
    config = yaml.safe_load((ROOT / "mlcicd.yaml").read_text())
    config["tiers"]["full"] = {"evaluation_report": False}  # the bare script writes no HTML report either
    (project / "mlcicd.yaml").write_text(yaml.safe_dump(config))
    home = tmp / "home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "MLCICD_CONFIG": str(project / "mlcicd.yaml")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return project, env


def simulate(project: Path, env: dict, rows: int) -> None:
    subprocess.run([str(BIN / "mlcicd"), "simulate", "--batches", str(BATCHES), "--rows", str(rows // BATCHES)], env=env, cwd=project, check=True, capture_output=True)


def pipeline_seconds(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project, env = project_copy(Path(tmp))
        simulate(project, env, rows)
        times = {}
        for job in ("training_job", "promotion_job", "monitoring_job"):
            start = time.perf_counter()
            subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "mlcicd.definitions", "-j", job], env=env, cwd=project, check=True, capture_output=True)
            times[job] = round(time.perf_counter() - start, 2)
        return {"jobs": times, "total": round(sum(times.values()), 2)}


def bare(rows: int, stages: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project, env = project_copy(Path(tmp))
        simulate(project, env, rows)
        command = [sys.executable, str(ROOT / "benchmarks" / "bare_pipeline.py"), str(project / "mlcicd.yaml")]
        start = time.perf_counter()
        out = subprocess.run(command, env=env, cwd=project, check=True, capture_output=True, text=True).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        figures["total_with_startup"] = round(time.perf_counter() - start, 2)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--overhead-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
        "targets": {"training_job_ratio_at_1M": 1.25, "peak_memory_vs_training_data": 3.0},
        "overhead": {}, "scaling": {},
    }
    out = ROOT / "benchmarks" / "results" / "scale.json"
    for rows in args.overhead_sizes:
        piped, alone = pipeline_seconds(rows), bare(rows)
        # training_job does read, validate, dataset, featurize + train, evaluate: the bare script's same stages
        # (with its start-up); the three jobs together also do the drift report, as the whole bare script does
        training_work = alone["total_with_startup"] - alone["stages"]["drift_on_sample"]["seconds"]
        result["overhead"][str(rows)] = {
            "pipeline_seconds": piped, "bare_seconds": alone["total_with_startup"], "bare_stages": alone["stages"],
            "training_job_ratio": round(piped["jobs"]["training_job"] / training_work, 3),
            "all_three_jobs_ratio": round(piped["total"] / alone["total_with_startup"], 3),
        }
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["overhead"][str(rows)]), flush=True)
    for rows in args.sizes:
        result["scaling"][str(rows)] = bare(rows)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["scaling"][str(rows)]), flush=True)


if __name__ == "__main__":
    main()
