"""Balanced Softmax against NumPy written from Ren et al. 2020 (CE on logits + log prior)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from helpers.losses import np_cross_entropy
from kerazoo.losses import balanced_softmax_loss


def np_balanced_softmax(labels, logits, counts):
    return np_cross_entropy(labels, logits + np.log(counts))


def test_value_matches_numpy_and_differs_from_plain_ce():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 4)).astype("float32")
    labels = rng.integers(0, 4, 7)
    counts = [100, 20, 5, 1]
    value = float(balanced_softmax_loss(labels, logits, counts))
    assert_allclose(value, np_balanced_softmax(labels, logits, np.array(counts, float)), rtol=1e-5)
    assert not np.isclose(value, np_balanced_softmax(labels, logits, np.ones(4)))


def test_equal_counts_give_plain_cross_entropy_and_scaling_counts_changes_nothing():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 3)).astype("float32")
    labels = rng.integers(0, 3, 5)
    plain = np_balanced_softmax(labels, logits, np.ones(3))
    assert_allclose(float(balanced_softmax_loss(labels, logits, [7, 7, 7])), plain, rtol=1e-5)
    assert_allclose(
        float(balanced_softmax_loss(labels, logits, [1, 2, 3])),
        float(balanced_softmax_loss(labels, logits, [10, 20, 30])),
        rtol=1e-5,
    )


def test_gradient_matches_finite_differences(numeric_gradient):
    import tensorflow as tf

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 3))
    labels = np.array([0, 2, 2, 1])
    counts = np.array([50.0, 5.0, 1.0])
    x = tf.Variable(logits.astype("float32"))
    with tf.GradientTape() as tape:
        loss = balanced_softmax_loss(labels, x, counts)
    expected = numeric_gradient(lambda v: np_balanced_softmax(labels, v, counts), logits)
    assert_allclose(tape.gradient(loss, x).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("counts, message", [([1, 2], "one count per class"), ([1, 0, 3], "at least one")])
def test_bad_counts_are_refused(counts, message):
    with pytest.raises(ValueError, match=message):
        balanced_softmax_loss([0], np.zeros((1, 3), "float32"), counts)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.eye(3)[[0, 1, 2, 0]], r"class ids of shape \(B,\), not rows of shape \(4, 3\) .*argmax"),
        (np.array([0, 1, 3, 0]), r"must be class ids in \[0, 3\); got \[3\]"),
        (np.array([0, 1, 2]), "3 labels for 4 rows of logits"),
    ],
)
def test_labels_that_are_not_one_class_id_per_row_are_refused(labels, message):
    logits = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError, match=message):
        balanced_softmax_loss(labels, logits, class_counts=[100, 10, 1])
