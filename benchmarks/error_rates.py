"""The gates' measured error rates where the truth is known (issue 20 point 5): at least 200 candidate/champion pairs per
case from the simulator (equal, slightly worse, slightly better, one slice worse, more negative flips, a canary with a
higher error rate), each gate's share of wrong decisions against its nominal level. Writes benchmarks/results/error_rates.json
and prints the README's table. The study itself: mlcicd_tests/error_rates.py; a small fixed-seed version runs in the
tests (test_error_rates.py).

Run: `.venv/bin/python benchmarks/error_rates.py [--pairs 200]` (about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOMINAL = {  # what the gate is built to guarantee for that wrong decision
    ("no_regression", "false promotion"): "at most 5% (one-sided 95% lower bound must clear -tolerance)",
    ("no_regression", "false refusal"): "none promised: it refuses when undecided and says how many rows would decide",
    ("no_slice_regression", "false refusal"): "at most 5% family-wise (Holm), for slices within tolerance",
    ("no_slice_regression", "false promotion"): "none promised: refuses only a fall that is material and beyond noise",
    ("operating_point", "false refusal"): "at most 5% (refuses only a fall beyond noise)",
    ("negative_flips", "false refusal"): "at most 5% family-wise (refuses only a rate above the limit beyond noise)",
    ("negative_flips", "false promotion"): "none promised: refuses only a rate above the limit beyond noise",
}


def table(result: dict) -> str:
    lines = ["| case | gate | truth | wrong decision | measured (95% interval) | nominal |", "|---|---|---|---|---|---|"]
    for row in result["cases"]:
        low, high = row["wrong_rate_95"]
        truth = {"equal": f"roc_auc {row['true_auc_change']:+.3f}", "slightly_worse": f"roc_auc {row['true_auc_change']:+.3f}",
                 "slightly_better": f"roc_auc {row['true_auc_change']:+.3f}",
                 "one_slice_worse": f"slice {row['true_slice_change']:+.3f} (overall {row['true_auc_change']:+.3f})",
                 "more_negative_flips": f"flip rate {row['true_flip_rate']:.2%} vs limit {row['flip_limit']:.2%}"}[row["case"]]
        if row["case"] == "equal" and row["gate"] == "negative_flips":
            truth = f"flip rate {row['true_flip_rate']:.2%} vs limit {row['flip_limit']:.2%}"
        lines.append(f"| {row['case']} | {row['gate']} | {truth} | {row['wrong_decision']} | {row['wrong_rate']:.1%} ({low:.1%} to {high:.1%}) "
                     f"| {NOMINAL.get((row['gate'], row['wrong_decision']), '')} |")
    canary = result["canary"]
    lines.append(f"| canary, 2% vs 2% errors | canary_comparison | alike | false rollback | {canary['alike_rolled_back']:.1%} | at most "
                 f"{canary['false_alarm_rate']:.0%}, however often looked at (every {canary['look_every']} requests here) |")
    lines.append(f"| canary, 6% vs 2% errors | canary_comparison | worse | not rolled back within {canary['requests']:,} requests | "
                 f"{1 - canary['worse_rolled_back']:.1%} (median stop after {canary['worse_median_requests_to_stop']:.0f} requests) | power, not promised |")
    return "\n".join(lines)


def main() -> None:
    from mlcicd_tests.error_rates import study

    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    result = study(args.pairs, args.seed)
    result.update({"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(time.perf_counter() - started, 1),
                   "command": f".venv/bin/python benchmarks/error_rates.py --pairs {args.pairs} --seed {args.seed}"})
    out = ROOT / "benchmarks" / "results" / "error_rates.json"
    out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"\n{args.pairs} pairs per case in {result['seconds']} s; wrote {out}")


if __name__ == "__main__":
    main()
