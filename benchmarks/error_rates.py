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

NOMINAL = {  # what the gate is built to guarantee
    "no_regression": "false promotion at most 5% (the one-sided 95% lower bound must clear -tolerance); a refusal when "
                     "undecided says how many rows would decide",
    "no_slice_regression": "false refusal at most 5% family-wise (Holm); refuses only a fall that is material and beyond noise",
    "operating_point": "false refusal at most 5% (refuses only a fall beyond noise)",
    "negative_flips": "false refusal at most 5% family-wise (refuses only a rate above the limit beyond noise)",
}


def rate(row: dict, kind: str, among: str) -> str:
    if not row[among]:
        return "n/a"
    low, high = row[f"{kind}_95"]
    return f"{row[kind]} of {row[among]}: {row[kind + '_rate']:.1%} ({low:.1%} to {high:.1%})"


def upgraded(row: dict) -> dict:
    """A row written before each pair carried its own truth (one wrong decision per case) in today's shape."""
    if "good" in row:
        return row
    from mlcicd_tests.error_rates import wilson

    wrong, refusal = round(row["wrong_rate"] * row["pairs"]), row["wrong_decision"] == "false refusal"
    good, bad = (row["pairs"], 0) if refusal else (0, row["pairs"])
    row = {**row, "good": good, "bad": bad, "false_refusals": wrong if refusal else 0, "false_promotions": 0 if refusal else wrong}
    for kind, among in (("false_refusals", "good"), ("false_promotions", "bad")):
        row[f"{kind}_rate"] = row[kind] / row[among] if row[among] else None
        row[f"{kind}_95"] = list(wilson(row[kind], row[among])) if row[among] else None
    return row


def table(result: dict) -> str:
    lines = ["| case | gate | truth | false refusals (of good pairs) | false promotions (of bad pairs) | nominal |", "|---|---|---|---|---|---|"]
    for row in result["cases"]:
        truth = f"roc_auc {row['true_auc_change']:+.3f}"
        if row["case"] == "one_slice_worse":
            truth = f"region=east roc_auc {row['true_slice_change']:+.3f} (overall {row['true_auc_change']:+.3f})"
        if row["gate"] == "negative_flips":
            truth = f"flip rate {row['true_flip_rate']:.2%} at population thresholds, limit {row['flip_limit']:.2%}; each pair judged by its own"
        lines.append(f"| {row['case']} | {row['gate']} | {truth} | {rate(row, 'false_refusals', 'good')} | {rate(row, 'false_promotions', 'bad')} "
                     f"| {NOMINAL.get(row['gate'], '')} |")
    canary = result["canary"]
    lines.append(f"| canary, 2% vs 2% server errors | canary_comparison | alike | {canary['alike_rolled_back']:.1%} rolled back | n/a | at most "
                 f"{canary['false_alarm_rate']:.0%}, however often looked at (here after every {canary['look_every']} requests) |")
    lines.append(f"| canary, 6% vs 2% server errors | canary_comparison | worse | n/a | {1 - canary['worse_rolled_back']:.1%} not rolled back within "
                 f"{canary['requests']:,} requests (median stop: {canary['worse_median_requests_to_stop']:.0f}) | power, not promised |")
    return "\n".join(lines)


def main() -> None:
    from mlcicd_tests.error_rates import study

    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="*", help="only these cases; their rows replace those in the existing JSON")
    args = parser.parse_args()
    from mlcicd_tests.error_rates import CASES

    started = time.perf_counter()
    out = ROOT / "benchmarks" / "results" / "error_rates.json"
    result = study(args.pairs, args.seed, cases=[c for c in CASES if not args.cases or c.name in args.cases])
    if args.cases and out.exists():
        earlier = json.loads(out.read_text())
        result["cases"] = [upgraded(row) for row in earlier["cases"] if row["case"] not in args.cases] + result["cases"]
    result.update({"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(time.perf_counter() - started, 1),
                   "command": f".venv/bin/python benchmarks/error_rates.py --pairs {args.pairs} --seed {args.seed}"})
    order = [c.name for c in CASES]
    result["cases"].sort(key=lambda row: order.index(row["case"]))
    out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"\n{args.pairs} pairs per case in {result['seconds']} s; wrote {out}")


if __name__ == "__main__":
    main()
