"""Scale-out (issue 21, point 1): training_job with model.engine: dask, the rows kept on the workers, against the local
engine on the same rows, rounds and cores.

Both engines run `dagster job execute -j training_job` on a fresh copy of the same landed, already ingested rows (the
ingestion step reads each landed file in its own process either way, so it is measured apart). The local engine trains in
the job's process with LightGBM on 2 threads; the Dask engine against an external scheduler with 2 one-thread workers on
loopback, started here as separate processes (not children of the job; warmed up by importing what training needs, as a
long-lived cluster would be). Both train exactly `--rounds` rounds: lightgbm.dask
has no early stopping, so the local engine's early stopping is set beyond the rounds.

Measured: the job's wall time, the driver's peak RSS (the job's process: its maximum resident set, from getrusage of a
wrapper whose only child it is; the Dask workers are not counted, they are not its children), and each step's time
from the run's log. Targets: driver peak RSS under 1 GB at 10M rows; the Dask engine within 1.3x the local engine's
wall time.

Run: `.venv/bin/python benchmarks/scale_out.py [--sizes 1000000 10000000] [--runs 1]` (or `make bench`).
Writes benchmarks/results/scale_out.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import BIN, ROOT, environment, simulated  # noqa: E402

sys.path.insert(0, str(ROOT))
from mlcicd_tests.support import dask_cluster  # noqa: E402  (the tests' scheduler and workers, started the same way)

OUT = ROOT / "benchmarks" / "results" / "scale_out.json"
TARGETS = {"driver_peak_rss_mb_at_10M": 1024, "dask_over_local_wall": 1.3}

MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
with open(sys.argv[1], "w") as log:
    code = subprocess.run(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).returncode
print(json.dumps({"code": code, "seconds": round(time.perf_counter() - started, 3),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}))
"""
STEP = re.compile(r'Finished execution of step "fraud__(\w+)" in ([\d.]+)(ms|s|m)')


def configured(project: Path, engine: str, rounds: int, scheduler: str | None) -> None:
    path = project / "mlcicd.yaml"
    config = yaml.safe_load(path.read_text())
    model = config.setdefault("model", {})
    model.update(num_boost_round=rounds, early_stopping_rounds=rounds + 1, num_threads=2, engine=engine)
    if scheduler:
        model["dask"] = {**model.get("dask", {}), "scheduler": scheduler}
    config.setdefault("gates", {})["max_data_age_hours"] = 24 * 365  # a slow run must not be refused as stale
    path.write_text(yaml.safe_dump(config))


def run_job(project: Path, job: str) -> dict:
    log = project / f"{job}.log"
    command = [sys.executable, "-c", MEASURE, str(log), str(BIN / "dagster"), "job", "execute", "-m", "mlcicd.definitions", "-j", job]
    out = subprocess.run(command, env=environment(project), cwd=project, check=True, capture_output=True, text=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    if figures["code"] != 0:
        raise RuntimeError(f"{job} failed in {project}:\n{log.read_text()[-4000:]}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}
    figures["steps"] = {name: round(float(value) * scale[unit], 2) for name, value, unit in STEP.findall(log.read_text())}
    return figures


def warm_up(address: str) -> None:
    """Import what training needs in each worker once, as a long-lived cluster already has: the first run on new workers
    would otherwise also time their imports (about 2 s)."""
    from distributed import Client

    def imports() -> None:
        import lightgbm  # noqa: F401
        import pyarrow.parquet  # noqa: F401

        import mlcicd.core.distributed  # noqa: F401
        import mlcicd.core.gates  # noqa: F401

    with Client(address) as client:
        client.run(imports)


def measure(rows: int, runs: int, rounds: int) -> dict:
    figures: dict = {"rows": rows, "rounds": rounds, "local": [], "dask": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        template = simulated(tmp / "template", rows)
        configured(template, "local", rounds, None)
        figures["ingestion"] = run_job(template, "fraud__ingestion_job")
        with dask_cluster(tmp) as address:
            warm_up(address)
            for run in range(runs):
                for engine in ("local", "dask"):
                    project = tmp / f"{engine}-{run}"
                    shutil.copytree(template, project)
                    configured(project, engine, rounds, address if engine == "dask" else None)
                    figures[engine].append(run_job(project, "training_job"))
                    shutil.rmtree(project)
                    print(json.dumps({rows: {engine: figures[engine][-1]}}), flush=True)
    for engine in ("local", "dask"):
        figures[f"{engine}_seconds"] = round(statistics.median(r["seconds"] for r in figures[engine]), 2)
        figures[f"{engine}_driver_peak_rss_mb"] = round(statistics.median(r["peak_rss_mb"] for r in figures[engine]), 1)
    figures["dask_over_local_wall"] = round(figures["dask_seconds"] / figures["local_seconds"], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result.update({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "targets": TARGETS,
                   "command": "python benchmarks/scale_out.py " + " ".join(sys.argv[1:])})
    result.setdefault("sizes", {})
    for rows in args.sizes:
        result["sizes"][str(rows)] = measure(rows, args.runs, args.rounds)
        OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
