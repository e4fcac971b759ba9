"""Scaling and orchestration overhead (issue 6: benchmarks a and b).

a. overhead: the full pipeline through Dagster (`dagster job execute` training_job, promotion_job and
   monitoring_job, with MLflow, gates and reports) against a bare script doing the same work in one process
   (read, validate, featurize, train, evaluate, drift on a sample; `benchmarks/bare_pipeline.py`), run with the
   garbage-collector settings of mlcicd's own processes (the target's figure) and as a plain script.
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
import statistics
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
    """A throwaway project laid out as a user's: mlcicd.yaml, the contract and the project's dagster.yaml, with
    DAGSTER_HOME at the project (as `make` sets it) and a new MLflow store under data/."""
    project = tmp / "project"
    project.mkdir()
    shutil.copytree(ROOT / "contracts", project / "contracts")
    shutil.copy(ROOT / "dagster.yaml", project / "dagster.yaml")
    from shipped import shipped_settings

    config = shipped_settings()
    config["tiers"]["full"] = {"evaluation_report": False}  # the bare script writes no HTML report either
    (project / "mlcicd.yaml").write_text(yaml.safe_dump(config))
    return project, environment(project)


def environment(project: Path) -> dict:
    env = {**os.environ, "DAGSTER_HOME": str(project), "MLCICD_CONFIG": str(project / "mlcicd.yaml")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def simulated(tmp: Path, rows: int) -> Path:
    """A project with `rows` simulated rows landed (in BATCHES files), to be copied for each timed run."""
    tmp.mkdir()
    project, env = project_copy(tmp)
    command = [str(BIN / "mlcicd"), "simulate", "--batches", str(BATCHES), "--rows", str(rows // BATCHES)]
    subprocess.run(command, env=env, cwd=project, check=True, capture_output=True)
    return project


SET_UP = """
import dagster as dg
from mlcicd.mlflow_registry import ensure_experiment
from mlcicd.project import Project
with dg.DagsterInstance.get() as instance:
    instance.get_runs(limit=1)
ensure_experiment(Project.load())
"""


def set_up(template: Path, tmp: Path) -> Path:
    """A copy of the template whose Dagster instance storage and MLflow store (with the experiment) exist, as any
    earlier use of the project leaves them: the state every run but a project's very first one starts from."""
    project, env = fresh(template, tmp, "ready")
    subprocess.run([sys.executable, "-c", SET_UP], env=env, cwd=project, check=True, capture_output=True)
    return project


def fresh(template: Path, tmp: Path, name: str) -> tuple[Path, dict]:
    project = tmp / name
    shutil.copytree(template, project)
    return project, environment(project)


def pipeline_seconds(template: Path, tmp: Path, name: str) -> dict:
    """training_job, promotion_job and monitoring_job through the CLI, on a fresh copy of the landed data."""
    project, env = fresh(template, tmp, name)
    times = {}
    for job in ("training_job", "promotion_job", "monitoring_job"):
        start = time.perf_counter()
        subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "mlcicd.definitions", "-j", job], env=env, cwd=project, check=True, capture_output=True)
        times[job] = round(time.perf_counter() - start, 2)
    shutil.rmtree(project)
    return {"jobs": times, "total": round(sum(times.values()), 2)}


def bare(template: Path, tmp: Path, name: str) -> dict:
    """The bare script on a fresh copy of the landed data; its figures plus its wall time with start-up and exit
    (less the time it spends measuring the data's size, which is not the pipeline's work)."""
    project, env = fresh(template, tmp, name)
    command = [sys.executable, str(ROOT / "benchmarks" / "bare_pipeline.py"), str(project / "mlcicd.yaml")]
    start = time.perf_counter()
    out = subprocess.run(command, env=env, cwd=project, check=True, capture_output=True, text=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    figures["total_with_startup"] = round(time.perf_counter() - start - figures["measuring_seconds"], 2)
    shutil.rmtree(project)
    return figures


def overhead(rows: int, runs: int) -> dict:
    """Median of `runs` of each side, alternating, on copies of one simulated data set whose stores exist; and
    one pipeline run on a brand-new project, which also creates the Dagster and MLflow databases."""
    with tempfile.TemporaryDirectory() as tmp:
        new = simulated(Path(tmp) / "template", rows)
        ready = set_up(new, Path(tmp))
        piped, alone = [], []
        for run in range(runs):
            piped.append(pipeline_seconds(ready, Path(tmp), f"pipeline-{run}"))
            alone.append(bare(ready, Path(tmp), f"bare-{run}"))
        first = pipeline_seconds(new, Path(tmp), "first-run")
    # training_job does read, validate, dataset, featurize + train, evaluate: the bare script's same stages
    # (with its start-up and exit); the three jobs together also do the drift report, as the whole bare script does.
    # The baseline is the plain script: what a user who writes the pipeline by hand would compare against.
    median = statistics.median
    training = [p["jobs"]["training_job"] for p in piped]
    totals = [p["total"] for p in piped]

    def baseline(runs_of_bare: list[dict]) -> dict:
        work = [round(a["total_with_startup"] - a["stages"]["drift_on_sample"]["seconds"], 2) for a in runs_of_bare]
        whole = [a["total_with_startup"] for a in runs_of_bare]
        return {
            "training_work_seconds": {"median": median(work), "all": work},
            "training_job_ratio": round(median(training) / median(work), 3),
            # each pipeline run over the bare run of the same round: the machine's speed drifts less within a round
            "training_job_paired_ratios": sorted(round(p / b, 3) for p, b in zip(training, work)),
            "whole_script_seconds": {"median": median(whole), "all": whole},
            "all_three_jobs_ratio": round(median(totals) / median(whole), 3),
            "first_run_of_a_new_project_training_job_ratio": round(first["jobs"]["training_job"] / median(work), 3),
            "stages": [a["stages"] for a in runs_of_bare],
        }

    plain = baseline(alone)
    return {
        "runs": runs,
        "training_job_seconds": {"median": median(training), "all": training},
        "all_three_jobs_seconds": {"median": median(totals), "all": totals, "per_job": piped},
        "first_run_of_a_new_project": first,
        "training_job_ratio": plain["training_job_ratio"],  # the target's figure
        "plain_bare_script": plain,
    }


def scaling(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        template = simulated(Path(tmp) / "template", rows)
        return bare(template, Path(tmp), "bare")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--overhead-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side per overhead size (medians are reported)")
    args = parser.parse_args()
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
        "targets": {"training_job_ratio_at_1M": 1.25, "peak_memory_vs_training_data": 3.0},
        "overhead": {}, "scaling": {},
    }
    out = ROOT / "benchmarks" / "results" / "scale.json"
    if out.exists():  # sizes not measured this time keep their last figures
        last = json.loads(out.read_text())
        result["overhead"] = {k: v for k, v in last.get("overhead", {}).items() if int(k) not in args.overhead_sizes}
        result["scaling"] = {k: v for k, v in last.get("scaling", {}).items() if int(k) not in args.sizes}
    for rows in args.overhead_sizes:
        result["overhead"][str(rows)] = overhead(rows, args.runs)
        out.write_text(json.dumps(result, indent=2) + "\n")
        figures = result["overhead"][str(rows)]
        print(json.dumps({
            "rows": rows, "training_job_seconds": figures["training_job_seconds"], "training_job_ratio": figures["training_job_ratio"],
            **{name: {k: v for k, v in figures[name].items() if "ratio" in k} for name in ("bare_with_mlcicd_collector_settings", "plain_bare_script")},
        }), flush=True)
    for rows in args.sizes:
        result["scaling"][str(rows)] = scaling(rows)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["scaling"][str(rows)]), flush=True)


if __name__ == "__main__":
    main()
