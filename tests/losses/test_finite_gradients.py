"""Property: the losses on probabilities (BNM, fast BNM, EntMin) give a
finite value and finite gradients for every finite probability matrix,
including one-hot rows, uniform rows, repeated rows and zero columns (where
singular values repeat or vanish, and log(0) waits)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kerazoo.losses import bnm_loss, entropy_loss, fbnm_loss

LOSSES = {
    "bnm": lambda p: bnm_loss(p),
    "bnm_min_dim": lambda p: bnm_loss(p, normalization="min_dim"),
    "fbnm": lambda p: fbnm_loss(p),
    "entmin": lambda p: entropy_loss(p),
}


def _value_and_gradient(loss, probs):
    probs = tf.constant(probs)
    with tf.GradientTape() as tape:
        tape.watch(probs)
        value = loss(probs)
    return value.numpy(), tape.gradient(value, probs).numpy()


@st.composite
def probability_matrices(draw):
    """(B, C) rows on the simplex: softmax of finite logits, one-hot rows, uniform rows, or a mix."""
    batch, classes = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["softmax", "one_hot", "uniform", "mixed"]))
    logits = draw(hnp.arrays(np.float32, (batch, classes), elements=st.floats(-30, 30, width=32)))
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    one_hot = np.eye(classes, dtype=np.float32)[np.argmax(logits, axis=1)]
    uniform = np.full((batch, classes), 1.0 / classes, np.float32)
    if kind == "mixed":
        pick = draw(hnp.arrays(np.int8, (batch,), elements=st.integers(0, 2)))
        return np.choose(pick[:, None], [soft, one_hot, uniform]).astype(np.float32)
    return {"softmax": soft, "one_hot": one_hot, "uniform": uniform}[kind].astype(np.float32)


@pytest.mark.parametrize("name", list(LOSSES))
@settings(max_examples=60, deadline=None)
@given(probs=probability_matrices())
def test_value_and_gradient_are_finite(name, probs):
    value, gradient = _value_and_gradient(LOSSES[name], probs)
    assert np.isfinite(value), (name, probs)
    assert np.all(np.isfinite(gradient)), (name, probs, gradient)


@pytest.mark.parametrize("name", list(LOSSES))
def test_the_hard_cases_by_hand(name):
    # Identical one-hot rows: rank 1, every other singular value 0 (and repeated).
    for probs in (np.tile(np.eye(4, dtype=np.float32)[:1], (6, 1)), np.full((5, 3), 1 / 3, np.float32)):
        value, gradient = _value_and_gradient(LOSSES[name], probs)
        assert np.isfinite(value) and np.all(np.isfinite(gradient)), (name, probs, gradient)
