"""The CI tier: code-location load time, ci_job wall time from the command line, and the whole test suite.

Run: `make bench` (or `.venv/bin/python benchmarks/skeleton.py [--runs N] [--suite-runs N]`). Writes
benchmarks/results/skeleton.json.
Each ci_job run starts from nothing, as CI does on a fresh clone: a throwaway copy of the project
(empty data/, so ci_job simulates; its dagster.yaml, so a new SQLite instance) and a new MLflow SQLite store.
The suite is `make test`'s command (pytest with the project's settings: 2 workers), timed as a whole; its
summary (passed, skipped, failed) is kept beside the time, so a run that skipped a test says so.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(cmd: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def load_time() -> float:
    code = "import time; t = time.perf_counter(); import mlcicd.definitions as d; d.defs(); print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def ci_job_time() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"  # as a fresh clone: its files, empty data/, DAGSTER_HOME at the project (as make sets it)
        project.mkdir()
        from shipped import write_config

        write_config(project)
        shutil.copy(ROOT / "dagster.yaml", project)
        shutil.copytree(ROOT / "contracts", project / "contracts")
        env = {**os.environ, "DAGSTER_HOME": str(project), "MLCICD_CONFIG": str(project / "mlcicd.yaml")}
        env.pop("MLFLOW_TRACKING_URI", None)
        return timed([str(BIN / "dagster"), "job", "execute", "-m", "mlcicd.definitions", "-j", "ci_job"], env=env, cwd=project)


def suite() -> dict:
    """One run of the test suite as `make test` runs it; its wall time and pytest's own summary counts."""
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "pytest"), "-q"], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary)}
    return {"wall_s": round(wall, 1), "exit_code": done.returncode, "summary": summary, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--suite-runs", type=int, default=1, help="runs of the whole test suite (0: leave it out)")
    args = parser.parse_args()
    load = [load_time() for _ in range(args.runs)]
    ci = [ci_job_time() for _ in range(args.runs)]
    suites = [suite() for _ in range(args.suite_runs)]
    result = {
        "what": "the CI tier: code location load, ci_job from the command line (fresh stores each run), the whole test suite",
        "command": "make bench",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": args.runs,
        "code_location_load_s": {"median": statistics.median(load), "all": load, "target": 2.0},
        "ci_job_wall_s": {"median": statistics.median(ci), "all": ci, "target": 20.0},
    }
    if suites:
        result["test_suite_wall_s"] = {"median": statistics.median(s["wall_s"] for s in suites), "runs": suites, "target": 180.0}
    out = ROOT / "benchmarks" / "results" / "skeleton.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v["median"] for k, v in result.items() if isinstance(v, dict) and "median" in v}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
