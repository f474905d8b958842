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


def shot_accuracy(labels, predictions, class_counts, many=100, few=20):
    """Accuracy on the many-, medium- and few-shot classes of a long tail.

    A class is many-shot with more than `many` training images, few-shot
    with fewer than `few`, medium-shot otherwise (the split of Liu et al.
    2019, OLTR, used by Balanced Softmax and BatchFormer on ImageNet-LT and
    CIFAR-LT). Each group's accuracy is over its test images (on a balanced
    test set: the mean recall of its classes); NaN for an empty group.

    Args:
        labels, predictions: test labels and predicted classes.
        class_counts: training images per class.

    Returns:
        {"many": float, "medium": float, "few": float}.

    Example: `shot_accuracy(y, y_hat, protocol.class_counts())["few"]`.
    """
    counts = np.asarray(class_counts)
    labels = np.asarray(labels)
    correct = np.asarray(predictions) == labels
    groups = {"many": counts > many, "medium": (counts >= few) & (counts <= many), "few": counts < few}
    result = {}
    for name, members in groups.items():
        rows = members[labels]
        result[name] = float(correct[rows].mean()) if rows.any() else float("nan")
    return result
