"""Monitoring: data drift (core/drift.py; Evidently's page beside it) of the newest data against a model's training reference, performance
decay, and the hysteresis that turns noisy windows into one retraining decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str], *,
    sample_rows: int, seed: int, unusual: list[dict] = (), importance: dict[str, float] | None = None,
) -> dict:
    """Per-column drift of `current` against `reference` (both sampled to `sample_rows`), from the gate's own statistics
    (core/drift.py: Evidently's default tests, computed on whole arrays). `unusual` are the contract's soft expectations
    that the current batches broke at ingestion (contract.unusual): such a column counts as drifted too, with the
    finding's sentence, since unusual data is accepted so that monitoring sees it. `importance` (the model's gain per
    feature) weighs the drifted columns: two drifted columns out of 85 are a small share of the columns but may be most
    of what the model relies on (`importance_share`). Evidently's page is built apart (`evidently_drift`)."""
    from mlcicd.core import drift

    columns = numeric + categorical
    ref, cur = (drift.sample(side, columns, numeric, sample_rows, seed) for side in (reference, current))
    per_column = drift.columns_drift(ref, cur, numeric, categorical)
    for finding in unusual:
        entry = per_column.get(finding["column"])
        if entry is not None:
            entry.setdefault("contract", []).append(finding["sentence"])
            entry["drifted"] = True
    drifted = sorted(c for c, v in per_column.items() if v["drifted"])
    return {
        "columns": per_column,
        "drifted": drifted,
        "drift_share": len(drifted) / len(per_column),
        "importance_share": _importance_share(drifted, importance),
        "unusual": [finding["sentence"] for finding in unusual],
        "reference_rows": len(ref),
        "current_rows": len(cur),
    }


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str], *,
                    sample_rows: int, seed: int, drift_share: float) -> dict:
    """Evidently's DataDriftPreset on the same samples the gate measures: each column's method, value and threshold as
    Evidently reports them, how many columns Evidently counts as drifted, and its HTML page (stating `drift_share`, the
    gate's monitoring.max_drift_share). Slow (seconds on 100k rows): never on the gate's path."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from mlcicd.core import drift

    columns = numeric + categorical
    sides = [drift.sample(side, columns, numeric, sample_rows, seed) for side in (reference, current)]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref_set, cur_set = (Dataset.from_pandas(side, data_definition=definition) for side in sides)
    result = Report([DataDriftPreset(columns=columns, drift_share=drift_share)]).run(cur_set, ref_set)
    per_column, drifted = {}, None
    for metric in result.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith(":ValueDrift") and config.get("column") in columns:
            per_column[config["column"]] = {"method": str(config["method"]), "threshold": float(config["threshold"]), "value": float(metric["value"])}
        elif config.get("type", "").endswith(":DriftedColumnsCount"):
            drifted = int(metric["value"]["count"])
    return {"columns": per_column, "drifted_count": drifted, "html": result.get_html_str(as_iframe=False)}


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


STYLE = """<style>body{font-family:sans-serif;margin:2em;max-width:1200px} table{border-collapse:collapse} td,th{border:1px solid #ccc;
padding:4px 8px;text-align:left} iframe{width:100%;height:1600px;border:1px solid #ccc}</style>"""


def monitoring_page(path: Path, *, model: str, champion_version: str, batches: list[str], verdicts: list[tuple[str, bool, str]],
                    rules: list[str], reference_rows: int, current_rows: int, columns: dict[str, dict], evidently_page: str) -> Path:
    """The drift report a person reads: what was judged (batches, champion, samples), each gate's rule and verdict, each
    column's test, value and threshold, and a link to Evidently's page on the same samples (built after the gates)."""
    import html

    from mlcicd.core.report import write_page

    rows = "".join(f"<tr><td>{'PASS' if ok else 'FAIL'}</td><td>{html.escape(name)}</td><td>{html.escape(rule)}</td>"
                   f"<td>{html.escape(reason)}</td></tr>" for (name, ok, reason), rule in zip(verdicts, rules))
    ordered = sorted(columns.items(), key=lambda item: (not item[1]["drifted"], item[0]))
    per_column = "".join(
        f"<tr><td>{html.escape(column)}</td><td>{html.escape(e['method'])}</td><td>{e['value']:.4f}</td><td>{e['threshold']:g}</td>"
        f"<td>{e['psi']:.3f}</td><td>{'yes' if e['drifted'] else 'no'}</td><td>{html.escape('; '.join(e.get('contract', [])) or e.get('why', ''))}</td></tr>"
        for column, e in ordered)
    title = f"{model}: drift of {len(batches)} batch(es) against champion version {champion_version}"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{STYLE}</head><body>
<h1>{html.escape(title)}</h1>
<p>Batches judged: {html.escape(', '.join(batches))}. Reference: a sample of {reference_rows:,} rows of champion version
{html.escape(champion_version)}'s training data; current: a sample of {current_rows:,} rows of those batches.</p>
<h2 id="gates">The gates</h2><table><thead><tr><th></th><th>gate</th><th>rule</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>
<h2 id="columns">Each column</h2>
<p>Each column's test is the one Evidently chooses by default (a distance on more than 1,000 reference rows, a test's p-value on
fewer), with its threshold. PSI (ten reference-decile buckets) is shown for reading; it decides nothing.</p>
<table><thead><tr><th>column</th><th>test</th><th>value</th><th>threshold</th><th>PSI</th><th>drifted</th><th>note</th></tr></thead>
<tbody>{per_column}</tbody></table>
<h2 id="evidently">Evidently's data drift report</h2>
<p><a href="{html.escape(evidently_page)}">Evidently's page on the same samples</a>, built after the gates in the same run (step
drift_evidently_page), so it never delays a verdict.</p>
</body></html>"""
    return write_page(path, page)


def evidently_page(path: Path, *, model: str, champion_version: str, batches: list[str], evidently_html: str) -> Path:
    """Evidently's data drift page (computed with the gate's drift share) under a header saying what it measured."""
    import html

    from mlcicd.core.report import embedded, write_page

    title = f"{model}: Evidently's drift report of {len(batches)} batch(es) against champion version {champion_version}"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{STYLE}</head><body>
<h1>{html.escape(title)}</h1>
<p>Batches: {html.escape(', '.join(batches))}. The same samples the data_drift gate measured; the gate's verdict is on the
drift page of the same run.</p>
<div id="evidently">{embedded("Evidently drift report", evidently_html)}</div>
</body></html>"""
    return write_page(path, page)
