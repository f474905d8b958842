"""The official BNM code's inverse schedule; the official BalancedSoftmax/BatchFormer warm-up cosine."""

import keras
import numpy as np

from kerazoo.schedules import InverseDecay, WarmupCosineDecay


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


def test_warmup_cosine_follows_the_official_cosine_annealing_lr_warmup():
    # utils.py CosineAnnealingLRWarmup(base_lr 0.05, warmup_lr 0.1, warmup 800, T_max 13000), eta_min 0.
    schedule = WarmupCosineDecay(0.05, 0.1, warmup_steps=800, decay_steps=13000)

    def official(e):
        if e < 800:
            return (0.1 - 0.05) / (800 - 1) * (e - 1) + 0.05
        return 0.1 * (1 + np.cos(np.pi * (e - 800) / (13000 - 800))) / 2

    steps = [0, 1, 2, 400, 799, 800, 801, 6900, 12999, 13000]
    np.testing.assert_allclose(
        [float(schedule(s)) for s in steps], [official(s) for s in steps], rtol=1e-5, atol=1e-8
    )  # float32 near the end
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == schedule.get_config()
