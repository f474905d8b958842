"""The Keras (and TensorFlow) internals kerazoo relies on where they have no
public API, in one place. tests/test_keras_internals.py exercises each on
real objects, so that a release that changes one fails there, loudly,
instead of deep inside a training run.
"""

import contextlib
import json

import keras
import tensorflow as tf


def build_compiled_metrics(model, y_true, y_pred):
    """Build `model`'s compiled metrics for (y_true, y_pred) `KerasTensor`s.

    Keras builds them from the first batch read as (x, y); a model whose
    batches are not (x, y) (a domain adapter's ((x_s, y_s), x_t)) must build
    them itself, and only the private `_compile_metrics` allows it.
    """
    if model._compile_metrics is not None:
        model._compile_metrics.build(y_true, y_pred)


def unlock_state(layer):
    """Let a built layer create and drop variables again (Keras locks its
    state after `build`), as Keras' own `Dense.enable_lora` does."""
    layer._tracker.unlock()


def untrack_variable(layer, variable):
    """Stop `layer` tracking `variable` (it no longer belongs to its weights)."""
    layer._untrack_variable(variable)


def optimizer_variables_to_update(optimizer):
    """The variables `optimizer` was built for: what `apply(grads)` without
    variables updates (Keras keeps them in a private attribute)."""
    return optimizer._trainable_variables


def freeze(layer):
    """Make `layer`, its sublayers and their variables non-trainable.

    `layer.trainable = False` is skipped on Keras' TensorFlow backend when
    `layer.trainable` already reads False (its `__setattr__` drops the
    assignment of a value the attribute already holds), and a subclassed
    model deserialized with `trainable=False` reads False while the
    sublayers its `__init__` made are trainable: the assignment would leave
    them so. Calling the property's setter always reaches them.
    """
    keras.layers.Layer.trainable.fset(layer, False)


def sublayers(layer):
    """Every layer inside `layer`, recursively, including those of plain
    (non-Model) layers, which `Model.layers` does not reach."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


def forget_restored_epoch(model):
    """Make `model`'s next `fit` start at epoch 0 again. `BackupAndRestore`
    restores a killed fit by setting the model's private `_initial_epoch`,
    which Keras never resets: every later `fit` of that model object would
    skip as many epochs (a kept model, `Run.reuse`, training the next
    seed's stage after a resumed one)."""
    model._initial_epoch = None


def restored_epoch(model):
    """The epoch `BackupAndRestore` restored `model`'s fit to (0 or None when
    it started afresh)."""
    return model._initial_epoch


def backed_up_epochs(backup_dir):
    """How many epochs the `keras.callbacks.BackupAndRestore` backup in
    `backup_dir` holds (0 without one): the epoch a resumed fit starts at.
    Keras writes it to `training_metadata.json` and offers no reader."""
    metadata = backup_dir / "training_metadata.json"
    return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0


def backup_files(callback):
    """The files of a `keras.callbacks.BackupAndRestore`: (weights, metadata,
    previous weights, previous metadata). Keras keeps their paths in private
    attributes; the previous pair exists with `double_checkpoint=True`."""
    return (
        callback._weights_path,
        callback._training_metadata_path,
        callback._prev_weights_path,
        callback._prev_training_metadata_path,
    )


def reduces_across_workers(strategy):
    """Whether Keras reduces a step's logs across worker processes (a
    `MultiWorkerMirroredStrategy` with a cluster in `TF_CONFIG`): there it
    calls `strategy.reduce("MEAN", log, axis=0)`, which needs each log to
    have an axis 0. The mode is a private attribute of the strategy."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )


def symbolic_build_from_one_replica(model, iterator):
    """Build `model` (its variables, compiled metrics and optimizer) from the
    first batch of Keras' epoch `iterator`, as `Model.fit` does before its
    first step, from one replica's share of that batch.

    Keras 3 builds from the *mean over replicas* of the first batch, a
    reduction that `tf.distribute.MultiWorkerMirroredStrategy` cannot make
    of a nested batch (keras-team/keras#20585); the build only needs the
    shapes, which every replica's share has. `_symbolic_build` and the
    iterator's `(_, _, iterator)` triples are private to Keras.
    """
    strategy = model.distribute_strategy
    for _, _, batches in iterator:
        batch = next(batches)
        break
    first = tf.nest.map_structure(lambda value: strategy.experimental_local_results(value)[0], batch)
    with strategy.scope():
        model._symbolic_build(data_batch=first)


def tensorboard_writers(callback):
    """The summary writers of a `keras.callbacks.TensorBoard`: (train,
    validation). Keras creates them on first use behind private properties."""
    return callback._train_writer, callback._val_writer


def learning_rate_schedule(optimizer):
    """The `LearningRateSchedule` `optimizer` (or the optimizer it wraps,
    `inner_optimizer`) was made with, or None (the public `learning_rate`
    is the current rate)."""
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    schedule = optimizer._learning_rate
    return schedule if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) else None


def with_learning_rates(callback, logs):
    """`logs` with the learning rate(s) of the model's optimizer added, as a
    `keras.callbacks.TensorBoard` logs them at each epoch's end (private)."""
    return callback._collect_learning_rate(logs)


def set_keras_seed(seed):
    """What `keras.utils.set_random_seed` does to Keras' own state: record
    the seed and drop the global `SeedGenerator` (recreated from the Python
    generator on next use). Both live in Keras' private global state."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


def reduce_step_outputs(outputs, strategy):
    """A training step's outputs from `strategy.run` reduced to one value
    each, as Keras' own training loop reduces them (`reduction="auto"`;
    private to Keras' TensorFlow trainer)."""
    from keras.src.backend.tensorflow.trainer import reduce_per_replica

    return reduce_per_replica(outputs, strategy, reduction="auto")


@contextlib.contextmanager
def op_determinism(enabled):
    """TensorFlow op determinism on inside the block when `enabled`, and as
    it was before once the block ends. TensorFlow's public API can only turn
    it on (`tf.config.experimental.enable_op_determinism`), for the rest of
    the process: ops without a deterministic kernel then raise, and so do
    random ops while no seed is set. Turning it off needs TensorFlow's
    private config module."""
    from tensorflow.python.framework import config as tf_config

    before = tf_config.is_op_determinism_enabled()
    if enabled:
        tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if not before:
            tf_config.disable_op_determinism()
