"""CoupledWeightDecay equals PyTorch's weight decay; GradientAscent: the negated gradient through
any optimizer, coupled decay, serialization, replicas; copy keeps the wrappers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.replicas import two_cpu_strategy
from kerazoo.optimizers import CoupledWeightDecay, GradientAscent, copy, with_weight_decay

RNG = np.random.default_rng(0)


def _torch_sgd(w, grads, lr, momentum, weight_decay):
    """torch.optim.SGD's update written out: d = g + λ·w; buf = d (first
    step), then buf = μ·buf + d; w ← w − lr·buf."""
    w, buf = w.astype(np.float64), None
    for g in grads:
        d = g + weight_decay * w
        buf = d if buf is None else momentum * buf + d
        w = w - lr * buf
    return w


def _torch_adam(w, grads, lr, b1, b2, eps, weight_decay):
    """torch.optim.Adam (L2, not AdamW): the decay is added to the gradient."""
    w, m, v = w.astype(np.float64), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        d = g + weight_decay * w
        m, v = b1 * m + (1 - b1) * d, b2 * v + (1 - b2) * d * d
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w


@pytest.mark.parametrize("steps", [1, 2])
def test_coupled_weight_decay_equals_pytorch_sgd_with_momentum(steps):
    w0 = RNG.normal(size=(5, 3)).astype("float32")
    grads = [RNG.normal(size=(5, 3)).astype("float32") for _ in range(steps)]
    w = keras.Variable(w0)
    optimizer = with_weight_decay(keras.optimizers.SGD(0.1, momentum=0.9), 5e-2)
    for g in grads:
        optimizer.apply([g], [w])
    np.testing.assert_allclose(np.asarray(w), _torch_sgd(w0, grads, 0.1, 0.9, 5e-2), rtol=1e-5, atol=1e-6)
    if steps == 1:
        return  # one step from zero momentum: decoupled and coupled decay coincide
    # Keras' own weight_decay= is decoupled (outside momentum): a different update.
    keras_w = keras.Variable(w0)
    decoupled = keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=5e-2)
    for g in grads:
        decoupled.apply([g], [keras_w])
    assert np.abs(np.asarray(keras_w) - np.asarray(w)).max() > 1e-4


def test_coupled_weight_decay_equals_pytorch_adam_l2():
    w0 = RNG.normal(size=(4,)).astype("float32")
    grads = [RNG.normal(size=(4,)).astype("float32") for _ in range(3)]
    w = keras.Variable(w0)
    optimizer = CoupledWeightDecay(keras.optimizers.Adam(0.01, epsilon=1e-8), 0.1)
    for g in grads:
        optimizer.apply([g], [w])
    expected = _torch_adam(w0, grads, 0.01, 0.9, 0.999, 1e-8, 0.1)
    np.testing.assert_allclose(np.asarray(w), expected, rtol=1e-5, atol=1e-6)


def test_zero_weight_decay_returns_the_optimizer_and_copy_keeps_wrappers_and_scales_the_rate():
    sgd = keras.optimizers.SGD(0.1, momentum=0.9)
    assert with_weight_decay(sgd, 0.0) is sgd
    twin = copy(CoupledWeightDecay(sgd, 1e-4), "twin", learning_rate_scale=0.1)
    assert type(twin) is CoupledWeightDecay and twin.weight_decay == 1e-4 and twin.name == "twin"
    assert twin.inner_optimizer is not sgd and float(twin.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("wrapper", [CoupledWeightDecay, GradientAscent])
@pytest.mark.parametrize(
    "inner", [lambda: keras.optimizers.SGD(0.1, weight_decay=1e-4), lambda: keras.optimizers.AdamW(0.1)]
)
def test_a_wrapped_optimizer_with_keras_decoupled_decay_is_refused(wrapper, inner):
    # Both decays would apply, each silently.
    with pytest.raises(ValueError, match="decoupled weight_decay=.*coupled L2"):
        wrapper(inner(), weight_decay=5e-4)


def test_a_copy_of_a_loss_scaled_optimizer_scales_its_own_loss_from_the_start():
    scaled = keras.optimizers.LossScaleOptimizer(CoupledWeightDecay(keras.optimizers.SGD(0.1), 1e-4), 2.0**10)
    scaled.build([keras.Variable(1.0)])
    scaled.dynamic_scale.assign(2.0**5)  # what overflows did to the original
    twin = copy(scaled, "twin", learning_rate_scale=0.1)
    assert type(twin) is keras.optimizers.LossScaleOptimizer and twin.name == "twin"
    assert type(twin.inner_optimizer) is CoupledWeightDecay and twin.inner_optimizer.weight_decay == 1e-4
    assert float(twin.scale_loss(1.0)) == 2.0**10 and float(twin.learning_rate) == pytest.approx(0.01)


def test_a_copy_follows_a_fixed_rate_set_later_to_the_same_bits():
    adam = CoupledWeightDecay(keras.optimizers.Adam(0.05), 1e-4)
    twin = copy(adam, "twin", learning_rate_scale=0.1)
    # A rate given as float(float32(0.05)) × 0.1, not float32 0.05 × 0.1 (1 ulp apart).
    assert np.float32(twin.learning_rate) == np.float32(float(np.float32(0.05)) * 0.1)
    adam.learning_rate = 0.002  # what ReduceLROnPlateau and LearningRateScheduler do
    assert np.float32(twin.learning_rate) == np.float32(float(np.float32(0.002)) * 0.1)
    assert twin.inner_optimizer.get_config()["learning_rate"]["config"] == {"learning_rate_scale": 0.1}


def test_two_steps_equal_the_official_bank_update():
    # research/adco.md §2: g = −∂L/∂W; v ← 0.9·v + (g + 1e-4·W); W ← W − 3·v.
    w0 = RNG.normal(size=(4, 6)).astype("float32")
    grads = [RNG.normal(size=(4, 6)).astype("float32") for _ in range(2)]
    w = keras.Variable(w0)
    optimizer = GradientAscent(keras.optimizers.SGD(3.0, momentum=0.9), weight_decay=1e-4)
    expected, v = w0.astype(np.float64), 0.0
    for grad in grads:
        optimizer.apply([grad], [w])
        v = 0.9 * v + (-grad + 1e-4 * expected)
        expected = expected - 3.0 * v
    np.testing.assert_allclose(np.asarray(w), expected, rtol=1e-5, atol=1e-5)
    assert int(optimizer.iterations) == 2


def test_a_step_raises_the_loss():
    w = keras.Variable(np.array([1.0, -2.0], "float32"))
    optimizer = GradientAscent(keras.optimizers.Adam(0.1))
    loss = lambda: keras.ops.sum(w * w)  # noqa: E731
    before = float(loss())
    with tf.GradientTape() as tape:
        value = loss()
    optimizer.apply(tape.gradient(value, [w]), [w])
    assert float(loss()) > before


def test_it_round_trips_through_its_config_and_a_keras_file(tmp_path):
    optimizer = GradientAscent(keras.optimizers.SGD(3.0, momentum=0.9), weight_decay=1e-4)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(clone) is GradientAscent and clone.get_config() == optimizer.get_config()

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 1)), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is GradientAscent
    for a, b in zip(loaded.optimizer.variables, optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    assert int(loaded.optimizer.iterations) == 1


def test_two_replicas_apply_the_summed_gradient_once_like_one_device():
    w0 = RNG.normal(size=(3,)).astype("float32")
    x = RNG.normal(size=(4, 3)).astype("float32")

    def train(strategy):
        with strategy.scope():
            w = keras.Variable(w0)
            optimizer = GradientAscent(keras.optimizers.SGD(0.5, momentum=0.9), weight_decay=0.1)
            optimizer.build([w])

        def step(batch):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.tensordot(batch, w, 1) ** 2) / strategy.num_replicas_in_sync
            optimizer.apply(tape.gradient(loss, [w]), [w])

        data = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(x).repeat(2))
        for batch in data:
            strategy.run(tf.function(step), (batch,))
        return w

    one = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = train(two_cpu_strategy())
    replicas = [np.asarray(v) for v in two.value.values]
    assert len(replicas) == 2
    np.testing.assert_allclose(replicas[0], replicas[1])
    np.testing.assert_allclose(replicas[0], np.asarray(one), atol=1e-6)
    assert np.abs(np.asarray(one) - w0).max() > 1e-3
