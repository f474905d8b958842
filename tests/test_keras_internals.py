"""kerazoo._keras_internals on real Keras objects: a Keras release that
renames or changes one of these internals fails here."""

import json
import pathlib

import keras
import numpy as np
import pytest

from kerazoo import _keras_internals as internals
from kerazoo.optimizers import with_weight_decay


def test_compiled_metrics_can_be_built_before_the_first_batch():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.compile(
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    internals.build_compiled_metrics(model, keras.KerasTensor((None,), "int32"), keras.KerasTensor((None, 4)))
    assert model._compile_metrics.built


def test_a_built_layer_can_swap_a_variable_once_unlocked():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    old = layer.kernel
    internals.unlock_state(layer)
    internals.untrack_variable(layer, old)
    new = layer.add_weight(shape=(3, 5), name="wider")
    assert [w.name for w in layer.weights] == ["bias", "wider"]
    assert new is layer.weights[-1]


def test_an_optimizer_knows_the_variables_it_was_built_for():
    variables = [keras.Variable(np.ones(2, "float32")), keras.Variable(np.ones(3, "float32"))]
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(variables)
    assert list(internals.optimizer_variables_to_update(optimizer)) == variables


def test_sublayers_reach_inside_plain_layers():
    inner = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2, name="attention")

    class Wrapper(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.attention = inner

        def call(self, x):
            return self.attention(x, x)

    inputs = keras.Input((4, 2))
    model = keras.Model(inputs, Wrapper()(inputs))
    names = [layer.name for layer in internals.sublayers(model)]
    assert "attention" in names and len(names) > len(model.layers)


@keras.saving.register_keras_serializable(package="tests")
class Parts(keras.Model):
    """A subclassed model that makes its part in `__init__`, as MUNITGenerator does."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.part = keras.layers.Dense(2)
        self.part.build((None, 3))

    def call(self, x):
        return self.part(x)


def test_freeze_reaches_the_parts_of_a_model_made_frozen():
    made_frozen = Parts(trainable=False)  # as `from_config` makes a model saved frozen
    made_frozen.trainable = False
    assert made_frozen.part.trainable and made_frozen.part.trainable_weights, "Keras skips the assignment"
    internals.freeze(made_frozen)
    assert not made_frozen.part.trainable and not made_frozen.part.trainable_weights
    assert not any(v.trainable for v in made_frozen.weights)


def test_the_epochs_a_backup_holds_are_read_from_keras_own_file(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    backup = tmp_path / "backup"
    assert internals.backed_up_epochs(backup) == 0
    model.fit(
        np.zeros((4, 2)),
        np.zeros((4, 1)),
        epochs=3,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)],
    )
    assert internals.backed_up_epochs(backup) == 3
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 3


def test_backup_files_are_where_keras_writes_them(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), double_checkpoint=True, delete_checkpoint=False)
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=2, verbose=0, callbacks=[backup])
    weights, metadata, prev_weights, prev_metadata = map(pathlib.Path, internals.backup_files(backup))
    assert all(p.is_file() for p in (weights, metadata, prev_weights, prev_metadata))
    assert (
        json.loads(metadata.read_text())["epoch"] == 2 and json.loads(prev_metadata.read_text())["epoch"] == 1
    )


def test_the_schedule_an_optimizer_was_made_with_is_found_inside_wrappers():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, 10)
    assert (
        internals.learning_rate_schedule(with_weight_decay(keras.optimizers.SGD(schedule), 1e-4)) is schedule
    )
    assert internals.learning_rate_schedule(keras.optimizers.SGD(0.1)) is None


def test_only_a_multi_worker_cluster_reduces_logs_across_workers():
    import tensorflow as tf

    assert not internals.reduces_across_workers(tf.distribute.get_strategy())
    assert not internals.reduces_across_workers(tf.distribute.OneDeviceStrategy("/cpu:0"))
    # tests/models/test_base.py trains across two worker processes.


def test_tensorboard_has_two_writers_and_adds_the_learning_rate(tmp_path):
    board = keras.callbacks.TensorBoard(str(tmp_path))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.25), "mse")
    board.set_model(model)
    train, validation = internals.tensorboard_writers(board)
    assert train is not validation and callable(train.as_default)
    assert internals.with_learning_rates(board, {"loss": 1.0}) == {"loss": 1.0, "learning_rate": 0.25}


def test_set_keras_seed_with_python_and_numpy_seeds_draws_as_set_random_seed():
    import random

    def draws():
        layer = keras.layers.Dense(3)
        layer.build((None, 2))  # initializers seeded from Python's generator
        return [np.array(layer.kernel), np.array(keras.random.uniform((4,))), np.random.uniform(size=2)]

    keras.utils.set_random_seed(5)
    expected = draws()
    keras.random.uniform((7,))  # moves the global SeedGenerator on
    random.seed(5)
    np.random.seed(5)
    internals.set_keras_seed(5)
    for got, want in zip(draws(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    from keras.src.utils import rng_utils

    assert rng_utils.get_random_seed() == 5


def test_step_outputs_of_two_replicas_reduce_to_one_value_each():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])  # conftest's logical devices

    @tf.function
    def step():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return internals.reduce_step_outputs(
            strategy.run(lambda: {"loss": tf.cast(replica, "float32")}), strategy
        )

    # Keras' "auto" reduction of a training step's logs: the first replica's value.
    assert step()["loss"].numpy() == 0.0


def test_op_determinism_is_on_inside_the_block_and_as_before_after_it():
    from tensorflow.python.framework import config as tf_config

    assert not tf_config.is_op_determinism_enabled()
    with internals.op_determinism(True):
        assert tf_config.is_op_determinism_enabled()
    assert not tf_config.is_op_determinism_enabled()
    with internals.op_determinism(False):
        assert not tf_config.is_op_determinism_enabled()


def test_a_restored_fit_leaves_its_epoch_on_the_model_until_forgotten(tmp_path):
    x, y = np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")

    class Killed(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("killed")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "a"))
    with pytest.raises(RuntimeError):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[backup, Killed()])
    assert model.fit(x, y, epochs=5, verbose=0, callbacks=[backup]).epoch == [3, 4]
    assert internals.restored_epoch(model) == 3
    fresh = keras.callbacks.BackupAndRestore(str(tmp_path / "b"))
    assert model.fit(x, y, epochs=5, verbose=0, callbacks=[fresh]).epoch == [3, 4]  # Keras' leftover
    internals.forget_restored_epoch(model)
    assert model.fit(x, y, epochs=5, verbose=0, callbacks=[fresh]).epoch == [0, 1, 2, 3, 4]
