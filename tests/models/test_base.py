"""TrainingModel: loss terms, several optimizers with signs, replica equality
(two devices, and two worker processes)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from helpers import multiworker
from helpers.every_model import every_model
from helpers.replicas import assert_replicas_agree, two_cpu_strategy
from helpers.two_player import SHAPE, TwoPlayer, build, state
from kerazoo.models import Classifier, TrainingModel
from kerazoo.models.base import dtype_policy_scope

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 1, (32, *SHAPE)).astype("float32")


def _views():
    noisy = IMAGES + RNG.normal(0, 0.05, IMAGES.shape).astype("float32")
    return tf.data.Dataset.from_tensor_slices((IMAGES, noisy)).batch(16, drop_remainder=True)


def test_each_group_follows_its_terms_with_its_sign():
    model = build()
    one_batch = _views().take(1)
    view1, view2 = next(iter(one_batch))
    bank_before = np.asarray(model.bank).copy()
    encoder_before = [np.asarray(w).copy() for w in model.encoder.trainable_weights]
    with tf.GradientTape(persistent=True) as tape:
        losses, _ = model.compute_losses((view1, view2), training=True)
    bank_gradient = tape.gradient(losses["bank"], model.bank)
    encoder_gradients = tape.gradient(losses["encoder"], model.encoder.trainable_weights)
    model.fit(one_batch, epochs=1, verbose=0)
    # The first step of SGD with momentum is w - lr*g: the bank (lr 0.1)
    # ascends on its term alone, the encoder (lr 0.05) descends on its own,
    # both from the same forward pass.
    np.testing.assert_allclose(model.bank, bank_before + 0.1 * bank_gradient, atol=1e-6)
    for weight, before, gradient in zip(model.encoder.trainable_weights, encoder_before, encoder_gradients):
        np.testing.assert_allclose(weight, before - 0.05 * gradient, atol=1e-6)
    after, _ = model.compute_losses((view1, view2), training=True)
    assert float(after["bank"]) > float(losses["bank"])  # ascent raised its loss


def test_metrics_track_every_term_and_the_total():
    model = build()
    history = model.fit(_views(), epochs=1, verbose=0)
    assert set(history.history) == {"loss", "encoder", "bank"}
    np.testing.assert_allclose(
        history.history["loss"][0], history.history["encoder"][0] + history.history["bank"][0], rtol=1e-5
    )


def test_every_optimizer_is_built_before_the_step_is_traced_once():
    # An optimizer built inside the first call makes TensorFlow trace the
    # whole step twice.
    model = build()
    traces = []
    compute_losses = model.compute_losses

    def counted(data, training):
        traces.append(training)
        return compute_losses(data, training)

    model.compute_losses = counted
    model.fit(_views(), epochs=2, verbose=0)
    assert len(traces) == 1
    assert model.optimizer.built and model.bank_optimizer.built


def test_every_update_waits_for_the_whole_backward_pass():
    # In the traced step, each variable update of either optimizer must come
    # after every op of the backward pass that feeds any update; an update
    # started while the backward pass still ran made MUNIT's translator
    # differ between runs of the same seed.
    model = build()
    spec = _views().element_spec
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    variables = {id(v.value.handle) for v in model.trainable_variables}
    handles = {id(placeholder) for outer, placeholder in graph.captures if id(outer) in variables}
    updates = [
        op
        for op in graph.get_operations()
        if op.type in ("AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp")
        and id(op.inputs[0]) in handles
    ]

    def ancestors(op):
        seen, todo = set(), [op]
        while todo:
            current = todo.pop()
            for parent in [t.op for t in current.inputs] + list(current.control_inputs):
                if parent.name not in seen:
                    seen.add(parent.name)
                    todo.append(parent)
        return seen

    per_update = [ancestors(op) for op in updates]
    backward = {name for names in per_update for name in names if name.startswith("gradient_tape/")}
    assert len(updates) >= len(model.trainable_variables) and backward
    for op, names in zip(updates, per_update):
        missing = backward - names
        assert not missing, f"{op.name} may start before {sorted(missing)[:3]}"


def test_two_optimizers_give_the_same_state_on_one_and_two_replicas():
    assert_replicas_agree(build, _views(), epochs=2, atol=1e-5, state=state)


def test_compiling_with_a_loss_is_refused():
    model = TwoPlayer()
    with pytest.raises(ValueError, match="computes its own loss terms"):
        model.compile("sgd", "sgd", loss="mse")


def _classifier():
    model = Classifier(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), num_classes=3)
    model.compile(optimizer="sgd")
    return model


@pytest.mark.parametrize("weights", ["sample_weight", "class_weight"])
def test_sample_and_class_weights_are_refused_not_ignored(weights):
    # Every compute_losses reads (inputs, targets): weights changed nothing.
    x, y = np.ones((8, 4), "float32"), np.arange(8) % 3
    given = (
        {"sample_weight": np.ones(8)}
        if weights == "sample_weight"
        else {"class_weight": {0: 5.0, 1: 1.0, 2: 1.0}}
    )
    model = _classifier()
    with pytest.raises(ValueError, match=r"no sample weights, so fit's sample_weight= and class_weight="):
        model.fit(x, y, verbose=0, **given)
    assert model.fit(x, y, verbose=0).history["loss"]  # the corrected call trains


def _trained_weights(policy, optimizer, steps=1):
    """The weights of a Dense classifier whose backbone computes under
    `policy`, after `steps` SGD steps from fixed initial weights."""
    with dtype_policy_scope(policy):
        backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu")])
    model = Classifier(backbone, num_classes=3)
    model(np.zeros((1, 4), "float32"))  # builds the head
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    model.compile(optimizer=optimizer)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 3, 16)
    model.fit(x, y, batch_size=16, epochs=steps, shuffle=False, verbose=0)
    return model, model.get_weights()


def test_an_optimizer_loss_scale_factor_scales_the_loss_it_unscales():
    # Keras' optimizers divide their gradients by `loss_scale_factor`: the
    # step must have multiplied the loss by it, or updates come out that
    # many times too small.
    _, plain = _trained_weights("float32", keras.optimizers.SGD(0.1))
    _, scaled = _trained_weights("float32", keras.optimizers.SGD(0.1, loss_scale_factor=128.0))
    for a, b in zip(plain, scaled):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_a_float16_backbone_trains_with_a_loss_scale_like_float32():
    # The backbone under mixed_float16 inside a float32 model: Keras would
    # not scale the loss (it looks at the model's own policy).
    model, half = _trained_weights("mixed_float16", keras.optimizers.SGD(0.1), steps=3)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(model.optimizer.step_counter.numpy()) == 3  # three finite steps, none skipped
    _, full = _trained_weights("float32", keras.optimizers.SGD(0.1), steps=3)
    start = _trained_weights("float32", keras.optimizers.SGD(0.0))[1]
    for h, f, s in zip(half, full, start):
        # float16's rounding, not a scale: the updates agree to 1 %.
        np.testing.assert_allclose(h - s, f - s, rtol=0.01, atol=2e-3 * np.abs(f - s).max())


def test_a_float16_step_that_overflows_is_skipped_and_the_scale_halved():
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0**40)
    model, weights = _trained_weights("mixed_float16", optimizer)
    start = _trained_weights("float32", keras.optimizers.SGD(0.0))[1]
    for w, s in zip(weights, start):
        np.testing.assert_array_equal(w, s)
    assert float(model.optimizer.dynamic_scale.numpy()) == 2.0**39


def test_a_float16_overflow_on_one_replica_is_skipped_by_both():
    # Keras' LossScaleOptimizer judges replica 0's gradients alone: replica
    # 1's overflow was applied and every weight became NaN.
    x = np.ones((4, 4), "float32")
    x[2:] = 3000.0  # replica 1's half of the global batch
    with dtype_policy_scope("mixed_float16"), two_cpu_strategy().scope():
        model = Classifier(keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)]), num_classes=3)
        model.compile(optimizer=keras.optimizers.SGD(0.01))
        model(x[:1])
    before = model.get_weights()
    model.fit(x, np.array([0, 1, 2, 0]), batch_size=4, epochs=1, shuffle=False, verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)
    assert float(model.optimizer.dynamic_scale.numpy()) == 2.0**14


def test_a_loss_scaled_group_without_gradients_steps_on_several_replicas():
    from kerazoo.models.base import _skipped_together

    strategy = two_cpu_strategy()
    with strategy.scope():
        optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    result = strategy.run(tf.function(lambda: _skipped_together([None], optimizer)))
    assert result == [None]


@pytest.mark.slow
def test_a_float16_overflow_on_one_worker_is_skipped_by_every_worker(tmp_path):
    # Each worker judged its own gradients: worker 0 applied its step and
    # waited forever in the all-reduce for worker 1, which had skipped it.
    workers = multiworker.start_workers([multiworker.__file__, "--overflow", str(tmp_path)])
    done = multiworker.finish(workers, timeout=180)
    assert all(code == 0 for code, _, _ in done), [err[-3000:] for _, _, err in done]
    first, second = (np.load(tmp_path / f"worker{i}.npz") for i in (0, 1))
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    assert first["scale"] == 2.0**14 and first["finite_steps"] == 0  # skipped, scale halved
    assert all(np.isfinite(first[key]).all() for key in first.files)


@pytest.mark.slow
def test_every_model_trains_in_mixed_float16_with_a_loss_scale_on_each_optimizer():
    with dtype_policy_scope("mixed_float16"):
        models = every_model()
    for name, (model, batch) in models.items():
        assert model.compute_dtype == "float16", name
        logs = model.fit(tf.data.Dataset.from_tensors(batch).repeat(2), shuffle=False, verbose=0).history
        assert all(np.isfinite(v[-1]) for v in logs.values()), (name, logs)
        for group in model.optimizer_groups():
            # Both steps went through the loss scale: each one skipped for an
            # overflow halves the scale and restarts step_counter, which
            # counts the finite steps applied since.
            optimizer = group.optimizer
            assert group.variables, (name, group.name)  # something to train
            assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer), (name, group.name)
            skipped = round(np.log2(2.0**15 / float(optimizer.dynamic_scale.numpy())))
            finite = int(optimizer.step_counter.numpy())
            assert skipped in (0, 1, 2) and (finite == 2 if not skipped else finite < 2), (name, group.name)


def _computing_layers(model):
    return [
        (type(layer).__name__, layer.dtype_policy.name)
        for layer in model._flatten_layers()
        if not isinstance(layer, (keras.Model, keras.layers.InputLayer))
    ]


@pytest.mark.slow
def test_every_model_loaded_under_another_global_policy_computes_in_its_saved_one(tmp_path):
    with dtype_policy_scope("mixed_bfloat16"):
        models = every_model()
    for name, (model, _) in models.items():
        model.save(tmp_path / f"{name}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{name}.keras")  # under float32
        assert _computing_layers(loaded) == _computing_layers(model), name
        assert "bfloat16" in {layer.compute_dtype for layer in loaded._flatten_layers()}, name


def test_a_float32_model_loaded_under_mixed_float16_keeps_its_optimizer_state(tmp_path):
    # Keras saves no policy for the functional backbone and its input: loaded
    # under mixed_float16 they claim float16, although nothing computes in it.
    model = Classifier(
        keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(4)]), 3
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(IMAGES[:8], np.arange(8) % 3, batch_size=4, verbose=0)
    model.save(tmp_path / "model.keras")
    with dtype_policy_scope("mixed_float16"):
        loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is keras.optimizers.SGD
    assert int(loaded.optimizer.iterations) == 2
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(saved))


def test_an_undeclared_term_is_named():
    class Sloppy(TrainingModel):
        loss_terms = ("a",)

        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x, training=False):
            return self.dense(x)

        def compute_losses(self, data, training):
            return {"a": ops.mean(self(data[0])), "b": ops.mean(self(data[0]))}, None

    model = Sloppy()
    model.compile(optimizer="sgd")
    with pytest.raises(KeyError, match=r"\['b'\] missing from its loss_terms"):
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)


def test_seed_generator_states_are_saved_and_restored_with_the_weights(tmp_path):
    """A dropout mask drawn after a restore is the one the saved run would
    have drawn next (Keras alone saves the weights, not the draws' state)."""

    class Dropped(TrainingModel):
        loss_terms = ("mse",)

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(4)
            self.dropout = keras.layers.Dropout(0.5, seed=1)

        def call(self, x, training=False):
            return self.dropout(self.dense(x), training=training)

        def compute_losses(self, data, training):
            return {"mse": ops.mean(self(data, training=training) ** 2)}, None

    model = Dropped()
    x = np.ones((8, 3), "float32")
    model(x, training=True)
    model.save_weights(tmp_path / "saved.weights.h5")
    expected = np.asarray(model(x, training=True))
    model(x, training=True)  # draws on
    model.load_weights(tmp_path / "saved.weights.h5")
    np.testing.assert_array_equal(np.asarray(model(x, training=True)), expected)


@pytest.mark.slow
def test_two_worker_processes_train_like_one_process(tmp_path):
    # MultiWorkerMirroredStrategy over two processes on loopback ports, one
    # replica each, against this process on the same global batches:
    # plain cross-entropy (with coupled weight decay), BNM on the
    # all-gathered target batch, BatchFormer attending over the all-gathered
    # batch and AdCo (its bank ascending, its key encoder an EMA), with
    # synchronized BatchNorm in each, so the statistics are the global batch's.
    (tmp_path / "initial").mkdir()
    initial = {}
    for name in multiworker.CASES:
        keras.utils.set_random_seed(0)
        initial[name] = multiworker.build(name).get_weights()
        multiworker.save_weights(tmp_path / "initial" / f"{name}.npz", initial[name])
    workers = multiworker.start_workers([multiworker.__file__, str(tmp_path)])
    done = multiworker.finish(workers)
    assert all(code == 0 for code, _, _ in done), [err[-3000:] for _, _, err in done]
    for name in multiworker.CASES:
        one_weights, one_history = multiworker.train(name, initial[name], tf.distribute.get_strategy())
        moved = max(float(np.abs(a - b).max()) for a, b in zip(one_weights, initial[name]))
        assert moved > 1e-3, f"{name}: training did not move the weights"
        # AdCo's bank ascends through a temperature of 0.02, which multiplies
        # rounding differences by 50: two devices in one process differ from
        # one device by as much (1.1e-4 on bank entries of up to 5.3).
        tolerance = {"rtol": 1e-4, "atol": 1e-5} if name == "adco_global" else {"atol": 1e-5}
        chief, other = (multiworker.load_weights(tmp_path / f"worker{i}" / f"{name}.npz") for i in (0, 1))
        for a, b, c in zip(chief, other, one_weights):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: the workers disagree")
            np.testing.assert_allclose(a, c, **tolerance, err_msg=f"{name}: two workers != one process")
        history = json.loads((tmp_path / "worker0" / f"{name}.json").read_text())
        assert history.keys() == one_history.keys()
        for key in history:
            np.testing.assert_allclose(history[key], one_history[key], rtol=1e-4, err_msg=f"{name}: {key}")
