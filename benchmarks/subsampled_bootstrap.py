"""Does the subsampled bootstrap (stats.resampling_plan: above gates.bootstrap_max_rows rows, resample a random subsample
and rescale its spread) keep the confidence of the bootstrap of every row? Pairs of equally good models (exchangeable
scores: the true difference is zero), each judged both ways on the same rows; the share of pairs whose one-sided 95% bound
excludes zero should be about 5% either way, overall and in a slice of half the rows. Also the time each way takes.

Run: `.venv/bin/python benchmarks/subsampled_bootstrap.py [--rows 40000] [--max-rows 2000] [--pairs 400]` (about 8 minutes
on 2 cores, nearly all of it the bootstrap of every row). Writes benchmarks/results/subsampled_bootstrap.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from mlcicd.core.evaluate import paired_bootstrap
    from mlcicd_tests.error_rates import wilson
    from mlcicd_tests.test_large_holdouts import exchangeable

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--max-rows", type=int, default=2_000)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--metric", default="roc_auc")
    args = parser.parse_args()
    result = {"rows": args.rows, "pairs": args.pairs, "metric": args.metric, "rounds": 200, "nominal": 0.05,
              "command": "python benchmarks/subsampled_bootstrap.py " + " ".join(sys.argv[1:]), "ways": {}}
    for name, max_rows in (("every_row", None), ("subsampled", args.max_rows)):
        rng, resampled, started = np.random.default_rng(7), [], time.perf_counter()
        counts = dict.fromkeys(("overall_lower", "overall_upper", "slice_lower", "slice_upper"), 0)
        for pair in range(args.pairs):
            y, new, old, half = exchangeable(rng, args.rows)
            out = paired_bootstrap(args.metric, (y, new), (y, old), rounds=200, confidence=0.95, seed=pair, slices={"half": half}, max_rows=max_rows)
            for part, where in (("overall", out), ("slice", out["slices"]["half"])):
                counts[f"{part}_lower"] += where["lower"] > 0  # "better" when it is not
                counts[f"{part}_upper"] += where["upper"] < 0
            resampled.append((out["resampled_rows"], out["slices"]["half"]["resampled_rows"]))
        result["ways"][name] = {
            "max_rows": max_rows, "seconds": round(time.perf_counter() - started, 1),
            "resampled_rows_median": [int(np.median([r[i] for r in resampled])) for i in (0, 1)],
            "bound_excludes_zero": {key: {"share": count / args.pairs, "wilson_95": [round(v, 4) for v in wilson(count, args.pairs)]}
                                    for key, count in counts.items()},
        }
        print(name, json.dumps(result["ways"][name]), flush=True)
    out = ROOT / "benchmarks" / "results" / "subsampled_bootstrap.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
