"""kerazoo.ops: the NumPy pass over a model, l2_normalize in half precision
(the float32 normalisations are checked by their docstring examples and the
layers that use them)."""

import numpy as np
import pytest
import tensorflow as tf

import kerazoo
from helpers.replicas import two_cpu_strategy
from kerazoo.models.base import dtype_policy_scope
from kerazoo.ops import l2_normalize, outputs_numpy, replica_rows_of_draw


def _normalised_and_gradient(vectors, dtype):
    x = tf.constant(vectors, dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = l2_normalize(x, axis=1)
        total = tf.reduce_sum(y * tf.constant([1.0, -2.0, 0.5, 3.0], dtype))
    return y, tape.gradient(total, x)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_vectors_normalise_as_float32_ones(dtype):
    # Zero (float16's ε² is 0), tiny (‖x‖² below float16's range) and large
    # (‖x‖² above it) vectors: float16 arithmetic gave NaN, inf and zeros.
    vectors = np.array([[0.0] * 4, [1e-4] * 4, [200.0] * 4, [3.0, 4.0, 0.0, 0.0]], "float32")
    y, gradient = _normalised_and_gradient(vectors, dtype)
    expected, expected_gradient = (t.numpy() for t in _normalised_and_gradient(vectors, "float32"))
    assert y.dtype == dtype and np.abs(expected[1:3]).min() > 0.4
    np.testing.assert_allclose(y.numpy().astype("float32"), expected, atol=1e-2)
    # The zero vector's gradient is 1/ε = 1e12 as in PyTorch: inf in float16,
    # which a LossScaleOptimizer skips; every other gradient is finite.
    np.testing.assert_allclose(
        gradient.numpy().astype("float32"), expected_gradient.astype(dtype).astype("float32"), rtol=2e-2
    )
    assert np.isfinite(gradient.numpy()[1:].astype("float32")).all()


def test_outputs_are_predicts_numbers_in_inference_mode_across_batches():
    backbone = kerazoo.backbones.get("convnet", width=8)
    images = np.random.default_rng(0).uniform(size=(70, 8, 8, 1)).astype("float32")
    outputs = outputs_numpy(backbone, images, batch_size=32)  # 32 + 32 + 6
    assert isinstance(outputs, np.ndarray) and outputs.shape == (70, backbone.output_shape[-1])
    np.testing.assert_allclose(
        outputs, backbone.predict(images, batch_size=70, verbose=0), rtol=1e-5, atol=1e-6
    )
    # BatchNorm with its moving statistics, not the batch's.
    assert not np.allclose(outputs, np.asarray(backbone(images, training=True)), atol=1e-3)


def test_a_mixed_precision_models_outputs_come_as_float32_for_numpy_code():
    import keras
    from sklearn.neighbors import KNeighborsClassifier

    with dtype_policy_scope("mixed_bfloat16"):
        backbone = kerazoo.backbones.get("convnet", width=8)
    images = np.random.default_rng(0).uniform(size=(6, 8, 8, 1)).astype("float32")
    assert keras.backend.standardize_dtype(backbone(images).dtype) == "bfloat16"
    features = outputs_numpy(backbone, images)
    assert features.dtype == np.float32
    KNeighborsClassifier(1).fit(features, np.arange(6))  # refuses bfloat16 arrays


def test_fractional_class_ids_are_refused_not_truncated():
    from kerazoo.ops import check_class_ids

    assert check_class_ids(np.array([1.0, 2.0]), 3).numpy().tolist() == [1, 2]
    with pytest.raises(ValueError, match="whole numbers; got fractions such as 1.7"):
        check_class_ids(np.array([0.0, 1.7]), 3)


def test_each_replica_draws_the_rows_one_device_draws_for_its_share():
    # Keras' seed generators hold one state per replica, all alike: a draw
    # made in each replica was the same on both.
    import keras

    strategy = two_cpu_strategy()
    with strategy.scope():
        generator = keras.random.SeedGenerator(3)

    @tf.function
    def per_replica():
        return strategy.run(
            lambda: replica_rows_of_draw(lambda n: keras.random.normal((n, 2), seed=generator), 4)
        )

    rows = np.concatenate([np.asarray(r) for r in strategy.experimental_local_results(per_replica())])
    one_device = keras.random.normal((8, 2), seed=keras.random.SeedGenerator(3))
    np.testing.assert_allclose(rows, np.asarray(one_device), rtol=1e-6)


def test_replicas_drawing_unequal_row_counts_take_rows_apart_within_their_capacity():
    # GIT translates 3 replaced rows on one replica and 1 on the other; each
    # takes its rows from replica id x capacity, so none is shared.
    import keras

    strategy = two_cpu_strategy()
    with strategy.scope():
        generator = keras.random.SeedGenerator(5)

    def replica_rows():
        first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
        rows = tf.where(first, 3, 1)
        return replica_rows_of_draw(lambda n: keras.random.uniform((n,), seed=generator), rows, capacity=4)

    first, second = (
        np.asarray(r)
        for r in strategy.experimental_local_results(tf.function(lambda: strategy.run(replica_rows))())
    )
    one_device = np.asarray(keras.random.uniform((8,), seed=keras.random.SeedGenerator(5)))
    np.testing.assert_allclose(first, one_device[:3], rtol=1e-6)
    np.testing.assert_allclose(second, one_device[4:5], rtol=1e-6)
