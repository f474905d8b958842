"""info_nce_loss against its formula in NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from kerazoo.losses import info_nce_loss


def _numpy_info_nce(logits, labels, temperature):
    scaled = logits / temperature
    log_softmax = (
        scaled
        - np.log(np.exp(scaled - scaled.max(1, keepdims=True)).sum(1, keepdims=True))
        - scaled.max(1, keepdims=True)
    )
    return -log_softmax[np.arange(len(labels)), labels].mean()


@pytest.mark.parametrize("temperature", [0.02, 0.12, 1.0])
def test_matches_the_formula(temperature):
    rng = np.random.default_rng(0)
    logits = rng.uniform(-1, 1, (6, 10)).astype("float32")
    labels = rng.integers(0, 10, 6)
    got = float(info_nce_loss(logits, labels, temperature))
    np.testing.assert_allclose(got, _numpy_info_nce(logits.astype("float64"), labels, temperature), rtol=1e-5)


def test_half_precision_logits_at_a_small_temperature_stay_finite_with_a_finite_gradient():
    logits = tf.constant(np.linspace(-1, 1, 20).reshape(2, 10), tf.float16)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = info_nce_loss(logits, [9, 0], temperature=0.02)
    gradient = tape.gradient(loss, logits)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(gradient.numpy()))
    assert float(loss) == pytest.approx(
        _numpy_info_nce(logits.numpy().astype("float64"), [9, 0], 0.02), rel=1e-3
    )


# A NumPy zero gave NaN; a negative tensor was taken.
@pytest.mark.parametrize("temperature", [0, -0.1, np.float32(0), tf.constant(-0.1)])
def test_a_temperature_that_is_not_positive_is_refused_whatever_its_type(temperature):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        info_nce_loss(np.eye(2, dtype="float32"), np.arange(2), temperature)
