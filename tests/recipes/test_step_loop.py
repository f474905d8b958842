import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo import backbones
from kerazoo.data import EpochCounter, train_dataset
from kerazoo.data.pipeline import all_epochs
from kerazoo.models import Classifier
from kerazoo.recipes.step_loop import StepLoop

X = np.random.default_rng(0).uniform(size=(70, 8, 8, 1)).astype("float32")
Y = np.arange(70) % 4
STEPS = 7  # batches of 10 an epoch


def _model():
    keras.utils.set_random_seed(0)
    model = Classifier(backbones.get("convnet", input_shape=(8, 8, 1), width=8), 4)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model(X[:1])
    model.optimizer.build(model.trainable_variables)
    return model


def _fit(model, steps_per_call, loop=None, epochs=3):
    counter = EpochCounter()
    data = train_dataset(X, Y, 10, seed=0, epoch_counter=counter)
    if loop is not None:
        loop.start(STEPS, steps_per_call)
        model.train_function = loop
    model.steps_per_execution = steps_per_call
    history = model.fit(
        all_epochs(data), epochs=epochs, steps_per_epoch=STEPS, callbacks=[counter], verbose=0, shuffle=False
    )
    return history.history["loss"], [np.array(v) for v in [*model.variables, *model.optimizer.variables]]


@pytest.mark.parametrize("steps_per_call", [3, 7, 32])
def test_the_loop_trains_as_keras_one_step_a_call_does(steps_per_call):
    expected_loss, expected = _fit(_model(), 1)
    model = _model()
    loss, got = _fit(model, steps_per_call, StepLoop(model))
    # Each epoch's mean loss is over that epoch's batches: no call crossed an epoch's end.
    assert loss == expected_loss
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_trace_serves_every_number_of_steps_per_call():
    model = _model()
    loop = StepLoop(model)
    for steps_per_call in (3, 7, 2):
        _fit(model, steps_per_call, loop, epochs=1)
    assert loop._steps.experimental_get_tracing_count() == 1


def test_under_a_mirrored_strategy_of_two_replicas():
    # conftest splits the CPU into two logical devices.
    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    with strategy.scope():
        reference, model = _model(), _model()
    expected_loss, expected = _fit(reference, 1, epochs=2)
    loss, got = _fit(model, 3, StepLoop(model), epochs=2)
    assert loss == expected_loss
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
