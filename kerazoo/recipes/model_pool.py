"""Models kept with their traced training steps, for the later stages of
a process that train the same architecture (`Run.reuse(model, key)`)."""

import json

import keras

from kerazoo._keras_internals import learning_rate_schedule
from kerazoo.models import TrainingModel
from kerazoo.schedules import VariableLength


class ModelPool:
    """Trains a stage with a model kept from an earlier stage of the same
    kind, its variables set to the new model's initial values.

    A Keras model traces its training step the first time it trains, and a
    new model traces anew: 0.5–0.8 s a stage for the digits recipes, a
    quarter of LUCIR's run (every phase of every method on every seed is a
    new model). Stages that build the same architecture with the same
    settings, differing only in initial weights and data (one method's
    phase on another seed), can train one model object instead: `take`
    copies the new model's variables, and its optimizers' (slots, iteration
    count), into the kept model and returns it. The arithmetic is the same,
    so are the numbers.

    A key promises that everything a training step bakes in besides the
    variables (the method's Python settings: loss, number of old classes)
    is the same for every model given under it. What can differ between
    seeds is checked: the variables' shapes, dtypes and trainability and the
    optimizers' configurations. A learning-rate schedule's step counts
    (which follow the seed's data in LUCIR) are part of the configuration,
    unless the schedule is a `kerazoo.schedules.VariableLength`: then they
    are state, copied like the variables. When they differ, the new model is
    trained, and kept in place of the old.

    Example:

    ```python
    import keras
    import numpy as np
    from kerazoo.recipes.model_pool import ModelPool

    def build(seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        model.optimizer.build(model.trainable_variables)
        return model

    pool = ModelPool()
    first = pool.take("dense", build(0))
    fresh = build(1)
    second = pool.take("dense", fresh)
    print(second is first)  # True: the same object, now holding fresh's weights
    print(np.array_equal(second.get_weights()[0], fresh.get_weights()[0]))  # True
    ```
    """

    def __init__(self):
        self._models = {}

    def take(self, key, model, keep=True):
        """The model to train in place of `model` (built, compiled, its
        optimizers built): a kept one of the same kind under `key`, set to
        `model`'s state, or `model` itself.

        Args:
            key: the kind of stage (see the class docstring).
            model: the new model.
            keep: keep the returned model for later stages. False for a
                model that must outlive the process's later stages (it is
                exported): a kept one it replaces leaves the pool.
        """
        kept = self._models.get(key)
        if kept is None or kept is model or _signature(kept) != _signature(model):
            if keep:
                self._models[key] = model
            return model
        for target, source in zip(_state(kept), _state(model)):
            target.assign(source)
        if not keep:
            del self._models[key]
        return kept


def _optimizers(model):
    groups = model.optimizer_groups() if isinstance(model, TrainingModel) else []
    found = [g.optimizer for g in groups if g.optimizer is not None] or [model.optimizer]
    return list({id(o): o for o in found}.values())


def _lengths(model):
    schedules = (learning_rate_schedule(o) for o in _optimizers(model))
    return [s for s in schedules if isinstance(s, VariableLength)]


def _state(model):
    return [
        *model.variables,
        *(v for o in _optimizers(model) for v in o.variables),
        *(v for s in _lengths(model) for v in s.variables),
    ]


def _signature(model):
    return (
        type(model),
        [(tuple(v.shape), str(v.dtype), v.trainable) for v in _state(model)],
        [json.dumps(_unnamed(o.get_config()), sort_keys=True, default=repr) for o in _optimizers(model)],
    )


def _unnamed(config):
    # Keras numbers the names of later optimizers (adam, adam_1, ...).
    if isinstance(config, dict):
        if config.get("registered_name") == _VARIABLE_LENGTH:
            return VariableLength.structure(config["config"])  # its step counts are state
        return {k: _unnamed(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_unnamed(v) for v in config]
    return config


_VARIABLE_LENGTH = keras.saving.get_registered_name(VariableLength)
