"""The official BNM code's inverse learning-rate schedule."""

import keras
import numpy as np

from kerazoo.schedules import InverseDecay


def test_values_and_serialization():
    schedule = InverseDecay(0.01)
    steps = np.array([0, 1, 400, 6004])
    expected = 0.01 * (1 + 0.001 * steps) ** -0.75
    np.testing.assert_allclose([float(schedule(s)) for s in steps], expected, rtol=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, InverseDecay) and restored.get_config() == schedule.get_config()


def test_an_optimizer_with_it_round_trips():
    optimizer = keras.optimizers.SGD(InverseDecay(1e-3), momentum=0.9, nesterov=True)
    restored = keras.optimizers.SGD.from_config(optimizer.get_config())
    assert isinstance(restored.learning_rate, InverseDecay) or float(restored.learning_rate) > 0
