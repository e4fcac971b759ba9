"""The evaluation report of a candidate: one self-contained HTML file (Evidently's quality preset with the
champion as reference, plus our own plots and tables), a markdown summary for the Dagster UI, and the
model card of a promoted version. Plots are PNGs embedded as data URIs, so nothing needs the network."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mlcicd.core.tasks import task_of

EVIDENTLY_MAX_ROWS = 50_000  # Evidently runs on a sample of the holdout beyond this


def _png(fig, dpi: int) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(width: float = 4.2, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _sides(candidate: tuple, champion: tuple | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = [("candidate", *candidate)]
    if champion is not None:
        out.append(("champion", *champion))
    return out


def _roc(task, sides, candidate, classes):
    from sklearn.metrics import roc_curve

    fig, ax = _figure()
    for name, y, pred in sides:
        fpr, tpr, _ = roc_curve(y, pred)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend()
    return fig


def _precision_recall(task, sides, candidate, classes):
    from sklearn.metrics import precision_recall_curve

    fig, ax = _figure()
    for name, y, pred in sides:
        precision, recall, _ = precision_recall_curve(y, pred)
        ax.plot(recall, precision, label=name)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax.legend()
    return fig


def _calibration(task, sides, candidate, classes):
    fig, ax = _figure()
    for name, y, pred in sides:
        y, pred = task.confidence(y, pred)
        order = np.argsort(pred, kind="stable")
        bins = np.array_split(order, min(10, len(order)))
        ax.plot([pred[b].mean() for b in bins], [y[b].mean() for b in bins], marker="o", label=name)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel=f"predicted {task.confidence_label}", ylabel="observed", title="Calibration")
    ax.legend()
    return fig


def _confusion_matrix(task, sides, candidate, classes):
    y, pred = candidate
    predicted = task.predicted_codes(pred)
    labels = classes or ["0", "1"]
    codes = range(len(labels))
    matrix = pd.crosstab(pd.Categorical(y.astype(int), categories=codes), pd.Categorical(predicted, categories=codes), dropna=False).to_numpy()
    fig, ax = _figure(3.6, 3.2)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels, xlabel="predicted", ylabel="actual",
           title="Confusion matrix (candidate)")
    return fig


def _predicted_vs_actual(task, sides, candidate, classes):
    fig, ax = _figure()
    for name, y, pred in sides:
        ax.scatter(y, pred, s=6, alpha=0.5, label=name)
    low, high = float(np.min(candidate[0])), float(np.max(candidate[0]))
    ax.plot([low, high], [low, high], ls=":", color="grey")
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    ax.legend()
    return fig


def _residuals(task, sides, candidate, classes):
    fig, ax = _figure()
    for name, y, pred in sides:
        ax.hist(pred - y, bins=30, alpha=0.5, label=name)
    ax.set(xlabel="residual (predicted - actual)", ylabel="rows", title="Residuals")
    ax.legend()
    return fig


# Each plot a task can ask for by name (core/tasks.py: Task.plots)
PLOTS = {
    "roc": _roc, "precision_recall": _precision_recall, "calibration": _calibration, "confusion_matrix": _confusion_matrix,
    "predicted_vs_actual": _predicted_vs_actual, "residuals": _residuals,
}


def plots(task: str, candidate: tuple, champion: tuple | None, importance: dict[str, float], classes: list[str] | None, dpi: int = 80) -> dict[str, str]:
    """Named PNG data URIs: the task's plots, then feature importance. `candidate` / `champion` are (labels, predictions)
    as the metrics take them."""
    kind = task_of(task)
    sides = _sides(candidate, champion)
    out = {name: _png(PLOTS[name](kind, sides, candidate, classes), dpi) for name in kind.plots}
    top = sorted(importance.items(), key=lambda item: item[1])[-15:]
    fig, ax = _figure(4.2, 0.25 * len(top) + 1)
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.set(xlabel="total gain", title="Feature importance (candidate)")
    out["feature_importance"] = _png(fig, dpi)
    return out


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and math.isfinite(value) else "-"


def metrics_table(evaluation: dict) -> list[tuple[str, str, str]]:
    candidate = evaluation["candidate"]
    champion = evaluation.get("champion") or {}
    theirs = champion.get("metrics") or {}
    rows = [(name, _fmt(value), _fmt(theirs.get(name))) for name, value in candidate["metrics"].items() if name != "rows"]
    rows.append(("calibration_error", _fmt(candidate["calibration_error"]), _fmt(champion.get("calibration_error"))))
    return rows


def slice_rows(evaluation: dict) -> list[tuple[str, str, str, str, str]]:
    metric = evaluation["primary_metric"]
    theirs = (evaluation.get("champion") or {}).get("slices") or {}
    rows = []
    for column, values in evaluation["candidate"]["slices"].items():
        for value, entry in values.items():
            other = (theirs.get(column, {}).get(value) or {}).get(metric)
            judged = "yes" if entry["judged"] else entry.get("why_not", "no")
            rows.append((f"{column}={value}", str(entry["rows"]), _fmt(entry.get(metric)), _fmt(other), judged))
    return rows


def summary_markdown(evaluation: dict, images: dict[str, str], report_url: str | None) -> str:
    """Key numbers and two small plots for the Dagster UI's metadata panel."""
    champion = evaluation.get("champion")
    lines = [
        f"**{evaluation['model_name']} version {evaluation['candidate']['version']}** ({evaluation['candidate'].get('task', 'binary')}) "
        f"against {'champion version ' + champion['version'] if champion else 'no champion yet'}, on {evaluation['holdout_rows']:,} holdout rows.",
        "",
        "| metric | candidate | champion |",
        "|---|---|---|",
        *[f"| {name} | {mine} | {theirs} |" for name, mine, theirs in metrics_table(evaluation)],
    ]
    comparison = evaluation.get("comparison")
    if comparison:
        lines += ["", f"{evaluation['primary_metric']}: better by {comparison['delta']:+.4f} (95% lower bound {comparison['lower']:+.4f})."]
    shown = [k for k in ("roc", "predicted_vs_actual", "confusion_matrix", "feature_importance") if k in images][:2]
    lines += ["", *[f"![{k}]({images[k]})" for k in shown]]
    if report_url:
        lines += ["", f"[Full report]({report_url})"]
    return "\n".join(lines)


def evidently_html(task: str, candidate: tuple, champion: tuple | None, classes: list[str] | None, seed: int) -> str:
    """Evidently's classification or regression preset on the holdout; the champion's predictions are the
    reference, so every widget shows champion and candidate side by side."""
    from evidently import Dataset, Report

    kind = task_of(task)
    definition, preset = kind.evidently(classes)  # no Evidently tests: the gates are ours

    def frame(labels, predictions) -> pd.DataFrame:
        return kind.evidently_frame(labels, predictions, classes)

    def dataset(side):
        data = frame(*side)
        if len(data) > EVIDENTLY_MAX_ROWS:
            data = data.sample(n=EVIDENTLY_MAX_ROWS, random_state=seed)
        return Dataset.from_pandas(data, data_definition=definition)

    result = Report([preset]).run(dataset(candidate), dataset(champion) if champion is not None else None)
    return result.get_html_str(as_iframe=False)


def _html_table(header: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(path: Path, evaluation: dict, images: dict[str, str], evidently: str) -> Path:
    champion = evaluation.get("champion")
    title = f"{evaluation['model_name']} version {evaluation['candidate']['version']}: evaluation"
    comparison = evaluation.get("comparison")
    verdict = (
        f"<p>{html.escape(evaluation['primary_metric'])}: the candidate is better by {comparison['delta']:+.4f} "
        f"(95% lower bound {comparison['lower']:+.4f}, paired bootstrap on the same rows).</p>" if comparison else ""
    )
    table = slice_rows(evaluation)
    slices = "<p>No slice columns are configured (dataset.slice_columns).</p>"
    if table:
        slices = _html_table(["slice", "rows", "candidate", "champion", "judged"], table)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
.plots img{{margin:0 1em 1em 0;border:1px solid #eee}} iframe{{width:100%;height:1600px;border:1px solid #ccc}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Task: {html.escape(evaluation['candidate'].get('task', 'binary'))}. Holdout: {evaluation['holdout_rows']:,} rows of dataset
{html.escape(evaluation['dataset_hash'][:12])}. Compared with: {html.escape('champion version ' + champion['version'] if champion else 'no champion yet')}.</p>
<h2>Champion and candidate</h2>{_html_table(["metric", "candidate", "champion"], metrics_table(evaluation))}{verdict}
<h2>Plots</h2><div class="plots">{"".join(f'<img alt="{k}" title="{k}" src="{v}">' for k, v in images.items())}</div>
<h2>Slices ({html.escape(evaluation['primary_metric'])})</h2>{slices}
<h2>Evidently quality report (reference = champion)</h2>
<iframe title="Evidently report" srcdoc="{html.escape(evidently, quote=True)}"></iframe>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def model_card(*, model_name: str, version: str, task: str, evaluation: dict, gates: dict, decision: dict, features: dict) -> str:
    """A markdown model card for a promoted version: what it is, what it was trained on, how good it is,
    which gates it passed and why it was promoted."""
    lines = [
        f"# Model card: {model_name} version {version}",
        "",
        f"- **Task:** {task}; LightGBM through mlcicd's shared feature path.",
        f"- **Promoted:** {decision['at']} by {decision['triggered_by']}: {decision['reason']}",
        f"- **Replaced:** {'version ' + decision['from_version'] if decision.get('from_version') else 'nothing (first champion)'}",
        f"- **Training data:** dataset {evaluation['dataset_hash'][:12]}; holdout of {evaluation['holdout_rows']:,} rows (the newest).",
        f"- **Code:** git commit {decision.get('git_commit') or 'unknown'}.",
        f"- **Features ({len(features.get('numeric', [])) + len(features.get('categorical', []))}):** "
        + ", ".join(features.get("numeric", []) + [f"{c} (categorical)" for c in features.get("categorical", [])]),
        "",
        "## Holdout metrics",
        "",
        "| metric | this version | replaced champion |",
        "|---|---|---|",
        *[f"| {name} | {mine} | {theirs} |" for name, mine, theirs in metrics_table(evaluation)],
        "",
        "## Gates",
        "",
        "| gate | result | verdict |",
        "|---|---|---|",
        *[f"| {gate} | {'pass' if result.get('passed') else 'FAIL'} | {str(result.get('reason', '')).replace('|', '/')} |" for gate, result in gates.items()],
        "",
        "## Limits",
        "",
    ]
    unjudged = [row[0] for row in slice_rows(evaluation) if row[4] != "yes"]
    lines.append(f"- Slices not judged (too few rows or undefined metric): {', '.join(unjudged)}." if unjudged else "- Every configured slice was judged.")
    lines.append("- Judged on the newest rows only; performance on data unlike the training window is not measured here (see drift monitoring).")
    return "\n".join(lines) + "\n"
