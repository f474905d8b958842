import keras
import numpy as np
import tensorflow as tf

from kerazoo import backbones
from kerazoo.models import Classifier
from kerazoo.optimizers import with_weight_decay
from kerazoo.recipes.model_pool import ModelPool
from kerazoo.schedules import VariableLength

X = np.random.default_rng(0).uniform(size=(64, 8, 8, 1)).astype("float32")
Y = np.arange(64) % 4


def _model(seed, decay_steps=100, width=8, variable_length=False):
    keras.utils.set_random_seed(seed)
    model = Classifier(backbones.get("convnet", input_shape=(8, 8, 1), width=width), 4)
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps)
    schedule = VariableLength(schedule) if variable_length else schedule
    model.compile(optimizer=with_weight_decay(keras.optimizers.SGD(schedule, momentum=0.9), 5e-4))
    model(X[:1])
    model.optimizer.build(model.trainable_variables)
    return model


def _train(model, seed):
    data = tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(64, seed=seed).batch(16)
    model.fit(data, epochs=2, verbose=0, shuffle=False)
    return [np.array(v) for v in [*model.variables, *model.optimizer.variables]]


def test_a_kept_model_trains_as_the_new_one_would_with_its_step_traced_once():
    pool = ModelPool()
    first = pool.take("clf", _model(0))
    _train(first, 0)
    step = first.train_function
    kept = pool.take("clf", _model(1))
    assert kept is first
    # The same numbers as a new model of seed 1, trained on the same batches.
    for got, expected in zip(_train(kept, 1), _train(_model(1), 1), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert kept.train_function is step


def test_a_model_of_another_shape_or_schedule_is_trained_itself_and_kept():
    pool = ModelPool()
    first = pool.take("clf", _model(0))
    _train(first, 0)
    other_schedule = _model(1, decay_steps=99)
    assert pool.take("clf", other_schedule) is other_schedule
    assert pool.take("clf", _model(2, decay_steps=99)) is other_schedule
    wider = _model(3, width=16)
    assert pool.take("clf", wider) is wider
    assert pool.take("other key", _model(4)) is not first


def test_a_schedule_of_another_length_is_state_when_its_steps_are_variables():
    pool = ModelPool()
    first = pool.take("clf", _model(0, decay_steps=8, variable_length=True))
    _train(first, 0)
    step = first.train_function
    kept = pool.take("clf", _model(1, decay_steps=5, variable_length=True))
    assert kept is first
    # As a new model with the 5-step schedule trains: its rates, not the 8-step one's.
    fresh = _model(1, decay_steps=5, variable_length=True)
    for got, expected in zip(_train(kept, 1), _train(fresh, 1), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert kept.train_function is step


def test_a_model_taken_without_keeping_leaves_the_pool():
    pool = ModelPool()
    first = pool.take("clf", _model(0))
    assert pool.take("clf", _model(1), keep=False) is first  # e.g. the exported model
    second = _model(2)
    assert pool.take("clf", second) is second, "a later stage must not overwrite the exported model"
    assert pool.take("clf", _model(3), keep=False) is second
    fourth = _model(4)
    assert pool.take("clf", fourth) is fourth
