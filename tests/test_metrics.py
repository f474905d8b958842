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
