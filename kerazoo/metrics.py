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
