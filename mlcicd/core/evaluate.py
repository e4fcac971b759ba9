"""Evaluation evidence for one model on the holdout: metrics, slices, calibration, latency, size,
and the paired bootstrap that compares a candidate with the champion on the same rows."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from mlcicd.core.features import FeatureState, encode_target, feature_matrix, same_inputs
from mlcicd.core.metrics import (
    CLASS_METRICS, RANKING_METRICS, better_by, calibration_error, dense_ranks, prepared_metric, score_order, task_metrics, weighted_metric,
)
from mlcicd.core.stats import poisson_counts, resampling_plan, rescaled, rounds_per_chunk
from mlcicd.core.tasks import task_of
from mlcicd.core.train import predict, score_matrix


def slice_groups(frame: pd.DataFrame, columns: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per slice column, each value (as text; missing values as "<missing>") and the mask of its rows, in value order.
    The distinct values are found by hashing and only they are turned into text, so this costs little on many rows."""
    out = {}
    for column in columns:
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        names = np.append(pd.Index(uniques).astype("string").to_numpy(dtype=object), "<missing>")  # code -1: the last
        distinct, group = np.unique(names, return_inverse=True)  # values that read the same are one value
        row_group = group[codes]
        masks = {str(name): row_group == number for number, name in enumerate(distinct)}
        out[column] = {name: mask for name, mask in masks.items() if mask.any()}
    return out


def slice_metrics(groups: dict, labels, predictions, metric: str, min_rows: int, ranks: np.ndarray | None = None) -> dict[str, dict]:
    """Per value of each slice column (`groups`: slice_groups of the rows): rows and the metric (None when not judged, with
    why); `ranks`: the predictions' dense_ranks, if known."""
    labels, predictions = np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float)
    out: dict[str, dict] = {}
    for column, values in groups.items():
        out[column] = {}
        for value, mask in values.items():
            where = np.flatnonzero(mask)  # found once, for the three arrays
            rows = len(where)
            entry = {"rows": rows, metric: None, "judged": False}
            if rows < min_rows:
                entry["why_not"] = f"only {rows} rows (< {min_rows})"
            else:
                score = float(weighted_metric(metric, labels[where], predictions[where], np.ones((1, rows)),
                                              ranks=ranks[where] if ranks is not None else None)[0])
                if math.isfinite(score):
                    entry[metric], entry["judged"] = score, True
                else:
                    entry["why_not"] = f"{metric} is undefined on these rows (for example a single class)"
            out[column][value] = entry
    return out


LATENCY_SIZES = {"one_row": 1, "batch_1000": 1000}


def measure_latency(models: list[tuple], frame: pd.DataFrame, repeats: int, blocks: int = 3) -> list[dict[str, float]]:
    """Wall time (ms) to score 1 row and 1,000 rows through the shared scoring path, for each (booster, features) in
    `models` (the candidate first, then the champion), measured in this process, interleaved: every repetition times
    each model in turn, so a busy spell slows them alike, in an order drawn at random (half each way in a block), so that
    a periodic disturbance (a scheduler's time slice, a collector's period) cannot fall on one model's turn more than
    the other's, as it can with a fixed alternation. The repetitions are cut into `blocks`; each model's
    `<size>_p95_ms` is its fastest block's p95 (a busy machine slows some blocks, the model slows all of them), and
    `<size>_ratio` (for the first model, when there are two) is the median of the paired ratios first / second."""
    per_block = max(5, repeats // blocks)  # at least 5 paired timings per block, so the ratio is a median of 5 x blocks pairs
    inputs = {name: frame.iloc[np.resize(np.arange(len(frame)), size)] for name, size in LATENCY_SIZES.items()}
    times = {(i, name): [[] for _ in range(blocks)] for i in range(len(models)) for name in LATENCY_SIZES}
    order_rng = np.random.default_rng(0)
    for name, rows in inputs.items():
        for model in models:
            predict(*model, rows)  # warm up
        for block in range(blocks):
            reverse = order_rng.permutation(np.arange(per_block) % 2)  # as many repetitions each way, in random order
            for repeat in range(per_block):
                order = reversed(range(len(models))) if reverse[repeat] else range(len(models))
                for i in order:
                    start = time.perf_counter()
                    predict(*models[i], rows)
                    times[(i, name)][block].append((time.perf_counter() - start) * 1000)
    results = []
    for i in range(len(models)):
        result = {}
        for name in LATENCY_SIZES:
            result[f"{name}_p95_ms"] = float(min(np.percentile(b, 95) for b in times[(i, name)]))
            if i == 0 and len(models) == 2:
                first, second = np.concatenate(times[(0, name)]), np.concatenate(times[(1, name)])
                result[f"{name}_ratio"] = float(np.median(first / second))
        results.append(result)
    return results


def model_evidence(
    booster, features: FeatureState, holdout: pd.DataFrame, target: str, groups: dict, metric: str, slice_min_rows: int,
    matrix: np.ndarray | None = None,
) -> tuple[dict, tuple[np.ndarray, np.ndarray], np.ndarray | None]:
    """Everything the model gates judge about one model on the holdout (latency is measured for candidate and
    champion together, by measure_latency), the (labels, predictions) pair for the paired comparison, and the
    predictions' dense_ranks (None where no ranking metric applies). `groups`: the holdout's slice_groups; `matrix`: the
    holdout's feature_matrix for these features, when already built."""
    if matrix is None:
        matrix = feature_matrix(holdout, features)
    predictions = score_matrix(booster, matrix, features.feature_names)
    labels = encode_target(holdout[target], features)
    order = score_order(predictions) if predictions.ndim == 1 else None  # the one sort of this model's scores
    ranks = dense_ranks(predictions, order) if order is not None and task_of(features.task).is_classifier else None
    evidence = {
        "task": features.task,
        "metrics": task_metrics(features.task, labels, predictions, features.threshold, ranks),
        "slices": slice_metrics(groups, labels, predictions, metric, slice_min_rows, ranks),
        "calibration_error": calibration_error(features.task, labels, predictions, order=order),
        "calibration_noise": calibration_noise(features.task, labels, predictions, order=order),
        "size_bytes": len(booster.model_to_string().encode()),
    }
    if task_of(features.task).thresholded:
        from mlcicd.core.operating_point import rates_at

        precision, recall = rates_at(labels, predictions, features.threshold)
        evidence["operating_point"] = {"threshold": features.threshold, "precision": precision, "recall": recall,
                                       "chosen": features.operating_point}
    return evidence, (labels, predictions), ranks


def slice_masks(groups: dict, slices: dict) -> dict[str, np.ndarray]:
    """Row masks of the judged slices ("column=value"), from the slice_groups and slice_metrics of the same rows."""
    return {f"{column}={value}": groups[column][value] for column, values in slices.items()
            for value, entry in values.items() if entry.get("judged")}


def paired_bootstrap(
    metric: str, candidate: tuple, champion: tuple | None, *, rounds: int, confidence: float, seed: int = 0, chunk: int | None = None,
    slices: dict[str, np.ndarray] | None = None, max_rows: int | None = None, ranks: tuple | None = None,
) -> dict:
    """How much better the candidate is than the champion (positive = better) on the same resampled rows: the point
    estimate, a one-sided lower bound and standard deviations, overall and for each slice mask in `slices` (from the
    same resamples). `candidate` and `champion` are (labels, predictions); without a champion only the candidate's own
    precision (`candidate_sd`) is measured.

    Poisson(1) weights per row and round (the usual large-sample bootstrap), in chunks to bound memory
    (stats.rounds_per_chunk). A part with more than `max_rows` rows is resampled on a random subsample and its spread
    rescaled to all its rows (stats.resampling_plan); each part says how many rows were resampled (`resampled_rows`).
    `ranks`: (the candidate's, the champion's) dense_ranks of their predictions, when already known.
    """
    candidate = tuple(np.asarray(v) for v in candidate)
    champion = tuple(np.asarray(v) for v in champion) if champion is not None else None
    n = len(candidate[0])
    parts = {"overall": np.arange(n), **{name: np.flatnonzero(mask) for name, mask in (slices or {}).items()}}
    drawn, plan = resampling_plan(n, parts, candidate[0] if metric in CLASS_METRICS else None, max_rows, seed)

    # a subsampled part's value on all its rows: a ranking metric takes each model's scores ranked once, not each part sorted
    subsampled = any(factor != 1.0 for _, factor in plan.values()) and metric in RANKING_METRICS
    ranked = [(known if known is not None else dense_ranks(model[1])) if subsampled and model is not None else None
              for model, known in zip((candidate, champion), ranks or (None, None))]

    def prepared(rows, ranks=(None, None), columns=None):
        new = prepared_metric(metric, candidate[0][rows], candidate[1][rows], ranks=ranks[0], columns=columns)
        old = prepared_metric(metric, champion[0][rows], champion[1][rows], ranks=ranks[1], columns=columns) if champion is not None else None

        def measure(weights) -> np.ndarray:  # (difference, candidate, champion) per row of weights
            mine = new(weights)
            theirs = old(weights) if old is not None else np.full(len(weights), np.nan)
            return np.vstack([better_by(metric, mine, theirs), mine, theirs])
        return measure

    measures, points = {}, {}
    for name, rows in parts.items():
        local, factor = plan[name]
        measures[name] = prepared(drawn[local], columns=local)  # given the weights of all the drawn rows
        on_subsample = measures[name](np.ones((1, len(drawn))))
        on_all = on_subsample
        if factor != 1.0:
            on_all = prepared(rows, [r[rows] if r is not None else None for r in ranked])(np.ones((1, len(rows))))
        points[name] = (on_subsample, on_all)
    rng = np.random.default_rng(seed)
    chunk = chunk or rounds_per_chunk(len(drawn), rounds)
    draws: dict[str, list] = {name: [] for name in parts}
    for start in range(0, rounds, chunk):
        weights = poisson_counts(rng, (min(chunk, rounds - start), len(drawn)))
        for name in plan:
            draws[name].append(measures[name](weights))
    resampled = {name: rescaled(np.hstack(draws[name]), *points[name], plan[name][1]) for name in parts}

    def summary(name: str) -> dict:
        delta, mine, theirs = resampled[name]
        finite = np.isfinite(delta) if champion is not None else np.isfinite(mine)
        point = [float(v[0]) for v in points[name][1]]
        result = {"delta": point[0], "candidate": point[1], "champion": point[2], "rounds": int(finite.sum()),
                  "resampled_rows": len(plan[name][0])}
        if finite.sum() < rounds // 2:
            return {**result, "lower": math.nan, "upper": math.nan, "sd": math.nan, "candidate_sd": math.nan, "champion_sd": math.nan}
        return {
            **result,
            "lower": float(np.quantile(delta[finite], 1 - confidence)),
            "upper": float(np.quantile(delta[finite], confidence)),
            "sd": float(np.std(delta[finite])),
            "candidate_sd": float(np.nanstd(mine)),
            "champion_sd": float(np.nanstd(theirs)) if champion is not None else math.nan,
        }

    overall = summary("overall")
    overall["slices"] = {name: {**summary(name), "rows": len(parts[name])} for name in slices or {}}
    # the resampled differences themselves (the candidate's own metric without a champion), for the report's plot
    delta, mine, _ = resampled["overall"]
    shown = delta if champion is not None else mine
    overall["draws"] = [round(float(v), 6) for v in shown[np.isfinite(shown)]]
    return overall


def calibration_noise(task: str, labels, predictions, *, bins: int = 10, rounds: int = 400, seed: int = 0, quantile: float = 0.95,
                      order: np.ndarray | None = None) -> float:
    """The calibration error a perfectly calibrated model would show on these rows by chance alone (its `quantile`):
    in each of the calibration bins, the share of positives of labels drawn from the model's own probabilities
    (consistency resampling; normal approximation per bin, so it costs one sort); regression: the sampling error of
    the mean residual. An error below this cannot be told from noise on a holdout this size."""
    y, pred = np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float)
    if len(y) == 0:
        return math.nan
    return task_of(task).calibration_noise(y, pred, bins, rounds, seed, quantile, order)


def evaluate_models(candidate: tuple, champion: tuple | None, holdout: pd.DataFrame, *, target: str, slice_columns: list[str], gates, seed: int) -> dict:
    """All the evidence the model gates judge, for a candidate (booster, features) and, when there is one, the champion,
    on the same holdout: each model's metrics, slices, calibration (and its noise level) and size; latency of both,
    measured together; and one paired bootstrap for the overall and per-slice differences (`gates` is the GateSpec).
    Returns {"candidate", "champion", "comparison", "bootstrap", "predictions": (candidate, champion)}."""
    metric = gates.primary_metric
    groups = slice_groups(holdout, slice_columns)
    matrix = feature_matrix(holdout, candidate[1])
    mine, mine_predictions, mine_ranks = model_evidence(*candidate, holdout, target, groups, metric, gates.slice_min_rows, matrix)
    theirs, their_predictions, their_ranks = (None, None, None)
    if champion is not None:
        shared = matrix if same_inputs(candidate[1], champion[1]) else None  # the same features of the same rows: built once
        theirs, their_predictions, their_ranks = model_evidence(*champion, holdout, target, groups, metric, gates.slice_min_rows, shared)
    masks = slice_masks(groups, mine["slices"])
    comparison = paired_bootstrap(
        metric, mine_predictions, their_predictions, rounds=gates.bootstrap_rounds, confidence=gates.regression_confidence, seed=seed, slices=masks,
        max_rows=gates.bootstrap_max_rows, ranks=(mine_ranks, their_ranks),
    )
    mine["metric_sd"] = comparison["candidate_sd"]
    for name, entry in comparison["slices"].items():
        column, value = name.split("=", 1)
        mine["slices"][column][value]["sd"] = entry["candidate_sd"]
    if theirs is not None:
        theirs["metric_sd"] = comparison["champion_sd"]
    latency = measure_latency([candidate] + ([champion] if champion is not None else []), holdout, gates.latency.repeats, gates.latency.blocks)
    mine["latency"] = latency[0]
    if theirs is not None:
        theirs["latency"] = latency[1]
    draws = comparison.pop("draws")
    operating, flips = None, None
    if champion is not None:
        operating, flips = compatibility(candidate[1], champion[1], mine_predictions, their_predictions, masks, gates, seed)
    return {
        "candidate": mine,
        "champion": theirs,
        "comparison": comparison if champion is not None else None,
        # what the report plots: the resampled differences (or, without a champion, the candidate's own metric)
        "bootstrap": {"rounds": gates.bootstrap_rounds, "confidence": gates.regression_confidence, "draws": draws,
                      "of": "difference" if champion is not None else "candidate", "resampled_rows": comparison["resampled_rows"]},
        "predictions": (mine_predictions, their_predictions),
        "operating_point": operating,
        "negative_flips": flips,
    }


def compatibility(new: FeatureState, old: FeatureState, candidate: tuple, champion: tuple, masks: dict, gates, seed: int) -> tuple:
    """How the candidate's decisions compare with the champion's on the same rows, each at its own threshold: precision
    and recall at the operating points (a thresholded task; else None) and the negative flips, overall and per slice."""
    from mlcicd.core.flips import negative_flips
    from mlcicd.core import operating_point

    kind = task_of(new.task)
    (labels, p_new), (_, p_old) = candidate, champion
    operating = None
    if kind.thresholded:
        costs = (new.operating_point or {}).get("costs") or (1.0, 1.0)
        operating = operating_point.compare((labels, p_new, new.threshold), (labels, p_old, old.threshold), costs=tuple(costs),
                                            rounds=gates.bootstrap_rounds, confidence=gates.regression_confidence, seed=seed,
                                            max_rows=gates.bootstrap_max_rows)
        operating["rule"] = (new.operating_point or {}).get("rule", "fixed")
        operating["champion_rule"] = (old.operating_point or {}).get("rule", "fixed")
    flips = negative_flips(kind, labels, p_new, p_old, (new.threshold, old.threshold), tolerance=gates.regression_flip_tolerance,
                           limit=gates.max_negative_flip_rate, confidence=gates.regression_confidence, slices=masks)
    return operating, flips
