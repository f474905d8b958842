"""CosineLinear against NumPy written from LUCIR's modified_linear.py: values, gradients,
growing the head, imprinting, and serialization before and after growth."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal

from helpers.layers import check_layer
from kerazoo.layers import CosineLinear, imprint_weights

INPUT_DIM = 6


def np_normalize(x, axis):
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def np_logits(x, kernel, sigma):
    """σ · normalize(x) @ normalize(W)ᵀ with kernel = Wᵀ of shape (in, units)."""
    return sigma * np_normalize(x, axis=1) @ np_normalize(kernel, axis=0)


def built_layer(units=4, **kwargs):
    layer = CosineLinear(units, **kwargs)
    layer.build((None, INPUT_DIM))
    return layer


def features(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, INPUT_DIM)).astype(np.float32)


def test_initial_state():
    layer = built_layer(units=4)
    assert float(layer.sigma.numpy()) == 1.0
    assert [w.name for w in layer.trainable_weights] == ["sigma", "new_kernel"]  # no bias
    assert layer.kernel.shape == (INPUT_DIM, 4)
    assert np.abs(layer.kernel.numpy()).max() <= 1 / np.sqrt(INPUT_DIM)
    fixed = built_layer(units=4, learn_sigma=False)
    assert [w.name for w in fixed.trainable_weights] == ["new_kernel"]
    assert float(fixed.sigma.numpy()) == 1.0


def test_forward_matches_numpy():
    layer = built_layer(units=5, dtype="float64")
    layer.sigma.assign(2.5)
    x = features(7).astype(np.float64)
    x[3] = 0.0  # F.normalize maps a zero vector to zero, so its logits are 0
    expected = np_logits(x, layer.kernel.numpy(), 2.5)
    assert_allclose(layer(x).numpy(), expected, rtol=1e-12, atol=1e-12)
    assert_array_equal(layer(x).numpy()[3], 0.0)


def test_return_cosine_is_unscaled():
    layer = built_layer(units=5)
    layer.sigma.assign(-1.7)
    x = features(7)
    cosines = layer(x, return_cosine=True).numpy()
    assert_allclose(cosines, np_logits(x, layer.kernel.numpy(), 1.0), rtol=1e-5, atol=1e-6)
    assert_allclose(-1.7 * cosines, layer(x).numpy(), rtol=1e-6)


def test_output_bounded_by_sigma():
    layer = built_layer(units=5)
    layer.sigma.assign(-3.0)
    x = 100.0 * features(64)
    assert np.abs(layer(x).numpy()).max() <= 3.0 + 1e-5
    # The bound is reached when a feature points along a class weight.
    aligned = 7.0 * np.transpose(layer.kernel.numpy())
    assert_allclose(np.diag(layer(aligned).numpy()), -3.0, rtol=1e-6)


def test_gradients_match_finite_differences(numeric_gradient):
    layer = built_layer(units=3, dtype="float64")
    layer.add_classes(2)
    layer.sigma.assign(1.3)
    x = features(4).astype(np.float64)
    upstream = np.random.default_rng(1).normal(size=(4, 5))
    old, new = layer.old_kernel.numpy(), layer.new_kernel.numpy()

    x_tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tensor)
        loss = tf.reduce_sum(upstream * layer(x_tensor))
    grad_x, grad_new, grad_sigma = tape.gradient(loss, [x_tensor, layer.new_kernel.value, layer.sigma.value])

    def f(x_=x, new_=new, sigma_=1.3):
        return np.sum(upstream * np_logits(x_, np.concatenate([old, new_], axis=1), sigma_))

    assert_allclose(grad_x.numpy(), numeric_gradient(lambda v: f(x_=v), x), atol=1e-7)
    assert_allclose(grad_new.numpy(), numeric_gradient(lambda v: f(new_=v), new), atol=1e-7)
    assert_allclose(float(grad_sigma), numeric_gradient(lambda v: f(sigma_=v), 1.3), atol=1e-7)


def test_zero_feature_has_finite_gradient():
    layer = built_layer(units=3)
    x = tf.zeros((2, INPUT_DIM))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x))
    assert np.all(np.isfinite(tape.gradient(loss, x).numpy()))


def test_add_classes_keeps_old_weights_and_sigma_and_freezes_old_block():
    layer = built_layer(units=4)
    layer.sigma.assign(1.7)
    phase0 = layer.kernel.numpy()

    layer.add_classes(3)
    assert (layer.units, layer.old_units) == (7, 4)
    assert layer.kernel.shape == (INPUT_DIM, 7)
    assert_array_equal(layer.old_kernel.numpy(), phase0)
    assert float(layer.sigma.numpy()) == np.float32(1.7)
    assert np.abs(layer.new_kernel.numpy()).max() <= 1 / np.sqrt(INPUT_DIM)
    trainable = {id(w) for w in layer.trainable_weights}
    assert id(layer.old_kernel) not in trainable
    assert {id(layer.sigma), id(layer.new_kernel)} == trainable
    assert [id(w) for w in layer.non_trainable_weights] == [id(layer.old_kernel)]

    # The next phase folds old and new blocks into one frozen old block, as fc1 ← [fc1, fc2].
    phase1 = layer.kernel.numpy()
    layer.add_classes(2)
    assert (layer.units, layer.old_units) == (9, 7)
    assert_array_equal(layer.old_kernel.numpy(), phase1)
    assert len(layer.weights) == 3
    assert layer(features(3)).shape == (3, 9)


def test_add_classes_with_init_rows():
    layer = built_layer(units=4)
    init = np.random.default_rng(2).normal(size=(3, INPUT_DIM)).astype(np.float32)
    layer.add_classes(3, init=init)
    assert_array_equal(layer.new_kernel.numpy(), init.T)
    with pytest.raises(ValueError, match="one row per new class"):
        layer.add_classes(3, init=init.T)
    with pytest.raises(ValueError, match="build the layer first"):
        CosineLinear(4).add_classes(2)


def test_freeze_old_false_keeps_old_block_trainable():
    layer = built_layer(units=4, freeze_old=False)
    layer.add_classes(2)
    assert id(layer.old_kernel) in {id(w) for w in layer.trainable_weights}


def test_fit_after_add_classes_updates_new_block_only():
    x, y = features(16), np.arange(16) % 4
    model = keras.Sequential([keras.Input((INPUT_DIM,)), CosineLinear(2)])
    model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y % 2, epochs=1, batch_size=8, verbose=0)
    head = model.layers[-1]
    head.add_classes(2)
    # New variables: a fresh optimizer and compile, as LUCIR does every phase.
    model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    old, new, sigma = head.old_kernel.numpy(), head.new_kernel.numpy(), head.sigma.numpy()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert_array_equal(head.old_kernel.numpy(), old)
    assert not np.allclose(head.new_kernel.numpy(), new)
    assert head.sigma.numpy() != sigma


def test_imprint_weights_formula():
    rng = np.random.default_rng(3)
    per_class = [rng.normal(size=(n, INPUT_DIM)) for n in (5, 1, 9)]
    rows = imprint_weights(per_class, old_weight_norm=0.37)
    assert rows.shape == (3, INPUT_DIM) and rows.dtype == np.float32
    assert_allclose(np.linalg.norm(rows, axis=1), 0.37, rtol=1e-6)
    for row, feats in zip(rows, per_class):
        unit = [f / np.linalg.norm(f) for f in feats]
        mean = np.sum(unit, axis=0) / len(unit)
        assert_allclose(row, 0.37 * mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="class 1"):
        imprint_weights([per_class[0], np.zeros((0, INPUT_DIM))], 1.0)


def test_imprinted_head_rows_have_mean_old_norm_and_feature_direction():
    layer = built_layer(units=4)
    avg_norm = np.linalg.norm(layer.kernel.numpy(), axis=0).mean()
    per_class = [features(8, seed=s) + 3.0 * s for s in (4, 5)]
    layer.add_classes(2, init=imprint_weights(per_class, avg_norm))
    assert_allclose(np.linalg.norm(layer.new_kernel.numpy(), axis=0), avg_norm, rtol=1e-5)
    # The normalised mean of normalised features scores a cosine of exactly 1 on its own class.
    directions = np.stack([np_normalize(np_normalize(f, 1).mean(0), 0) for f in per_class])
    cosines = layer(directions, return_cosine=True).numpy()
    assert_allclose(np.diag(cosines[:, 4:]), 1.0, rtol=1e-6)


def grown(layer):
    layer.sigma.assign(1.4)
    layer.add_classes(3, init=features(3, seed=6))
    return layer


@pytest.mark.parametrize("after_add_classes", [False, True])
def test_shapes_config_and_keras_file_round_trip(tmp_path, after_add_classes):
    layer = built_layer(units=4, learn_sigma=True, name="head")
    if after_add_classes:
        grown(layer)
    check_layer(layer, features(5), (5, layer.units), tmp_path)
    # The frozen old block stays frozen in a copy made from the config.
    clone = CosineLinear.from_config(layer.get_config())
    clone.build((None, INPUT_DIM))
    assert [(w.name, w.trainable) for w in clone.weights] == [(w.name, w.trainable) for w in layer.weights]


@pytest.mark.parametrize("units", [2.5, "5", 0, True])
def test_units_that_are_not_a_whole_class_count_are_refused(units):
    # 2.5 became 2 units silently; "5" failed comparing str with int.
    with pytest.raises(ValueError, match="units must be a whole number >= 1"):
        CosineLinear(units)


@pytest.mark.parametrize("old_units", [1.5, -1, 3])
def test_an_old_block_that_is_not_a_whole_number_below_units_is_refused(old_units):
    # 1.5 became 1 silently.
    with pytest.raises(ValueError, match=r"old_units must be in \[0, units=3\)"):
        CosineLinear(3, old_units=old_units)
