"""Monitoring: data drift (Evidently) of the newest data against a model's training reference, performance
decay, and the hysteresis that turns noisy windows into one retraining decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd


def _drifted(method: str, value: float, threshold: float) -> bool:
    """p-value tests drift below their threshold; distances (Wasserstein, Jensen-Shannon, PSI...) above it."""
    return value < threshold if "p_value" in method.lower() else value > threshold


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str], *,
    sample_rows: int, seed: int, html: bool = False, unusual: list[dict] = (), importance: dict[str, float] | None = None,
    drift_share: float = 0.5,
) -> dict:
    """Per-column drift of `current` against `reference` (both sampled to `sample_rows`), from Evidently's
    DataDriftPreset; whether a column drifted is read from each metric's own method and threshold. `unusual` are the
    contract's soft expectations that the current batches broke at ingestion (contract.unusual): such a column counts
    as drifted too, with the finding's sentence, since unusual data is accepted so that monitoring sees it.
    `importance` (the model's gain per feature) weighs the drifted columns: two drifted columns out of 85 are a small
    share of the columns but may be most of what the model relies on (`importance_share`). `drift_share` is the gate's
    definition of dataset drift (monitoring.max_drift_share), so Evidently's page states the same rule.
    With `html`, Evidently's page is returned as "evidently_html" for the caller's report page (monitoring_page)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = numeric + categorical
    # numbers as float64 (a nullable Int64 column, a whole number that may be missing, is not one Evidently can measure)
    sides = [
        side[columns].sample(n=min(sample_rows, len(side)), random_state=seed).astype({c: "float64" for c in numeric})
        for side in (reference, current)
    ]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref_set, cur_set = (Dataset.from_pandas(side, data_definition=definition) for side in sides)
    result = Report([DataDriftPreset(columns=columns, drift_share=drift_share)]).run(cur_set, ref_set)
    per_column = {}
    for metric in result.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith(":ValueDrift") and config.get("column") in columns:
            value, threshold, method = float(metric["value"]), float(config["threshold"]), str(config["method"])
            per_column[config["column"]] = {"method": method, "threshold": threshold, "value": value, "drifted": _drifted(method, value, threshold)}
    for finding in unusual:
        entry = per_column.get(finding["column"])
        if entry is not None:
            entry.setdefault("contract", []).append(finding["sentence"])
            entry["drifted"] = True
    missing = sorted(set(columns) - set(per_column))
    if missing:
        raise ValueError(f"Evidently returned no drift result for column(s) {missing}")
    drifted = sorted(c for c, v in per_column.items() if v["drifted"])
    return {
        "columns": per_column,
        "drifted": drifted,
        "drift_share": len(drifted) / len(per_column),
        "importance_share": _importance_share(drifted, importance),
        "unusual": [finding["sentence"] for finding in unusual],
        "reference_rows": len(sides[0]),
        "current_rows": len(sides[1]),
        "evidently_html": result.get_html_str(as_iframe=False) if html else None,
    }


def _importance_share(drifted: list[str], importance: dict[str, float] | None) -> float | None:
    total = sum((importance or {}).values())
    return sum(importance.get(c, 0.0) for c in drifted) / total if importance and total > 0 else None


@dataclass(frozen=True)
class RetrainState:
    consecutive: int = 0
    last_trigger: float | None = None  # unix time
    last_seen_id: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RetrainDecision:
    trigger: bool
    reason: str
    state: RetrainState


def retrain_decision(windows: list[tuple[int, bool, str]], state: RetrainState, now: float, k: int, cooldown_hours: float) -> RetrainDecision:
    """Hysteresis and cooldown over monitoring windows, oldest first: (record id, failed, why).

    Retrain only after `k` failed windows in a row, and never within `cooldown_hours` of the last trigger;
    a passing window resets the count, so one noisy batch or a flapping metric starts nothing.
    """
    consecutive, last_seen, reasons = state.consecutive, state.last_seen_id, []
    for record_id, failed, why in windows:
        consecutive = consecutive + 1 if failed else 0
        last_seen = max(last_seen, record_id)
        if failed:
            reasons.append(why)
    cooling = state.last_trigger is not None and now - state.last_trigger < cooldown_hours * 3600
    if consecutive >= k and not cooling:
        reason = f"{consecutive} monitoring window(s) in a row found drift or decay (K={k}); latest: {reasons[-1]}"
        return RetrainDecision(True, reason, RetrainState(0, now, last_seen))
    if consecutive >= k:
        wait = cooldown_hours - (now - state.last_trigger) / 3600
        why = f"{consecutive} bad window(s) in a row, but the last drift retraining was less than {cooldown_hours:g} h ago ({wait:.1f} h to go)"
    elif consecutive:
        why = f"{consecutive} of {k} bad window(s) in a row so far; waiting for confirmation"
    else:
        why = "the latest monitoring window found no drift or decay"
    return RetrainDecision(False, why, RetrainState(consecutive, state.last_trigger, last_seen))


def monitoring_page(path: Path, *, model: str, champion_version: str, batches: list[str], verdicts: list[tuple[str, bool, str]],
                    rules: list[str], reference_rows: int, current_rows: int, evidently_html: str) -> Path:
    """The drift report a person reads: what was judged (batches, champion, samples), each gate's rule and verdict, then
    Evidently's page (computed with the gate's drift share)."""
    import html

    from mlcicd.core.report import embedded, write_page

    rows = "".join(f"<tr><td>{'PASS' if ok else 'FAIL'}</td><td>{html.escape(name)}</td><td>{html.escape(rule)}</td>"
                   f"<td>{html.escape(reason)}</td></tr>" for (name, ok, reason), rule in zip(verdicts, rules))
    title = f"{model}: drift of {len(batches)} batch(es) against champion version {champion_version}"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:left}} iframe{{width:100%;height:1600px;border:1px solid #ccc}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Batches judged: {html.escape(', '.join(batches))}. Reference: a sample of {reference_rows:,} rows of champion version
{html.escape(champion_version)}'s training data; current: a sample of {current_rows:,} rows of those batches.</p>
<h2 id="gates">The gates</h2><table><thead><tr><th></th><th>gate</th><th>rule</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>
<h2 id="evidently">Evidently's data drift report</h2>
{embedded("Evidently drift report", evidently_html)}
</body></html>"""
    return write_page(path, page)
