"""The real-data acceptance report: every dataset of mlcicd_tests/real_data.py through every step, with its verdict and
the numbers behind it. Writes benchmarks/results/real_data.json and prints the README's table.

Run: `.venv/bin/python benchmarks/real_data.py` (about a minute on 2 cores). The same steps are asserted by
mlcicd_tests/test_real_data.py, which `make test` runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


STEPS = ("init", "first", "next", "worse", "slice", "shuffled", "recovery", "renamed", "drift")


def cell(step: dict) -> str:
    """One step's verdict in a few words, with its key number."""
    if not step:
        return "n/a (no text group column)"
    mark = "" if step["ok"] else " **(not as expected)**"
    name, verdict = step["step"], step["verdict"]
    if name == "init":
        return f"margin {step['max_regression']}, slice rows {step['slice_min_rows']}{mark}"
    if name in ("first", "next", "worse", "slice", "shuffled", "recovery"):
        decision = verdict.split(":")[0]
        numbers = f"{step.get('metric', '')} {step['candidate']}" if step.get("candidate") is not None else ""
        if step.get("better_by") is not None:
            numbers += f" vs {step['champion']}, lower bound {step['lower_bound']:+.3f}"
        if name == "shuffled" and (found := re.search(r"is (-?[\d.]+) on the newest ([\d,]+) labeled holdout rows against (-?[\d.]+)", verdict)):
            numbers = f"the champion: {found[1]} on the newest labels vs {found[3]} at its promotion"
        if name == "slice" and (found := re.search(r"\): (.+?=.+?): (\S+) (-?[\d.]+) now vs (-?[\d.]+)", verdict)):
            numbers = f"{found[1]}: {found[3]} now vs {found[4]} at promotion"
        gate = {"worse": "no_regression", "slice": "no_slice_regression", "shuffled": "label_quality"}.get(name)
        return f"{decision}{' by ' + gate if gate and decision == 'refused' else ''} ({numbers}){mark}"
    if name == "renamed":
        return f"{verdict.split(':')[0]}, 'renamed upstream?'{mark}" if "renamed upstream?" in verdict else verdict.split(":")[0] + mark
    return ("accepted; data_drift failed; drift_sensor retrains" if step["ok"] else verdict[:80]) + mark


def table(steps: list[dict]) -> str:
    by = {(s["dataset"], s["step"]): s for s in steps}
    datasets = list(dict.fromkeys(s["dataset"] for s in steps))
    lines = ["| dataset | " + " | ".join(STEPS) + " |", "|---" * (len(STEPS) + 1) + "|"]
    for dataset in datasets:
        lines.append(f"| {dataset} | " + " | ".join(cell(by.get((dataset, step), {})) for step in STEPS) + " |")
    return "\n".join(lines)


def main() -> None:
    import dagster as dg
    from click.testing import CliRunner

    from mlcicd.cli import main as mlcicd
    from mlcicd.definitions import defs
    from mlcicd_tests.real_data import DATASETS, Scenario

    def cli(*args: str) -> str:
        result = CliRunner().invoke(mlcicd, list(args))
        if result.exit_code != 0:
            raise RuntimeError(result.output)
        return result.output

    steps = []
    started = time.perf_counter()
    for dataset in DATASETS:
        with tempfile.TemporaryDirectory() as tmp, dg.DagsterInstance.ephemeral(tempdir=tmp) as instance:
            root = Path(tmp) / dataset.name
            os.environ["MLCICD_CONFIG"] = str(root / "mlcicd.yaml")
            os.environ["DAGSTER_HOME"] = tmp
            os.environ.pop("MLFLOW_TRACKING_URI", None)

            def run_job(name: str, run_config=None, tags=None):
                job = defs().resolve_job_def(name)  # the dataset's own model (MLCICD_CONFIG), its settings captured
                return job.execute_in_process(instance=instance, run_config=run_config, tags=tags, raise_on_error=False)

            steps += Scenario(dataset, root, run_job, cli, instance).run()
    report = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/real_data.py",
        "seconds": round(time.perf_counter() - started, 1),
        "all_as_expected": all(s["ok"] for s in steps),
        "steps": steps,
    }
    out = ROOT / "benchmarks" / "results" / "real_data.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(table(steps))
    print(f"\n{sum(s['ok'] for s in steps)} of {len(steps)} steps as expected, in {report['seconds']} s; wrote {out}")


if __name__ == "__main__":
    main()
