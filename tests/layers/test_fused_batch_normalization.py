import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import FusedBatchNormalization


def _pair(shape, axis, **kwargs):
    fused = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, axis=axis, **kwargs)
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, axis=axis, **kwargs)
    fused.build(shape)
    plain.build(shape)
    rng = np.random.default_rng(1)
    for a, b in zip(fused.weights, plain.weights):
        value = rng.uniform(0.5, 1.5, a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    return fused, plain


def _ops(layer, x, training):
    graph = tf.function(lambda t: layer(t, training=training)).get_concrete_function(x).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("shape, axis", [((16, 5, 5, 3), -1), ((16, 3, 5, 5), 1)])
def test_training_matches_keras_outputs_gradients_and_moving_statistics(shape, axis):
    fused, plain = _pair(shape, axis)
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, shape).astype("float32"))
    gradients = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.sin(y) * x)
        gradients.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, rtol=1e-6)
    # Keras averages the biased batch variance; the kernel's is Bessel-corrected.
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-6)
    for a, b in zip(*gradients):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_training_runs_the_fused_kernel_and_inference_does_not():
    layer = FusedBatchNormalization()
    x = tf.zeros((4, 3, 3, 2))
    layer.build(x.shape)
    assert "FusedBatchNormV3" in _ops(layer, x, training=True)
    assert "FusedBatchNormV3" not in _ops(layer, x, training=False)


@pytest.mark.parametrize(
    "shape, kwargs",
    [((8, 5), {}), ((8, 4, 4, 3), {"synchronized": True}), ((8, 4, 4, 3), {"trainable": False})],
    ids=["rank 2", "synchronized", "frozen"],
)
def test_keras_own_path_where_the_kernel_does_not_apply(shape, kwargs):
    trainable = kwargs.pop("trainable", True)
    fused, plain = _pair(shape, -1, **kwargs)
    fused.trainable = plain.trainable = trainable
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype("float32"))
    assert "FusedBatchNormV3" not in _ops(fused, x, training=True)
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-6)


def test_a_batch_of_one_value_per_channel_keeps_the_moving_variance_finite():
    layer = FusedBatchNormalization(momentum=0.5)
    layer(tf.ones((1, 1, 1, 3)), training=True)
    np.testing.assert_allclose(layer.moving_variance, [0.5, 0.5, 0.5])


def test_mixed_precision_keeps_statistics_in_float32():
    layer = FusedBatchNormalization(dtype="mixed_bfloat16")
    y = layer(tf.ones((4, 2, 2, 3), "bfloat16"), training=True)
    assert y.dtype == tf.bfloat16
    assert layer.moving_mean.dtype == "float32"


def test_saved_and_loaded(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, FusedBatchNormalization(momentum=0.9)(inputs))
    model(np.ones((2, 4, 4, 3), "float32"), training=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.layers[-1], FusedBatchNormalization)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
