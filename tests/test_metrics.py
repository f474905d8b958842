import numpy as np

from kerazoo import metrics


def test_forgetting_is_the_drop_from_the_best_earlier_accuracy():
    tasks = [[0.9], [0.8, 0.95], [0.7, 0.85, 0.9]]
    # task 0: best 0.9 -> 0.7 ; task 1: best 0.95 -> 0.85
    np.testing.assert_allclose(metrics.average_forgetting(tasks), (0.2 + 0.1) / 2)
    assert metrics.average_forgetting([[0.9]]) == 0.0


def test_incremental_and_balanced_accuracy():
    assert metrics.average_incremental_accuracy([1.0, 0.5]) == 0.75
    labels = np.array([0, 0, 0, 1])
    assert metrics.balanced_accuracy(labels, np.array([0, 0, 0, 0]), 2) == 0.5
    assert metrics.accuracy(labels, np.array([0, 0, 0, 0])) == 0.75


def test_shot_accuracy_splits_classes_by_training_images():
    counts = [150, 101, 100, 20, 19, 5]  # many: >100; few: <20; medium: the rest
    labels = np.array([0, 1, 2, 3, 4, 5, 5])
    predictions = np.array([0, 0, 2, 0, 4, 5, 0])
    shots = metrics.shot_accuracy(labels, predictions, counts)
    assert shots == {"many": 0.5, "medium": 0.5, "few": 2 / 3}
    empty = metrics.shot_accuracy(labels, predictions, counts, many=1000, few=1)
    assert np.isnan(empty["many"]) and np.isnan(empty["few"]) and empty["medium"] == 4 / 7
