"""The real-data acceptance report: every dataset of mlcicd_tests/real_data.py through every step, with its verdict and
the numbers behind it. Writes benchmarks/results/real_data.json and prints the README's table.

Run: `.venv/bin/python benchmarks/real_data.py` (about a minute on 2 cores). The same steps are asserted by
mlcicd_tests/test_real_data.py, which `make test` runs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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

    definitions, steps = defs(), []
    started = time.perf_counter()
    for dataset in DATASETS:
        with tempfile.TemporaryDirectory() as tmp, dg.DagsterInstance.ephemeral(tempdir=tmp) as instance:
            root = Path(tmp) / dataset.name
            os.environ["MLCICD_CONFIG"] = str(root / "mlcicd.yaml")
            os.environ["DAGSTER_HOME"] = tmp
            os.environ.pop("MLFLOW_TRACKING_URI", None)

            def run_job(name: str, run_config=None, tags=None):
                job = definitions.resolve_job_def(name)
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
    print("| dataset | step | verdict | as expected | numbers |")
    print("|---|---|---|---|---|")
    for s in steps:
        numbers = ", ".join(f"{k} {v}" for k, v in s.items() if k in ("holdout_rows", "candidate", "champion", "better_by", "lower_bound") and v is not None)
        verdict = s["verdict"] if len(s["verdict"]) < 160 else s["verdict"][:157] + "..."
        print(f"| {s['dataset']} | {s['step']} | {verdict.replace('|', '/')} | {'yes' if s['ok'] else '**no**'} | {numbers} |")
    print(f"\n{sum(s['ok'] for s in steps)} of {len(steps)} steps as expected, in {report['seconds']} s; wrote {out}")


if __name__ == "__main__":
    main()
