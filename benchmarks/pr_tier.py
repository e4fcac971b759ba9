"""The pull-request tier from the shell: `mlcicd ci` for one model, with a warm virtualenv (issue target: under 30 s).

Run: `.venv/bin/python benchmarks/pr_tier.py [--runs 3]`. Writes benchmarks/results/pr_tier.json.
A throwaway single-model project (the shipped fraud model, its simulated 4 x 25,000 rows) gets a production champion
with `mlcicd train` and `mlcicd promote`; then `mlcicd ci` runs `--runs` times, each timed as a whole process: start-up,
`dagster job execute pr_job` (ingest nothing new, train on the window like production, score the candidate and
production's champion on the same holdout, every gate, the report), and the summary.
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
from datetime import date
from pathlib import Path

from shipped import ROOT, write_config

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(ROOT / "contracts", project / "contracts")
        shutil.copy(ROOT / "dagster.yaml", project / "dagster.yaml")
        config = write_config(project)
        env = {**os.environ, "DAGSTER_HOME": str(project), "MLCICD_CONFIG": str(config)}
        env.pop("MLFLOW_TRACKING_URI", None)

        def mlcicd(*command: str) -> float:
            start = time.perf_counter()
            done = subprocess.run([str(BIN / "mlcicd"), *command], env=env, cwd=project, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"mlcicd {' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            return time.perf_counter() - start

        setup = {step: round(mlcicd(step), 2) for step in ("simulate", "train", "promote")}
        runs = [round(mlcicd("ci"), 2) for _ in range(args.runs)]
        report = (project / "data" / "reports" / "ci" / "fraud.md").read_text()
    result = {
        "date": str(date.today()),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "model": "fraud (shipped settings: 100,000 rows in the window, up to 400 rounds, trained like production's champion)",
        "mlcicd_ci_seconds": {"runs": runs, "median": statistics.median(runs), "min": min(runs), "max": max(runs),
                              "command": "mlcicd ci (one model, warm virtualenv, production champion in place)", "target": 30.0},
        "setup_seconds": setup,
        "report_first_line": report.splitlines()[0],
    }
    out = ROOT / "benchmarks" / "results" / "pr_tier.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
