"""The pull-request report: one markdown file per model (data/reports/ci/<model>.md), for a reviewer on the pull request.

The branch's candidate against production's champion on the same holdout sample: the metrics side by side with their
intervals, every gate's verdict, the slices that moved most, the largest feature-importance changes, drift of the sample
against the champion's training reference, and what changed on each axis (data, code, settings).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PSI_SHIFT = 0.25  # a large shift (the usual reading of the population stability index)


def _num(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and math.isfinite(value) else "-"


def _interval(value, sd) -> str:
    if not isinstance(sd, int | float) or not math.isfinite(sd) or not isinstance(value, int | float):
        return "-"
    return f"{value - 1.96 * sd:.4f} to {value + 1.96 * sd:.4f}"


def psi_by_feature(reference: pd.DataFrame, sample: pd.DataFrame, numeric: list[str], categorical: list[str], bins: int = 10) -> list[tuple[str, float]]:
    """Population stability index of each feature of `sample` against `reference`: deciles of the reference for numbers,
    the categories' shares for categories; largest first."""
    out = []
    eps = 1e-4
    for column in numeric:
        ref = pd.to_numeric(reference[column], errors="coerce").dropna().to_numpy()
        cur = pd.to_numeric(sample[column], errors="coerce").dropna().to_numpy()
        if len(ref) == 0 or len(cur) == 0:
            continue
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            continue
        expected = np.histogram(np.clip(ref, edges[0], edges[-1]), edges)[0] / len(ref)
        actual = np.histogram(np.clip(cur, edges[0], edges[-1]), edges)[0] / len(cur)
        out.append((column, float(np.sum((actual - expected) * np.log((actual + eps) / (expected + eps))))))
    for column in categorical:
        expected = reference[column].astype("string").value_counts(normalize=True)
        actual = sample[column].astype("string").value_counts(normalize=True)
        keys = expected.index.union(actual.index)
        e, a = expected.reindex(keys, fill_value=0).to_numpy(), actual.reindex(keys, fill_value=0).to_numpy()
        out.append((column, float(np.sum((a - e) * np.log((a + eps) / (e + eps))))))
    return sorted(out, key=lambda item: -item[1])


def importance_changes(candidate: dict[str, float], champion: dict[str, float], limit: int = 8) -> list[tuple[str, float, float]]:
    """Each feature's share of the total gain, candidate and champion, largest changes first."""
    def shares(values: dict[str, float]) -> dict[str, float]:
        total = sum(values.values()) or 1.0
        return {k: v / total for k, v in values.items()}

    mine, theirs = shares(candidate), shares(champion)
    rows = [(name, mine.get(name, 0.0), theirs.get(name, 0.0)) for name in set(mine) | set(theirs)]
    return sorted(rows, key=lambda row: -abs(row[1] - row[2]))[:limit]


def pr_markdown(
    evaluation: dict, verdicts: list[tuple[str, bool, str]], *, importance: list[tuple[str, float, float]],
    drift: list[tuple[str, float]], changes: dict[str, list[str]], sample_rows: int | None,
) -> str:
    """The report's markdown."""
    metric, candidate, champion = evaluation["primary_metric"], evaluation["candidate"], evaluation.get("champion") or {}
    failed = [name for name, ok, _ in verdicts if not ok]
    reference = (evaluation.get("reference") or {}).get("why") or "no reference"
    head = "FAIL" if failed else "PASS"
    lines = [
        f"## mlcicd · {evaluation['model_name']} · {head}",
        "",
        (f"**{len(failed)} blocking gate(s) failed: {', '.join(failed)}.** This change would not be promoted." if failed
         else "**Every gate passed** against the reference below."),
        "",
        f"Candidate version {candidate['version']} of this branch, compared with {reference}, on the same holdout of "
        f"{evaluation['holdout_rows']:,} rows (dataset {evaluation['dataset_hash'][:12]}"
        + (f", a fixed sample of {sample_rows:,} rows of the newest accepted data" if sample_rows else "") + ").",
        "",
        "| metric | candidate | 95% interval | reference | 95% interval |",
        "|---|---|---|---|---|",
    ]
    theirs = champion.get("metrics") or {}
    for name, value in candidate["metrics"].items():
        if name == "rows":
            continue
        sd_mine = candidate.get("metric_sd") if name == metric else None
        sd_theirs = champion.get("metric_sd") if name == metric else None
        lines.append(f"| {name} | {_num(value)} | {_interval(value, sd_mine)} | {_num(theirs.get(name))} | {_interval(theirs.get(name), sd_theirs)} |")
    comparison = evaluation.get("comparison")
    if comparison:
        lines += ["", f"{metric}: the candidate is better by {comparison['delta']:+.4f} (paired bootstrap on the same rows; one-sided "
                      f"lower bound {comparison['lower']:+.4f})."]
    lines += ["", "### Gates", "", "| | gate | verdict |", "|---|---|---|"]
    lines += [f"| {'✅' if ok else '❌'} | {name} | {reason.replace('|', '/')} |" for name, ok, reason in verdicts]
    moved = []
    theirs_slices = champion.get("slices") or {}
    for column, values in candidate["slices"].items():
        for value, entry in values.items():
            other = (theirs_slices.get(column, {}).get(value) or {}).get(metric)
            mine = entry.get(metric)
            if isinstance(mine, int | float) and isinstance(other, int | float) and math.isfinite(mine) and math.isfinite(other):
                moved.append((f"{column}={value}", entry["rows"], mine, other))
    if moved:
        lines += ["", f"### Slices that moved most ({metric})", "", "| slice | rows | candidate | reference | difference |", "|---|---|---|---|---|"]
        for name, rows, mine, other in sorted(moved, key=lambda row: -abs(row[2] - row[3]))[:10]:
            lines.append(f"| {name} | {rows:,} | {mine:.4f} | {other:.4f} | {mine - other:+.4f} |")
    if importance:
        lines += ["", "### Largest feature-importance changes (share of total gain)", "", "| feature | candidate | reference | change |",
                  "|---|---|---|---|"]
        lines += [f"| {name} | {mine:.1%} | {other:.1%} | {mine - other:+.1%} |" for name, mine, other in importance]
    if drift:
        lines += ["", f"### Drift of this sample against the reference's training data (PSI; above {PSI_SHIFT} is a large shift)", "",
                  "| feature | PSI |", "|---|---|"]
        lines += [f"| {name} | {value:.3f}{' ⚠️' if value > PSI_SHIFT else ''} |" for name, value in drift[:8]]
    lines += ["", "### What changed", ""]
    for axis in ("data", "code", "settings"):
        found = changes.get(axis)
        lines.append(f"- **{axis}:** {'; '.join(found) if found else 'nothing changed'}")
    return "\n".join(lines) + "\n"
