"""cross_entropy_loss against NumPy, and in float32 under a mixed policy."""

import keras
import numpy as np
import tensorflow as tf
from numpy.testing import assert_allclose

from helpers.losses import np_cross_entropy
from kerazoo.losses import cross_entropy_loss


def test_value_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 4)).astype("float32")
    labels = rng.integers(0, 4, 7)
    assert_allclose(float(cross_entropy_loss(labels, logits)), np_cross_entropy(labels, logits), rtol=1e-6)


def test_bfloat16_logits_give_the_float32_loss_of_their_values():
    rng = np.random.default_rng(1)
    logits = tf.cast(rng.normal(size=(64, 10)) * 3, tf.bfloat16)
    labels = rng.integers(0, 10, 64)
    loss = cross_entropy_loss(labels, logits)
    assert loss.dtype == tf.float32
    exact = np_cross_entropy(labels, logits.numpy().astype(np.float64))
    assert_allclose(float(loss), exact, rtol=1e-6)
    # What bfloat16 arithmetic gives instead: off in the third digit.
    in_bf16 = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    assert abs(float(tf.reduce_mean(tf.cast(in_bf16, tf.float32))) - exact) > 1e-4
