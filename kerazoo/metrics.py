"""Evaluation metrics on NumPy predictions."""

import numpy as np


def per_class_accuracy(labels, predictions, num_classes):
    """Recall of every class; NaN for a class absent from `labels`."""
    labels = np.asarray(labels)
    correct = np.asarray(predictions) == labels
    totals = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels, weights=correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / np.maximum(totals, 1), np.nan)


def accuracy(labels, predictions):
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def balanced_accuracy(labels, predictions, num_classes):
    """Mean per-class recall over the classes present in `labels`."""
    return float(np.nanmean(per_class_accuracy(labels, predictions, num_classes)))


def average_incremental_accuracy(phase_accuracies):
    """Mean of the accuracy on all seen classes after each phase, the base
    phase included (LUCIR's `eval_cumul_acc.py`)."""
    return float(np.mean(phase_accuracies))


def average_forgetting(task_accuracy):
    """Mean over earlier tasks j of max_{l<T} a[l][j] − a[T][j] at the final
    phase T (Chaudhry et al., 2018). `task_accuracy[i][j]` is the accuracy on
    task j's classes after phase i (j <= i). 0 with a single phase."""
    final = len(task_accuracy) - 1
    if final == 0:
        return 0.0
    drops = [
        max(task_accuracy[l][j] for l in range(j, final)) - task_accuracy[final][j]
        for j in range(final)
    ]
    return float(np.mean(drops))
