"""The evaluation report of a candidate: one self-contained HTML file (Evidently's quality preset with the
champion as reference, plus our own plots and tables), a markdown summary for the Dagster UI, and the
model card of a promoted version. Plots are PNGs embedded as data URIs, so nothing needs the network."""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
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


def _confusion_matrix(task, sides, candidate, classes, threshold: float = 0.5):
    y, pred = candidate
    predicted = task.predicted_codes(pred, threshold)
    labels = classes or ["0", "1"]
    codes = range(len(labels))
    matrix = pd.crosstab(pd.Categorical(y.astype(int), categories=codes), pd.Categorical(predicted, categories=codes), dropna=False).to_numpy()
    fig, ax = _figure(3.6, 3.2)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    at = f" at threshold {threshold:g}" if task.thresholded else ""
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels, xlabel="predicted", ylabel="actual",
           title=f"Confusion matrix{at} (candidate)")
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


def plots(
    task: str, candidate: tuple, champion: tuple | None, importance: dict[str, float], classes: list[str] | None, dpi: int = 80,
    threshold: float = 0.5,
) -> dict[str, str]:
    """Named PNG data URIs: the task's plots, then feature importance. `candidate` / `champion` are (labels, predictions)
    as the metrics take them; a binary model's decisions are at `threshold` (its operating point)."""
    kind = task_of(task)
    sides = _sides(candidate, champion)
    out = {}
    for name in kind.plots:
        extra = {"threshold": threshold} if name == "confusion_matrix" else {}
        out[name] = _png(PLOTS[name](kind, sides, candidate, classes, **extra), dpi)
    if kind.thresholded:
        out["threshold"] = _png(_threshold_plot(*candidate, threshold), dpi)
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


def evidently_html(
    task: str, candidate: tuple, champion: tuple | None, classes: list[str] | None, seed: int, target: str = "target",
) -> tuple[str, int]:
    """Evidently's classification or regression preset on the holdout (a random sample of EVIDENTLY_MAX_ROWS beyond
    that), and the rows it used; the champion's predictions are the reference, so every widget shows champion and
    candidate side by side. Columns are named after the dataset's target."""
    from evidently import Dataset, Report

    kind = task_of(task)
    definition, preset = kind.evidently(classes, target)  # no Evidently tests: the gates are ours

    def dataset(side):
        data = kind.evidently_frame(*side, classes, target)
        if len(data) > EVIDENTLY_MAX_ROWS:
            data = data.sample(n=EVIDENTLY_MAX_ROWS, random_state=seed)
        return Dataset.from_pandas(data, data_definition=definition)

    result = Report([preset]).run(dataset(candidate), dataset(champion) if champion is not None else None)
    return result.get_html_str(as_iframe=False), min(len(candidate[0]), EVIDENTLY_MAX_ROWS)


def _html_table(header: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def threshold_table(labels: np.ndarray, scores: np.ndarray, operating: float, thresholds=THRESHOLDS) -> list[dict]:
    """Precision, recall and F1 of a binary model at each threshold (and at the operating point), with the share of
    rows it flags and its confusion counts: what a decision at that threshold would do on the holdout."""
    y = np.asarray(labels) > 0.5
    rows = []
    for cut in sorted({*thresholds, operating}):
        flagged = np.asarray(scores) >= cut
        tp, fp, fn = int((flagged & y).sum()), int((flagged & ~y).sum()), int((~flagged & y).sum())
        tn = len(y) - tp - fp - fn
        precision = tp / (tp + fp) if tp + fp else math.nan
        recall = tp / (tp + fn) if tp + fn else math.nan
        f1 = 2 * precision * recall / (precision + recall) if precision == precision and recall == recall and precision + recall else math.nan
        rows.append({"threshold": cut, "precision": precision, "recall": recall, "f1": f1, "flagged_share": float(flagged.mean()),
                     "tp": tp, "fp": fp, "fn": fn, "tn": tn, "operating": cut == operating})
    return rows


def _threshold_plot(labels, scores, operating: float):
    grid = np.linspace(0.01, 0.99, 99)
    rows = threshold_table(labels, scores, operating, thresholds=grid)
    fig, ax = _figure(4.6, 3.2)
    for key in ("precision", "recall", "f1"):
        ax.plot([r["threshold"] for r in rows], [r[key] for r in rows], label=key)
    ax.axvline(operating, ls="--", color="black", lw=1, label=f"in use: {operating:g}")
    ax.set(xlabel="threshold", ylabel="value", title="Precision, recall and F1 against the threshold", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    return fig


def bootstrap_plot(bootstrap: dict, metric: str, comparison: dict | None, tolerance: float, dpi: int = 80) -> str | None:
    """The resampled differences (candidate minus champion, positive = better), the lower bound and the tolerance line."""
    draws = bootstrap.get("draws") or []
    if len(draws) < 10:
        return None
    fig, ax = _figure(4.6, 2.8)
    ax.hist(draws, bins=30, color="#7aa6d6")
    if bootstrap.get("of") == "difference" and comparison:
        ax.axvline(0, color="grey", lw=1, label="no difference")
        ax.axvline(-tolerance, color="red", ls="--", label=f"tolerance: -{tolerance:g}")
        ax.axvline(comparison["lower"], color="black", label=f"lower bound {comparison['lower']:+.4f}")
        ax.set(xlabel=f"{metric}: candidate minus champion", title="Paired bootstrap of the difference")
    else:
        ax.set(xlabel=f"{metric} of the candidate", title="Bootstrap of the candidate's metric")
    ax.set(ylabel="resamples")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _png(fig, dpi)


def slice_plot(evaluation: dict, dpi: int = 80) -> str | None:
    """Each judged slice's primary metric, candidate and champion, with the candidate's bootstrap standard deviation."""
    metric = evaluation["primary_metric"]
    theirs = (evaluation.get("champion") or {}).get("slices") or {}
    entries = [(f"{c}={v}", e, (theirs.get(c, {}).get(v) or {}).get(metric))
               for c, values in evaluation["candidate"]["slices"].items() for v, e in values.items() if e.get("judged")]
    if not entries:
        return None
    fig, ax = _figure(4.8, 0.3 * len(entries) + 1.2)
    positions = np.arange(len(entries))
    ax.barh(positions + 0.2, [e[metric] for _, e, _ in entries], height=0.4, label="candidate",
            xerr=[1.96 * (e.get("sd") or 0) for _, e, _ in entries])
    if any(other is not None for *_, other in entries):
        ax.barh(positions - 0.2, [other if other is not None else 0 for *_, other in entries], height=0.4, label="champion")
    values = [e[metric] for _, e, _ in entries] + [other for *_, other in entries if other is not None]
    spread = max(1.96 * max((e.get("sd") or 0) for _, e, _ in entries), 0.01)
    ax.set_xlim(min(values) - 1.5 * spread, max(values) + 1.5 * spread)  # the differences, not the distance from zero
    ax.set(yticks=positions, yticklabels=[name for name, _, _ in entries], xlabel=metric, title="Slices (lines: 95% interval of the candidate)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig, dpi)


@dataclass(frozen=True)
class ReportContext:
    """What the report says beyond the evaluation record: each gate's verdict, how promotion works, the bootstrap's
    tolerance, the operating point's table, the target's name and how many rows Evidently's section used."""

    verdicts: list[tuple[str, bool, str]]
    promotion_mode: str
    tolerance: float
    target: str
    evidently_rows: int
    threshold_rows: list[dict] | None = None


def promotion_answer(verdicts: list[tuple[str, bool, str]], mode: str) -> tuple[bool, str]:
    """Will this candidate be promoted, in one sentence."""
    failed = [name for name, passed, _ in verdicts if not passed]
    if failed:
        return False, f"No: {len(failed)} gate(s) failed ({', '.join(failed)}); promotion_job refuses it."
    when = ("promotion.mode is auto: automation promotes it" if mode == "auto"
            else "promotion.mode is manual: it becomes the champion when someone runs promotion_job (`mlcicd promote`)")
    return True, (f"Yes, every gate passed; {when}. At that moment the data's freshness, the candidate's identity and its files' "
                  "SHA-256 are checked again.")


def _bootstrap_text(evaluation: dict, tolerance: float) -> str:
    boot, metric, comparison = evaluation.get("bootstrap") or {}, evaluation["primary_metric"], evaluation.get("comparison")
    rounds, confidence = boot.get("rounds", "?"), boot.get("confidence", 0.95)
    rows, resampled = evaluation["holdout_rows"], boot.get("resampled_rows", evaluation["holdout_rows"])
    common = f"The {rows:,} holdout rows were resampled {rounds} times (each row weighted by a Poisson(1) draw)"
    if resampled < rows:
        common = (f"The holdout has {rows:,} rows, more than gates.bootstrap_max_rows, so a random {resampled:,} of them were resampled "
                  f"{rounds} times (each row weighted by a Poisson(1) draw) and the spread was rescaled to all {rows:,} rows "
                  f"(times the square root of {resampled:,}/{rows:,}: the m-out-of-n bootstrap)")
    if comparison:
        common += (", and both models were scored on the very same resample each time, so the noise of the holdout cancels out "
                   "of their difference.")
    else:
        common += "."
    if not comparison:
        sd = evaluation["candidate"].get("metric_sd")
        spread = f" Its {metric} varies with a standard deviation of {sd:.4f} across resamples." if sd == sd and sd is not None else ""
        return f"{common} There is no champion yet, so only the candidate's own precision is measured.{spread}"
    return (f"{common} The candidate's {metric} minus the champion's is {comparison['delta']:+.4f}; the one-sided "
            f"{confidence:.0%} lower bound of that difference is {comparison['lower']:+.4f}. The gate no_regression refuses "
            f"the candidate when the lower bound is below -{tolerance:g} (gates.max_regression): worse by more than the "
            "tolerance, with that confidence.")


def _threshold_section(evaluation: dict, rows: list[dict] | None) -> str:
    if not rows:
        return ""
    operating = evaluation.get("threshold") or 0.5
    table = [(f"{r['threshold']:g}" + (" (in use)" if r["operating"] else ""), _fmt(r["precision"]), _fmt(r["recall"]), _fmt(r["f1"]),
              f"{r['flagged_share']:.2%}", f"{r['tp']} / {r['fp']} / {r['fn']} / {r['tn']}") for r in rows]
    used = next(r for r in rows if r["operating"])
    return (f"<h2 id='threshold'>Threshold: the decision the score becomes</h2><p>A row is flagged when its score is at least the "
            f"threshold. The operating point in use is <b>{operating:g}</b>, {html.escape(threshold_origin(evaluation))}: on the holdout "
            f"the candidate's precision there is {_fmt(used['precision'])} and its recall {_fmt(used['recall'])}. With rare positives a "
            "threshold of 0.5 can catch few of them: read the table before choosing a rule.</p>"
            + _html_table(["threshold", "precision", "recall", "F1", "rows flagged", "TP / FP / FN / TN"], table))


def canary_page(path: Path, model: str, verdict, paths: dict[str, list[dict]], dpi: int = 80) -> Path:
    """The canary as it was watched: for each measure, its anytime-valid interval against the number of requests, the limit,
    and where the interval first cleared it (decided)."""
    images = []
    for name, points in paths.items():
        if not points:
            continue
        fig, ax = _figure(5.2, 3.0)
        x = [p["requests"] for p in points]
        finite = [(p["low"], p["high"]) for p in points if math.isfinite(p["low"]) and math.isfinite(p["high"])]
        ax.plot(x, [p["estimate"] for p in points], label="estimate")
        ax.fill_between(x, [p["low"] if math.isfinite(p["low"]) else np.nan for p in points],
                        [p["high"] if math.isfinite(p["high"]) else np.nan for p in points], alpha=0.25, label="anytime-valid interval")
        limit = verdict.numbers.get(f"{name}_limit")
        decided = next((p["requests"] for p in points if p["state"] != "undecided"), None)
        if limit is not None:
            ax.axhline(limit, color="r", linestyle="--", label="limit")
        if decided:
            ax.axvline(decided, color="k", linestyle=":", label=f"decided at {decided}")
        ax.set(xlabel="requests", title=name)
        if finite:
            bounds = [v for pair in finite for v in pair] + ([limit] if limit is not None else [])
            ax.set_ylim(min(bounds), max(bounds))
        ax.legend(fontsize=7)
        images.append(f'<img alt="{html.escape(name)}" src="{_png(fig, dpi)}">')
    title = f"{model}: canary {verdict.numbers.get('canary_version', '')} against the champion"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body style='font-family:sans-serif'>"
            f"<h1>{html.escape(title)}</h1><p><b>{'PASS' if verdict.passed else 'FAIL'}</b> {html.escape(verdict.reason)}</p>"
            "<p>Each band holds the canary-minus-champion difference at every moment at once (the false-alarm rate holds however often "
            "the page is looked at), so the canary can be stopped as soon as a band clears its limit.</p>" + "".join(images) + "</body></html>")
    return write_page(path, page)


def threshold_origin(evaluation: dict) -> str:
    """How the candidate's threshold was chosen, in words (model.operating_point)."""
    chosen = ((evaluation.get("candidate") or {}).get("operating_point") or {}).get("chosen")
    if not chosen:
        return "the default (a model saved before operating points)"
    return (f"chosen by the rule {chosen['rule']} on the validation split ({chosen['rows']:,} rows, {chosen.get('positives', '?')} positives): "
            f"{chosen['why']}")


def compatibility_rows(evaluation: dict) -> tuple[list[tuple], list[tuple]]:
    """The candidate's decisions against the champion's, each at its own threshold: (measure, candidate, champion, better
    by ± sd) rows, and the negative flips overall and per slice (where, rows, flipped, share, lower bound)."""
    operating, flips = evaluation.get("operating_point") or {}, evaluation.get("negative_flips") or {}
    decisions = [(name, _fmt(operating[name]["candidate"]), _fmt(operating[name]["champion"]),
                  f"{operating[name]['delta']:+.4f} ± {operating[name]['sd']:.4f}" if math.isfinite(operating[name]["sd"]) else "n/a")
                 for name in ("precision", "recall", "f1", "cost") if name in operating]
    if operating:
        decisions.insert(0, ("threshold", f"{operating['candidate_threshold']:.4g}", f"{operating['champion_threshold']:.4g}", ""))
    flipped = [(where, f"{entry['rows']:,}", f"{entry['flips']:,}", f"{entry['rate']:.2%}" if math.isfinite(entry["rate"]) else "n/a",
                f"{entry['lower']:.2%}" if math.isfinite(entry["lower"]) else "n/a")
               for where, entry in ({"overall": flips, **flips.get("slices", {})} if flips else {}).items()]
    return decisions, flipped


def _compatibility_section(evaluation: dict) -> str:
    decisions, flipped = compatibility_rows(evaluation)
    if not flipped:
        return ""
    out = "<h2 id='compatibility'>Decisions against the champion</h2>"
    if decisions:
        out += ("<p>Each model at its own threshold, on the same holdout rows (paired bootstrap; cost: the share of the champion's "
                "cost saved).</p>" + _html_table(["at its operating point", "candidate", "champion", "better by"], decisions))
    return out + ("<p>Negative flips: rows the champion got right and the candidate gets wrong (regression: rows whose error grows "
                  "by more than gates.regression_flip_tolerance standard deviations of the target).</p>"
                  + _html_table(["where", "rows", "flipped", "share", "95% lower bound"], flipped))


AUTO_HEIGHT = ("<script>for(const f of document.querySelectorAll('iframe.fit')){const fit=()=>{try{f.style.height="
               "(f.contentWindow.document.documentElement.scrollHeight+30)+'px'}catch(e){}};f.addEventListener('load',()=>{fit();"
               "let n=0;const t=setInterval(()=>{fit();if(++n>40)clearInterval(t)},250)})}</script>")


def embedded(title: str, page: str) -> str:
    """Another tool's HTML page (Evidently's) inside ours, in a frame that grows to fit its content."""
    return f'<iframe class="fit" title="{html.escape(title)}" srcdoc="{html.escape(page, quote=True)}"></iframe>\n{AUTO_HEIGHT}'


def write_page(path: Path, page: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def write_report(path: Path, evaluation: dict, images: dict[str, str], evidently: str, context: ReportContext) -> Path:
    """The evaluation report: the verdicts and "will this be promoted" first, then the numbers behind them."""
    champion = evaluation.get("champion")
    title = f"{evaluation['model_name']} version {evaluation['candidate']['version']}: evaluation"
    promoted, answer = promotion_answer(context.verdicts, context.promotion_mode)
    gates_table = "".join(
        f"<tr class='{'pass' if ok else 'fail'}'><td>{'PASS' if ok else 'FAIL'}</td><td>{html.escape(name)}</td>"
        f"<td class='why'>{html.escape(reason)}</td></tr>" for name, ok, reason in context.verdicts
    )
    boot_image = bootstrap_plot(evaluation.get("bootstrap") or {}, evaluation["primary_metric"], evaluation.get("comparison"), context.tolerance)
    slices_image = slice_plot(evaluation)
    table = slice_rows(evaluation)
    slices = _html_table(["slice", "rows", "candidate", "champion", "judged"], table) if table else \
        "<p>No slice columns are configured (dataset.slice_columns).</p>"
    sampled = (f"on a random sample of {context.evidently_rows:,} of the {evaluation['holdout_rows']:,} holdout rows, so its numbers can "
               "differ slightly from the tables above, which use every row" if context.evidently_rows < evaluation["holdout_rows"]
               else f"on all {evaluation['holdout_rows']:,} holdout rows")
    shown_plots = {k: v for k, v in images.items() if k != "threshold"}
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
table.gates td{{text-align:left}} tr.fail td:first-child{{color:#b00;font-weight:bold}} tr.pass td:first-child{{color:#070}}
.answer{{font-size:1.2em;padding:.6em 1em;border-radius:4px;background:{'#e8f5e9' if promoted else '#fdecea'}}}
.plots img{{margin:0 1em 1em 0;border:1px solid #eee}} iframe.fit{{width:100%;height:1600px;border:1px solid #ccc}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="answer" id="promotion"><b>Will this be promoted?</b> {html.escape(answer)}</p>
<h2 id="gates">Every gate's verdict</h2><table class="gates"><thead><tr><th></th><th>gate</th><th>verdict</th></tr></thead><tbody>{gates_table}</tbody></table>
<p>Task: {html.escape(evaluation['candidate'].get('task', 'binary'))}; target {html.escape(context.target)}. Holdout: {evaluation['holdout_rows']:,}
rows of dataset {html.escape(evaluation['dataset_hash'][:12])} (every row, for the tables and plots below). Compared with:
{html.escape('champion version ' + champion['version'] if champion else 'no champion yet')}.</p>
<h2 id="metrics">Champion and candidate</h2>{_html_table(["metric", "candidate", "champion"], metrics_table(evaluation))}
<h2 id="bootstrap">How sure: the bootstrap</h2><p>{html.escape(_bootstrap_text(evaluation, context.tolerance))}</p>
{f'<img alt="bootstrap" src="{boot_image}">' if boot_image else ''}
{_threshold_section(evaluation, context.threshold_rows)}
{f'<img alt="threshold" src="{images["threshold"]}">' if "threshold" in images else ''}
{_compatibility_section(evaluation)}
<h2 id="plots">Plots</h2><div class="plots">{"".join(f'<img alt="{k}" title="{k}" src="{v}">' for k, v in shown_plots.items())}</div>
<h2 id="slices">Slices ({html.escape(evaluation['primary_metric'])})</h2>{f'<img alt="slices" src="{slices_image}">' if slices_image else ''}{slices}
<h2 id="evidently">Evidently quality report (reference = champion)</h2>
<p>Evidently's section is computed {sampled}. Its column {html.escape(context.target)} is the label, and
{html.escape(context.target)} (predicted) the model's output.</p>
{embedded("Evidently report", evidently)}
</body></html>"""
    return write_page(path, page)


def model_card(*, model_name: str, version: str, task: str, evaluation: dict, gates: dict, decision: dict, card: dict,
               links: dict[str, str | None]) -> str:
    """A markdown model card for a promoted version: who owns it and what it is for, what it was trained on and how,
    the features as the model sees them, how good it is, which gates it passed and why it was promoted."""
    features, training = evaluation.get("features", {}), evaluation.get("training") or {}
    inputs = features.get("inputs") or features.get("numeric", []) + features.get("categorical", [])
    raw = set(features.get("numeric", [])) | set(features.get("categorical", []))
    described = [f"{name} (categorical)" if name in features.get("categorical", []) else
                 f"{name} (derived from the time column)" if name not in raw else name for name in inputs]
    threshold = evaluation.get("threshold")
    batches = training.get("batches") or []
    window = (f"{training['first_time']} to {training['last_time']}" if training.get("first_time") else "not recorded (no time column)")
    params = training.get("params") or {}
    shown_params = {k: v for k, v in params.items() if k not in ("verbose", "verbosity")}
    lines = [
        f"# Model card: {model_name} version {version}",
        "",
        f"- **Owner:** {card.get('owner', 'not stated')}",
        f"- **Intended use:** {card.get('intended_use', 'not stated')}",
        f"- **Limitations:** {card.get('limitations', 'not stated')}",
        f"- **Task:** {task}; LightGBM through mlcicd's shared feature path.",
        f"- **Decision threshold:** {threshold:g}, {threshold_origin(evaluation)}" if threshold is not None
        else "- **Decision threshold:** none (the prediction is the answer)",
        f"- **Promoted:** {decision['at']} by {decision['triggered_by']}: {decision['reason']}",
        f"- **Replaced:** {'version ' + decision['from_version'] if decision.get('from_version') else 'nothing (first champion)'}",
        f"- **Code:** git commit {decision.get('git_commit') or 'unknown'}.",
        "",
        "## What changed since the previous champion",
        "",
        *[f"- **{axis}:** {'; '.join(lines) if lines else 'nothing changed'}" for axis, lines in (decision.get("changes") or {}).items()],
        *([] if decision.get("changes") else ["- not recorded"]),
        "",
        "## Training data",
        "",
        f"- **Dataset:** {evaluation['dataset_hash'][:12]} (content hash); {training.get('rows', '?'):,} training rows"
        if isinstance(training.get("rows"), int) else f"- **Dataset:** {evaluation['dataset_hash'][:12]} (content hash)",
        f"- **Time window of the training rows:** {window}",
        f"- **Batches ({len(batches)}):** {', '.join(batches) if batches else 'not recorded'}",
        f"- **Holdout:** the newest {evaluation['holdout_rows']:,} rows, never trained on.",
        "",
        "## Hyperparameters",
        "",
        f"- num_boost_round {training.get('num_boost_round', '?')}, best iteration {training.get('best_iteration', '?')} (early stopping)",
        *[f"- {key}: {value}" for key, value in sorted(shown_params.items())],
        "",
        f"## Features as the model sees them ({len(inputs)})",
        "",
        ", ".join(described),
        "",
        "## Holdout metrics",
        "",
        "| metric | this version | replaced champion |",
        "|---|---|---|",
        *[f"| {name} | {mine} | {theirs} |" for name, mine, theirs in metrics_table(evaluation)],
        "",
        *compatibility_lines(evaluation),
        "## Gates",
        "",
        "| gate | result | verdict |",
        "|---|---|---|",
        *[f"| {gate} | {'pass' if result.get('passed') else 'FAIL'} | {str(result.get('reason', '')).replace('|', '/')} |" for gate, result in gates.items()],
        "",
        "## Limits of this evaluation",
        "",
    ]
    unjudged = [row[0] for row in slice_rows(evaluation) if row[4] != "yes"]
    lines.append(f"- Slices not judged (too few rows or undefined metric): {', '.join(unjudged)}." if unjudged else "- Every configured slice was judged.")
    lines.append("- Judged on the newest rows only; performance on data unlike the training window is not measured here (see drift monitoring).")
    lines += ["", "## Links", "", *[f"- [{name}]({target})" if target else f"- {name}" for name, target in links.items()]]
    return "\n".join(lines) + "\n"


def compatibility_lines(evaluation: dict) -> list[str]:
    """The model card's section on the decisions users relied on (empty without a champion to compare with)."""
    decisions, flipped = compatibility_rows(evaluation)
    if not flipped:
        return []
    lines = ["## Decisions against the replaced champion", ""]
    if decisions:
        lines += ["| at its operating point | this version | replaced champion | better by |", "|---|---|---|---|",
                  *[f"| {' | '.join(row)} |" for row in decisions], ""]
    return lines + ["Negative flips (rows the replaced champion got right and this version gets wrong):", "",
                    "| where | rows | flipped | share | 95% lower bound |", "|---|---|---|---|---|",
                    *[f"| {' | '.join(row)} |" for row in flipped], ""]


def markdown_page(markdown_text: str, title: str) -> str:
    """A markdown document (the model card) as a standalone HTML page."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    style = ("body{font-family:sans-serif;margin:2em;max-width:1000px;line-height:1.4} table{border-collapse:collapse} "
             "td,th{border:1px solid #ccc;padding:4px 8px}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{body}</body></html>"
