"""The tasks, one object each: binary, multiclass, regression. Everything that differs by task lives here: the
LightGBM objective, the metrics and the primary one, the gate defaults, how labels are encoded and checked, the
calibration measure and its noise, what a prediction means to the business (scoring and serving), how two models'
answers disagree, the settings `mlcicd init` suggests, and the report's plots. The rest of the code asks
`task_of(name)` and never branches on a task's name: adding a task type touches this module only.

Predictions by task: binary, the probability of the positive class (n,); multiclass, a probability matrix
(n, classes); regression, the predicted value (n,). Labels as the model sees them: binary 0/1, multiclass the class
code (-1 for a class the model never saw), regression the value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

REGRESSION_DISAGREEMENT = 0.1  # two regression predictions disagree when they differ by more than this share of the champion's spread


def _calibration_bins(y: np.ndarray, pred: np.ndarray, bins: int, order: np.ndarray | None = None) -> float:
    """Expected calibration error of probabilities `pred` for 0/1 outcomes `y`, in equal-count bins (`order`: pred's
    stable argsort, if known)."""
    order = np.argsort(pred, kind="stable") if order is None else order
    pred, y = pred[order], y[order]
    parts = min(bins, len(order))
    error = sum(len(p) * abs(p.mean() - t.mean()) for p, t in zip(np.array_split(pred, parts), np.array_split(y, parts)))
    return float(error / len(y))


def _calibration_noise_bins(confidence: np.ndarray, n: int, bins: int, rounds: int, seed: int, quantile: float,
                            order: np.ndarray | None = None) -> float:
    """The calibration error a perfectly calibrated model would show by chance (consistency resampling, normal
    approximation per bin, so it costs one sort; `order`: confidence's stable argsort, if known)."""
    ordered = np.sort(confidence, kind="stable") if order is None else confidence[order]
    parts = np.array_split(ordered, min(bins, len(confidence)))
    sizes = np.array([len(part) for part in parts], dtype=float)
    spread = np.array([math.sqrt(float(np.sum(part * (1 - part)))) / len(part) for part in parts])  # sd of a bin's share of positives
    draws = np.abs(np.random.default_rng(seed).standard_normal((rounds, len(parts))) * spread)
    return float(np.quantile(draws @ sizes / n, quantile))


FEW_VALUES = 64  # vocabulary_codes looks these up one by one


def vocabulary_codes(values, vocabulary: list[str]) -> np.ndarray:
    """Each value's position in the vocabulary, compared as text (unseen or missing: -1): the features' categories and the
    labels' classes. The distinct values are found by hashing and only they are turned into text (as pandas does), not
    every row; text needs no turning. A few values that are all text (a request's rows) are looked up directly: hashing
    them through pandas costs more than the lookup."""
    position = {text: number for number, text in enumerate(vocabulary)}
    if len(values) <= FEW_VALUES:
        listed = list(values)
        if all(isinstance(value, str) for value in listed):
            return np.array([position.get(value, -1) for value in listed], dtype="int64")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    texts = uniques if all(isinstance(u, str) for u in uniques) else pd.Index(uniques).astype("string")
    return np.array([position.get(text, -1) for text in texts] + [-1], dtype="int64")[codes]  # code -1 (missing): the last


class Task:
    name: str
    objective: dict[str, Any]
    metrics: tuple[str, ...]
    primary: str
    default_floor: float  # gates.min_metrics for the primary metric when mlcicd.yaml leaves it out
    default_max_calibration_error: float
    init_min_calibration_tolerance: float
    calibration_meaning: tuple[str, str]  # (what the calibration measure is, what a failure means), for the gate's verdict
    is_classifier = True
    dask_estimator = "DaskLGBMClassifier"
    score_key = "probability"  # the output of `outputs` that is a score (compared by PSI, logged by the service)
    thresholded = False  # a score that a threshold turns into a decision (the report's threshold section, the card's threshold)

    @property
    def gate_defaults(self) -> dict[str, Any]:
        """The gate settings mlcicd.yaml may leave out for this task."""
        return {"primary_metric": self.primary, "min_metrics": {self.primary: self.default_floor},
                "max_calibration_error": self.default_max_calibration_error}

    # ---- labels --------------------------------------------------------------------------------------------
    def positive_class(self, classes: list[str] | None) -> str | None:
        """The class whose rate the label_balance gate watches (binary: the second in natural order); None: none."""
        return None

    def check_classes(self, classes: list[str]) -> None:
        """Raise ValueError when the target's distinct values cannot be this task's classes."""

    def encode(self, values: pd.Series, classes: list[str] | None) -> np.ndarray:
        return vocabulary_codes(values, classes)

    def trainable(self, labels: np.ndarray) -> np.ndarray | None:
        """A mask of the rows LightGBM can be given (a class seen only in the validation rows cannot); None: all."""
        return labels >= 0

    def label_verdict(self, labels: pd.Series, shares: pd.Series | None, positive_rate: tuple[float, float],
                      min_class_share: float) -> tuple[bool, str, dict]:
        """The label_balance gate's verdict on labels with no missing values: (passed, reason, numbers)."""
        raise NotImplementedError

    # ---- training and metrics ------------------------------------------------------------------------------
    def lightgbm_objective(self, classes: list[str] | None) -> dict[str, Any]:
        return dict(self.objective)

    def extra_metrics(self, y: np.ndarray) -> dict[str, float]:
        return {}

    def calibration_error(self, y: np.ndarray, pred: np.ndarray, bins: int, order: np.ndarray | None = None) -> float:
        """`order`: the predictions' stable argsort (1-D predictions), if known."""
        return _calibration_bins(y, pred, bins, order)

    def calibration_noise(self, y: np.ndarray, pred: np.ndarray, bins: int, rounds: int, seed: int, quantile: float,
                          order: np.ndarray | None = None) -> float:
        return _calibration_noise_bins(pred, len(y), bins, rounds, seed, quantile, order)

    # ---- what a prediction means ---------------------------------------------------------------------------
    def outputs(self, predictions: np.ndarray, classes: list[str] | None, threshold: float) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def disagree(self, champion: dict, challenger: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Rows where champion and challenger (outputs of `outputs`; `a`, `b` their scores) would decide differently."""
        return champion[self.decision_key] != challenger[self.decision_key]

    decision_key = "decision"

    def negative_flips(self, y: np.ndarray, new: np.ndarray, old: np.ndarray, thresholds: tuple[float, float], tolerance: float) -> np.ndarray:
        """Rows the champion (`old`) got right and the candidate (`new`) gets wrong, each deciding at its own threshold
        (`thresholds`: candidate's, champion's); regression: rows whose absolute error grows by more than `tolerance` x
        the target's standard deviation."""
        return (self.predicted_codes(old, thresholds[1]) == y) & (self.predicted_codes(new, thresholds[0]) != y)

    # ---- what init suggests --------------------------------------------------------------------------------
    def init_noise(self, guess, holdout: int, rare: float | None) -> dict:
        """For `mlcicd init`: the primary metric's sd on `holdout` rows, a sanity floor, the calibration noise, the
        smallest judged slice (each with why)."""
        raise NotImplementedError

    def rare_share(self, guess) -> float | None:
        return guess.smallest_class_share

    def init_label_lines(self, guess, rare: float | None) -> list[str]:
        return []

    # ---- the report ----------------------------------------------------------------------------------------
    plots: tuple[str, ...] = ("calibration", "confusion_matrix")  # by name, drawn in core/report.py
    confidence_label = "probability"

    def confidence(self, y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whether each prediction was right, as 0/1; the model's confidence in it): what a reliability plot shows."""
        return y, pred

    def predicted_codes(self, pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """The class each prediction decides (a thresholded task: at `threshold`)."""
        raise NotImplementedError

    def evidently(self, classes: list[str] | None, target: str = "target"):
        """Evidently's data definition and preset for this task, with every Evidently test set passed explicitly empty
        (the gates are ours; Evidently 0.7's presets break with include_tests=False). The label column is named after
        the dataset's target, the prediction column `<target> (predicted)`, so Evidently's pages name them as the data does."""
        from evidently import DataDefinition
        from evidently.presets import ClassificationPreset

        spec = self.evidently_classification(classes, target, predicted_column(target))
        no_tests = {f"{m}_tests": [] for m in ("accuracy", "precision", "recall", "f1score", "rocauc", "logloss", "tpr", "tnr", "fpr", "fnr")}
        no_tests |= {f"{m}_by_label_tests": {} for m in ("f1score", "precision", "recall", "rocauc")}
        return DataDefinition(classification=[spec]), ClassificationPreset(**no_tests)

    def evidently_classification(self, classes: list[str] | None, target: str, predicted: str):
        raise NotImplementedError

    def evidently_frame(self, labels: np.ndarray, predictions: np.ndarray, classes: list[str] | None, target: str = "target") -> pd.DataFrame:
        raise NotImplementedError


class Binary(Task):
    name = "binary"
    objective = {"objective": "binary", "metric": ["binary_logloss", "auc"]}
    metrics = ("roc_auc", "pr_auc", "log_loss", "brier", "f1")
    primary = "roc_auc"
    default_floor, default_max_calibration_error = 0.70, 0.02
    init_min_calibration_tolerance = 0.05
    calibration_meaning = ("expected calibration error", "its probabilities cannot be taken at face value")

    def positive_class(self, classes):
        return classes[1]

    def check_classes(self, classes):
        if len(classes) != 2:
            raise ValueError(f"a binary target needs exactly 2 distinct values, found {len(classes)}: {classes[:5]}")

    def encode(self, values, classes):
        codes = super().encode(values, classes)
        if (codes < 0).any():
            unseen = sorted(set(values.astype("string")[codes < 0].astype(str)))[:3]
            raise ValueError(f"the binary target has value(s) {unseen} that are neither of the model's classes {classes}")
        return codes.astype("float64")

    def label_verdict(self, labels, shares, positive_rate, min_class_share):
        low, high = positive_rate
        numbers = {f"share_{k}": float(v) for k, v in shares.items()}
        if len(shares) != 2:
            return False, f"A binary target needs 2 classes; the training dataset has {len(shares)}: {list(shares.index)[:5]}.", numbers
        rate = float(shares.iloc[1])  # the positive class is the second in natural order, as the model sees it
        numbers.update({"positive_rate": rate, "min_positive_rate": low, "max_positive_rate": high})
        if not low <= rate <= high:
            return False, f"The positive rate is {rate:.4f}, outside the expected [{low:g}, {high:g}]: the labels may be broken.", numbers
        return True, f"The positive rate is {rate:.4f}, within [{low:g}, {high:g}].", numbers

    def extra_metrics(self, y):
        return {"positive_rate": float(y.mean()) if len(y) else math.nan}

    def outputs(self, predictions, classes, threshold):
        return {"probability": predictions, "decision": (predictions >= threshold).astype("int64")}

    def rare_share(self, guess):
        return min(guess.positive_rate, 1 - guess.positive_rate)

    plots = ("roc", "precision_recall", "calibration", "confusion_matrix")
    thresholded = True

    def predicted_codes(self, pred, threshold=0.5):
        return (pred >= threshold).astype(int)

    def evidently_classification(self, classes, target, predicted):
        from evidently import BinaryClassification

        return BinaryClassification(target=target, prediction_probas=predicted, pos_label=1)

    def evidently_frame(self, labels, predictions, classes, target="target"):
        return pd.DataFrame({target: labels.astype(int), predicted_column(target): predictions})

    def init_noise(self, guess, holdout, rare):
        informative = max(1.0, holdout * rare)  # AUC's precision is set by the rarer class
        return {
            "sd": math.sqrt(0.85 * 0.15 / informative),  # Hanley-McNeil's order of magnitude for an AUC near 0.85
            "floor": 0.6, "floor_why": "AUC 0.6: clearly better than chance",
            "noise": 0.8 * math.sqrt(rare * (1 - rare) * 10 / holdout),  # expected calibration error of a calibrated model, 10 bins
            "slice_rows": max(30, math.ceil(10 / rare)),
            "slice_why": f"at least about 10 of the rarer class (share {rare:.3f}) per judged slice",
        }

    def init_label_lines(self, guess, rare):
        rate = guess.positive_rate
        return [f"positive_rate: [{rate / 2:.4f}, {1 - (1 - rate) / 2:.4f}]   # now {rate:.4f}; the positive or negative share "
                "may halve before the labels look broken"]


class Multiclass(Task):
    name = "multiclass"
    objective = {"objective": "multiclass", "metric": ["multi_logloss", "multi_error"]}
    metrics = ("accuracy", "macro_f1", "log_loss")
    primary = "macro_f1"
    default_floor, default_max_calibration_error = 0.50, 0.05
    init_min_calibration_tolerance = 0.05
    calibration_meaning = ("expected calibration error of the top-class confidence", "its confidence cannot be taken at face value")
    decision_key = "predicted_class"

    def check_classes(self, classes):
        if len(classes) < 2:
            raise ValueError(f"a multiclass target needs at least 2 distinct values, found {classes}")

    def label_verdict(self, labels, shares, positive_rate, min_class_share):
        numbers = {f"share_{k}": float(v) for k, v in shares.items()}
        numbers["min_class_share"] = min_class_share
        if len(shares) < 2:
            return False, f"The training dataset has a single class ({list(shares.index)}).", numbers
        rare = {k: v for k, v in shares.items() if v < min_class_share}
        if rare:
            shown = ", ".join(f"{k} ({v:.2%})" for k, v in rare.items())
            return False, f"{len(rare)} class(es) fall below the minimum share of {min_class_share:.2%}: {shown}.", numbers
        return True, f"{len(shares)} classes, the rarest at {shares.min():.2%} (minimum {min_class_share:.2%}).", numbers

    def lightgbm_objective(self, classes):
        return {**self.objective, "num_class": len(classes or [])}

    def calibration_error(self, y, pred, bins, order=None):
        return _calibration_bins((pred.argmax(axis=1) == y).astype(float), pred.max(axis=1), bins)

    def calibration_noise(self, y, pred, bins, rounds, seed, quantile, order=None):
        return _calibration_noise_bins(pred.max(axis=1), len(y), bins, rounds, seed, quantile)

    def outputs(self, predictions, classes, threshold):
        return {"predicted_class": np.asarray(classes, dtype=object)[predictions.argmax(axis=1)], "probability": predictions.max(axis=1)}

    confidence_label = "confidence"

    def confidence(self, y, pred):
        return (pred.argmax(axis=1) == y).astype(float), pred.max(axis=1)

    def predicted_codes(self, pred, threshold=0.5):
        return pred.argmax(axis=1)

    def evidently_classification(self, classes, target, predicted):
        from evidently import MulticlassClassification

        return MulticlassClassification(target=target, prediction_labels=predicted, prediction_probas=list(classes))

    def evidently_frame(self, labels, predictions, classes, target="target"):
        names = np.asarray(classes, dtype=object)
        out = pd.DataFrame(predictions, columns=list(classes))
        out[target] = np.where(labels >= 0, names[np.clip(labels, 0, None)], "<unseen>")
        out[predicted_column(target)] = names[predictions.argmax(axis=1)]
        return out

    def init_noise(self, guess, holdout, rare):
        classes = guess.classes or 2
        return {
            "sd": math.sqrt(0.25 / max(1.0, holdout * (rare or 0.5))),
            "floor": round(min(0.5, 1.5 / classes), 2), "floor_why": "macro F1 well above a guess among the classes",
            "noise": 0.8 * math.sqrt(0.25 * 10 / holdout),
            "slice_rows": max(30, math.ceil(5 / (rare or 0.5))),
            "slice_why": f"about 5 rows of the rarest class (share {rare:.3f}) per judged slice",
        }

    def init_label_lines(self, guess, rare):
        return [f"min_class_share: {round(min(0.01, (rare or 0.02) / 2), 4)}   # half the rarest class's share ({rare:.4f})"]


class Regression(Task):
    name = "regression"
    objective = {"objective": "regression", "metric": ["l2", "l1"]}
    metrics = ("rmse", "mae", "r2")
    primary = "r2"
    default_floor, default_max_calibration_error = 0.20, 0.10
    init_min_calibration_tolerance = 0.1
    calibration_meaning = ("mean residual as a share of the target's standard deviation", "its predictions are biased")
    is_classifier = False
    dask_estimator = "DaskLGBMRegressor"
    score_key = "prediction"
    decision_key = "prediction"

    def encode(self, values, classes):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")

    def trainable(self, labels):
        return None

    def label_verdict(self, labels, shares, positive_rate, min_class_share):
        values = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=float)
        numbers = {"target_mean": float(np.mean(values)), "target_std": float(np.std(values)), "non_finite": int((~np.isfinite(values)).sum())}
        if numbers["non_finite"]:
            return False, f"{numbers['non_finite']:,} target value(s) are not finite numbers.", numbers
        if not numbers["target_std"] > 0:
            return False, "The target has the same value in every row: there is nothing to learn.", numbers
        return True, f"The target varies (mean {numbers['target_mean']:.4g}, standard deviation {numbers['target_std']:.4g}).", numbers

    def calibration_error(self, y, pred, bins, order=None):
        spread = float(np.std(y))
        return abs(float(np.mean(pred - y))) / spread if spread > 0 else math.nan

    def calibration_noise(self, y, pred, bins, rounds, seed, quantile, order=None):
        spread = float(np.std(y))
        return 1.96 * float(np.std(pred - y)) / math.sqrt(len(y)) / spread if spread > 0 else math.nan

    def outputs(self, predictions, classes, threshold):
        return {"prediction": predictions}

    def disagree(self, champion, challenger, a, b):
        return np.abs(a - b) > REGRESSION_DISAGREEMENT * (np.std(a) or 1.0)

    def negative_flips(self, y, new, old, thresholds, tolerance):
        return np.abs(new - y) - np.abs(old - y) > tolerance * (float(np.std(y)) or 1.0)

    def rare_share(self, guess):
        return None

    def init_noise(self, guess, holdout, rare):
        return {
            "sd": 0.7 / math.sqrt(holdout), "floor": 0.1, "floor_why": "R² 0.1: explains clearly more than the mean",
            "noise": 1.96 / math.sqrt(holdout), "slice_rows": 30, "slice_why": "30 rows: enough for a stable R² per slice",
        }

    plots = ("predicted_vs_actual", "residuals")

    def evidently(self, classes, target="target"):
        from evidently import DataDefinition, Regression
        from evidently.presets import RegressionPreset
        from evidently.presets.regression import MeanStdMetricTests

        empty = MeanStdMetricTests(mean=[], std=[])
        definition = DataDefinition(regression=[Regression(target=target, prediction=predicted_column(target))])
        return definition, RegressionPreset(mean_error_tests=empty, mape_tests=empty, mae_tests=empty, rmse_tests=[], r2score_tests=[], abs_max_error_tests=[])

    def evidently_frame(self, labels, predictions, classes, target="target"):
        return pd.DataFrame({target: labels, predicted_column(target): predictions})


TASKS: dict[str, Task] = {task.name: task for task in (Binary(), Multiclass(), Regression())}
MAX_CLASSES = 20  # an integer or text target with at most this many values is a class label


def infer_task(target: pd.Series) -> str:
    """The task a target column implies, for `mlcicd init`: two values, binary; text or a few whole numbers,
    multiclass; other numbers, regression."""
    values = target.dropna()
    distinct = values.nunique()
    if distinct <= 2:
        return "binary"
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    whole = numeric and bool((values == values.round()).all())
    if not numeric or (whole and distinct <= MAX_CLASSES):
        return "multiclass"
    return "regression"


def task_of(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task '{name}'; tasks: {', '.join(TASKS)}") from None


def predicted_column(target: str) -> str:
    """The prediction column's name in Evidently's pages."""
    return f"{target} (predicted)"
