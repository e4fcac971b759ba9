"""Evaluation metrics. A metric that is undefined (one class in the labels) is NaN, never a guess."""

from __future__ import annotations

import math

import numpy as np


def binary_metrics(y_true, y_prob, threshold: float = 0.5) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, log_loss, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    y_prob = np.clip(np.asarray(y_prob, dtype=float), 1e-7, 1 - 1e-7)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "roc_auc": float(roc_auc_score(y_true, y_prob)) if both_classes else math.nan,
        "pr_auc": float(average_precision_score(y_true, y_prob)) if both_classes else math.nan,
        "log_loss": float(log_loss(y_true, y_prob, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, y_prob)),
        "f1": float(f1_score(y_true, (y_prob >= threshold).astype(int), zero_division=0)),
        "rows": float(len(y_true)),
        "positive_rate": float(y_true.mean()) if len(y_true) else math.nan,
    }
