"""BNM, FBNM and EntMin against NumPy: values on random, one-hot, uniform and
rank-deficient predictions, finite gradients, float16 input, graph mode."""

import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose

from kerazoo.losses import bnm_loss, entropy_loss, fbnm_loss


def _random(b, c, seed=0):
    logits = np.random.default_rng(seed).normal(size=(b, c)) * 2
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _one_hot(classes, c):
    return np.eye(c, dtype=np.float32)[classes]


MATRICES = {
    "random B>C": _random(12, 5),
    "random B<C": _random(4, 9, seed=1),
    "one-hot": _one_hot([0, 2, 2, 1, 3, 0], 5),
    "uniform": np.full((8, 4), 0.25, np.float32),
    "rank-deficient": np.repeat(_random(2, 6, seed=2), 4, axis=0),  # rank 2
}


def np_bnm(p, normalization):
    p = np.asarray(p, np.float64)
    total = np.linalg.svd(p, compute_uv=False).sum()
    return -total / (p.shape[0] if normalization == "batch" else min(p.shape))


def np_fbnm(p, normalization):
    p = np.asarray(p, np.float64)
    norms = np.sort(np.sqrt((p**2).sum(0)))[::-1][: min(p.shape)]
    return -norms.sum() / (p.shape[0] if normalization == "batch" else min(p.shape))


@pytest.mark.parametrize("name", MATRICES)
@pytest.mark.parametrize("normalization", ["batch", "min_dim"])
def test_values_match_numpy(name, normalization):
    p = MATRICES[name]
    assert_allclose(bnm_loss(p, normalization).numpy(), np_bnm(p, normalization), rtol=1e-5, atol=1e-6)
    assert_allclose(fbnm_loss(p, normalization).numpy(), np_fbnm(p, normalization), rtol=1e-5, atol=1e-6)
    entropy = -np.mean(np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=1))
    assert_allclose(entropy_loss(p).numpy(), entropy, rtol=1e-5, atol=1e-6)


def test_known_values():
    # Uniform A = ones(B, C) / C has rank 1 and one singular value sqrt(B * C) / C.
    assert_allclose(bnm_loss(np.full((8, 4), 0.25)).numpy(), -np.sqrt(8 / 4) / 8, rtol=1e-6)
    assert_allclose(entropy_loss([[0.5, 0.5]]).numpy(), np.log(2), rtol=1e-6)
    # The official DA code's EntMin divides by log C.
    assert_allclose(entropy_loss([[0.5, 0.5]], "log_classes").numpy(), 1.0, rtol=1e-6)
    assert_allclose(entropy_loss(np.full((3, 5), 0.2), "log_classes").numpy(), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="log_classes"):
        entropy_loss([[0.5, 0.5]], "log")
    # The FBNM approximation is never below the nuclear norm (triangle inequality).
    p = _random(10, 6)
    assert fbnm_loss(p).numpy() <= bnm_loss(p, "min_dim").numpy() + 1e-6


def test_fbnm_equals_bnm_on_one_hot_distinct_classes():
    p = _one_hot([3, 0, 4, 1], 6)
    for normalization in ("batch", "min_dim"):
        assert_allclose(fbnm_loss(p, normalization).numpy(), bnm_loss(p, normalization).numpy(), rtol=1e-6)
    assert_allclose(bnm_loss(p, "batch").numpy(), -1.0, rtol=1e-6)


def _gradients(loss, p):
    p = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(p)
        value = loss(p)
    return tape.gradient(value, p).numpy()


@pytest.mark.parametrize("loss", [bnm_loss, fbnm_loss, entropy_loss], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "p",
    [
        np.full((6, 4), 0.25, np.float32),
        # A class never predicted (an all-zero column) that is among the kept
        # top-min(B, C) columns of FBNM: sqrt'(0) without epsilon is NaN.
        np.concatenate([_random(3, 3), np.zeros((3, 1), np.float32)], axis=1),
    ],
    ids=["uniform", "zero column"],
)
def test_gradients_are_finite(loss, p):
    assert np.all(np.isfinite(_gradients(loss, p)))


def test_bnm_gradient_matches_finite_differences(numeric_gradient):
    p = _random(5, 4)
    analytic = _gradients(lambda x: bnm_loss(x, "min_dim"), p)
    assert_allclose(analytic, numeric_gradient(lambda x: np_bnm(x, "min_dim"), p), atol=1e-4)


def test_float16_is_cast_to_float32():
    p = _random(6, 5)
    for loss in (bnm_loss, fbnm_loss, entropy_loss):
        value = loss(tf.constant(p, tf.float16))
        assert value.dtype == tf.float32
        assert_allclose(value.numpy(), loss(p).numpy(), rtol=2e-3)


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
@pytest.mark.parametrize("classes", [10, 1000])
def test_a_half_precision_softmax_is_taken_for_probabilities(dtype, classes):
    # A mixed policy's softmax rows round to sums of 0.998 and below;
    # logits are still refused.
    logits = tf.cast(np.random.default_rng(0).normal(size=(64, classes)) * 3, dtype)
    for loss in (bnm_loss, fbnm_loss, entropy_loss):
        assert np.isfinite(float(loss(tf.nn.softmax(logits))))
        with pytest.raises(ValueError, match="Pass softmax"):
            loss(logits)


def test_graph_mode_with_unknown_batch():
    fn = tf.function(
        lambda p: (bnm_loss(p), fbnm_loss(p)), input_signature=[tf.TensorSpec((None, 5), tf.float32)]
    )
    p = _random(7, 5)
    assert_allclose([v.numpy() for v in fn(p)], [bnm_loss(p).numpy(), fbnm_loss(p).numpy()], rtol=1e-6)


def test_bad_input_and_normalization():
    with pytest.raises(ValueError, match="normalization"):
        bnm_loss(_random(3, 3), "sum")
    with pytest.raises(ValueError, match="batch, classes"):
        fbnm_loss(np.ones(3, np.float32))


@pytest.mark.parametrize("loss", [bnm_loss, fbnm_loss, entropy_loss])
def test_a_variable_gives_the_tensors_value(loss):
    probs = _random(6, 4)
    np.testing.assert_allclose(float(loss(tf.Variable(probs))), float(loss(probs)), rtol=1e-6)


def test_an_empty_batch_and_one_class_entropy_are_refused():
    for loss in (bnm_loss, fbnm_loss, entropy_loss):
        with pytest.raises(ValueError, match="empty batch"):
            loss(np.zeros((0, 3), "float32"))
    with pytest.raises(ValueError, match="two or more classes"):
        entropy_loss(np.ones((4, 1), "float32"), normalization="log_classes")
