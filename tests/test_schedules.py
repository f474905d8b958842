"""The official BNM code's inverse schedule; the official BalancedSoftmax/BatchFormer warm-up cosine;
Keras schedules whose step counts are variables."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.schedules import InverseDecay, ScaledSchedule, VariableLength, WarmupCosineDecay


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


def test_warmup_from_zero_never_goes_below_zero():
    # The official formula's step 0 lies below base: from base 0, an ascent step.
    schedule = WarmupCosineDecay(0.0, 0.1, warmup_steps=10, decay_steps=100)
    assert [float(schedule(s)) for s in (0, 1)] == [0.0, 0.0]
    np.testing.assert_allclose(float(schedule(2)), 0.1 / 9, rtol=1e-6)


COSINE = keras.optimizers.schedules.CosineDecay
PIECEWISE = keras.optimizers.schedules.PiecewiseConstantDecay
MAKERS = {
    "cosine": lambda n: COSINE(0.1, n),
    "cosine with alpha": lambda n: COSINE(0.05, n, alpha=0.01),
    "piecewise": lambda n: PIECEWISE([n // 2, n], [0.1, 0.01, 0.001]),
}


def _traced(schedule):
    # As a training step computes it: traced, through TensorFlow's graph optimizer.
    rate = tf.function(lambda step: schedule(step), autograph=False)
    return lambda steps: [float(rate(tf.constant(s, "int64"))) for s in steps]


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS)
def test_variable_length_gives_a_traced_steps_rates_to_the_bit_at_any_length(make):
    schedule = VariableLength(make(90))
    rates = _traced(schedule)
    for length in (90, 37, 211, 1234):
        for variable, count in zip(schedule.variables, VariableLength(make(length)).variables, strict=True):
            variable.assign(count)
        steps = range(0, length + 3)
        assert rates(steps) == _traced(make(length))(steps), length
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == VariableLength(make(1234)).get_config()
    structure, other_length = (
        VariableLength.structure(s.get_config()) for s in (restored, VariableLength(make(7)))
    )
    assert structure == other_length and structure["class"] == type(make(7)).__name__
    assert not {"decay_steps", "boundaries"} & set(structure)


def test_variable_length_leaves_the_wrapped_schedule_alone_and_refuses_what_it_cannot_vary():
    cosine = COSINE(0.1, 100)
    VariableLength(cosine).variables[0].assign(5)
    assert cosine.decay_steps == 100
    with pytest.raises(ValueError, match="wraps CosineDecay or PiecewiseConstantDecay; got InverseDecay"):
        VariableLength(InverseDecay(0.1))
    with pytest.raises(ValueError, match="without warm-up"):
        VariableLength(COSINE(0.0, 100, warmup_target=0.1, warmup_steps=10))
    with pytest.raises(ValueError, match="a step count must be a whole number, got 2.5"):
        VariableLength(PIECEWISE([2.5], [0.1, 0.01]))


def test_inverse_decay_refuses_a_negative_gamma():
    with pytest.raises(ValueError, match="InverseDecay needs gamma >= 0 and power >= 0"):
        InverseDecay(0.01, gamma=-0.01)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: InverseDecay(-1.0), "initial_learning_rate"),
        (lambda: WarmupCosineDecay(-0.1, 0.1, 4, 10), "initial_learning_rate"),
        (lambda: WarmupCosineDecay(0.05, -1.0, 4, 10), "warmup_learning_rate"),
        (lambda: ScaledSchedule(InverseDecay(0.1), -3.0), "scale"),
    ],
)
def test_a_negative_rate_is_refused(make, name):
    # It would climb the loss instead of descending it.
    with pytest.raises(ValueError, match=f"{name} must be >= 0"):
        make()
