"""Learning-rate schedules: those of the methods' official code that Keras
lacks, and `VariableLength`, a Keras schedule whose step counts are state."""

import math
import numbers

import keras
import numpy as np
from keras import ops

from kerazoo._checks import check_non_negative


@keras.saving.register_keras_serializable(package="kerazoo")
class InverseDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(i) = initial_learning_rate · (1 + gamma · i)^(−power), i the step.

    The "inv" schedule of the Caffe-era domain-adaptation code that BNM's
    official training uses (gamma 0.001, power 0.75).

    Args:
        initial_learning_rate: lr(0).
        gamma: the decay's rate.
        power: the decay's exponent.

    Example:

    ```python
    import keras
    from kerazoo.schedules import InverseDecay

    schedule = InverseDecay(1e-3)
    print(float(schedule(0)), float(schedule(1000)))  # 0.001, 0.001 * 2 ** -0.75
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    ```

    References:
        - [Cui et al., Towards Discriminability and Diversity: Batch Nuclear-norm Maximization under Label
          Insufficient Situations, CVPR 2020](https://arxiv.org/abs/2003.12237)
    """

    def __init__(self, initial_learning_rate, gamma=0.001, power=0.75):
        if gamma < 0 or power < 0:
            raise ValueError(
                f"InverseDecay needs gamma >= 0 and power >= 0 (a decay), got gamma={gamma}, power={power}; "
                "a negative gamma makes 1 + gamma * step negative, and its power NaN."
            )
        _check_rates(type(self).__name__, initial_learning_rate=initial_learning_rate)
        self.initial_learning_rate = initial_learning_rate
        self.gamma = gamma
        self.power = power

    def __call__(self, step):
        step = ops.cast(step, "float32")
        return self.initial_learning_rate * ops.power(1.0 + self.gamma * step, -self.power)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "gamma": self.gamma, "power": self.power}


@keras.saving.register_keras_serializable(package="kerazoo")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`scale` × another learning-rate schedule (BatchFormer's 0.1× lr).

    Args:
        schedule: a `LearningRateSchedule`.
        scale: the factor.

    Example:

    ```python
    import keras
    from kerazoo.schedules import ScaledSchedule

    schedule = ScaledSchedule(keras.optimizers.schedules.CosineDecay(0.05, 1000), 0.1)
    print(float(schedule(0)))  # 0.005
    ```

    References:
        - [Hou et al., BatchFormer: Learning to Explore Sample Relationships for Robust Representation
          Learning, CVPR 2022](https://arxiv.org/abs/2203.01522)
    """

    def __init__(self, schedule, scale):
        _check_rates(type(self).__name__, scale=scale)
        self.schedule = schedule
        self.scale = scale

    def __call__(self, step):
        return self.scale * self.schedule(step)

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule), "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["scale"])


@keras.saving.register_keras_serializable(package="kerazoo")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine decay: the official BalancedSoftmax / BatchFormer schedule.

    The code's `CosineAnnealingLRWarmup` (which it steps once per epoch; this
    schedule counts optimizer steps, so give it W and T in steps): a linear warm-up
    from `initial_learning_rate` up to `warmup_learning_rate`, then a cosine
    decay from `warmup_learning_rate` to `end_learning_rate`. With W the
    warm-up steps and T the total steps, at step i (0-based)

        i <  W:  lr = base + (peak − base) · (i − 1) / (W − 1)
        i >= W:  lr = end + (peak − end) · (1 + cos(π (i − W) / (T − W))) / 2

    (the code's `(last_epoch − 1)`: step 1 is at `base`, step 0 slightly
    below it), but never below 0: from `base` 0 the code's step 0 would be
    negative, a step uphill (kerazoo's deviation; no effect when
    base ≥ peak / W). CIFAR-100-LT: base 0.05, peak 0.1, W 37 epochs and T 591
    epochs of 21 steps (777 and 12,411 steps).

    Args:
        initial_learning_rate: `base`, where the warm-up starts.
        warmup_learning_rate: `peak`, where the warm-up ends and the cosine starts.
        warmup_steps: W (at least 2, as the code asserts).
        decay_steps: T, the total number of steps.
        end_learning_rate: the cosine's floor (the code's `eta_min`, 0).

    Example:

    ```python
    import keras
    from kerazoo.schedules import WarmupCosineDecay

    schedule = WarmupCosineDecay(0.05, 0.1, warmup_steps=800, decay_steps=13000)
    print(float(schedule(800)), float(schedule(13000)))  # 0.1 at the peak, 0.0 at the end
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    ```

    References:
        - [Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, ICLR
          2017](https://arxiv.org/abs/1608.03983)
        - [Ren et al., Balanced Meta-Softmax for Long-Tailed Visual Recognition, NeurIPS
          2020](https://arxiv.org/abs/2007.10740)
        - [Hou et al., BatchFormer: Learning to Explore Sample Relationships for Robust Representation
          Learning, CVPR 2022](https://arxiv.org/abs/2203.01522)
    """

    def __init__(
        self, initial_learning_rate, warmup_learning_rate, warmup_steps, decay_steps, end_learning_rate=0.0
    ):
        if warmup_steps < 2 or decay_steps <= warmup_steps:
            raise ValueError(
                f"WarmupCosineDecay needs 2 <= warmup_steps < decay_steps, got {warmup_steps} and "
                f"{decay_steps}."
            )
        _check_rates(
            type(self).__name__,
            initial_learning_rate=initial_learning_rate,
            warmup_learning_rate=warmup_learning_rate,
            end_learning_rate=end_learning_rate,
        )
        self.initial_learning_rate = initial_learning_rate
        self.warmup_learning_rate = warmup_learning_rate
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate

    def __call__(self, step):
        step = ops.cast(step, "float32")
        base, peak, end = self.initial_learning_rate, self.warmup_learning_rate, self.end_learning_rate
        warm, total = float(self.warmup_steps), float(self.decay_steps)
        rising = ops.maximum(base + (peak - base) * (step - 1.0) / (warm - 1.0), 0.0)
        progress = ops.minimum((step - warm) / (total - warm), 1.0)
        falling = end + (peak - end) * (1.0 + ops.cos(np.pi * progress)) / 2.0
        return ops.where(step < warm, rising, falling)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "warmup_learning_rate": self.warmup_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
        }


# The step counts a Keras schedule reads, by schedule class.
_STEP_COUNTS = {
    keras.optimizers.schedules.CosineDecay: ("decay_steps",),
    keras.optimizers.schedules.PiecewiseConstantDecay: ("boundaries",),
}


@keras.saving.register_keras_serializable(package="kerazoo")
class VariableLength(keras.optimizers.schedules.LearningRateSchedule):
    """A Keras schedule whose step counts are read from variables.

    A traced training step bakes a schedule's numbers into its graph, so a
    model that trains stages of other lengths with one traced step (a
    kept model, `kerazoo.recipes.model_pool`: one LUCIR phase on seeds
    whose class orders give different numbers of images) needs them as
    state: here `decay_steps` of `CosineDecay` and `boundaries` of
    `PiecewiseConstantDecay` are non-trainable int64 variables.

    In a traced step the rates are those of the wrapped schedule to the
    last bit. Keras' `CosineDecay` divides by `decay_steps`, and TensorFlow's
    graph optimizer computes a division by a constant as a multiplication
    by its reciprocal (one ulp apart at some steps, enough to move a
    LUCIR run's accuracies by up to two points); the cosine here
    multiplies by the reciprocal too (tests/test_schedules.py holds the two
    to the same bits). Eager calls of Keras' schedule divide.

    Args:
        schedule: a `keras.optimizers.schedules.CosineDecay` (without
            warm-up) or `PiecewiseConstantDecay`; left as it is (a copy is
            wrapped).

    Example:

    ```python
    import keras
    from kerazoo.schedules import VariableLength

    schedule = VariableLength(keras.optimizers.schedules.CosineDecay(0.1, 100))
    print(float(schedule(50)))  # 0.05
    schedule.variables[0].assign(200)
    print(float(schedule(50)))  # 0.0853..., as CosineDecay(0.1, 200)
    ```
    """

    def __init__(self, schedule):
        names = _STEP_COUNTS.get(type(schedule))
        if names is None:
            raise ValueError(
                f"VariableLength wraps {' or '.join(c.__name__ for c in _STEP_COUNTS)}; got "
                f"{type(schedule).__name__}. Pass the schedule itself, not wrapped in another."
            )
        if getattr(schedule, "warmup_target", None) is not None:
            raise ValueError("VariableLength wraps a CosineDecay without warm-up (warmup_target=None).")
        self.schedule = type(schedule).from_config(schedule.get_config())
        self.variables = []
        for name in names:
            setattr(self.schedule, name, keras.tree.map_structure(self._variable, getattr(schedule, name)))

    def _variable(self, count):
        variable = keras.Variable(_count(count), dtype="int64", trainable=False, name="step_count")
        self.variables.append(variable)
        return variable

    def __call__(self, step):
        if not isinstance(self.schedule, keras.optimizers.schedules.CosineDecay):
            return self.schedule(step)  # its boundaries only compare
        cosine = self.schedule
        learning_rate = ops.convert_to_tensor(cosine.initial_learning_rate)
        dtype = learning_rate.dtype
        total = ops.cast(cosine.decay_steps, dtype)
        fraction = ops.multiply(ops.minimum(ops.cast(step, dtype), total), ops.reciprocal(total))
        decayed = 0.5 * (1.0 + ops.cos(ops.multiply(ops.array(math.pi, dtype=dtype), fraction)))
        return ops.multiply(learning_rate, (1 - cosine.alpha) * decayed + cosine.alpha)

    @staticmethod
    def structure(config):
        """A `VariableLength`'s `get_config()` without its step counts: what
        a training step traced with the schedule bakes in."""
        inner = config["schedule"]
        names = next(n for c, n in _STEP_COUNTS.items() if c.__name__ == inner["class_name"])
        return {"class": inner["class_name"], **{k: v for k, v in inner["config"].items() if k not in names}}

    def get_config(self):
        config = self.schedule.get_config()
        for name in _STEP_COUNTS[type(self.schedule)]:
            config[name] = keras.tree.map_structure(lambda v: int(ops.convert_to_numpy(v)), config[name])
        return {"schedule": keras.saving.serialize_keras_object(type(self.schedule).from_config(config))}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]))


def _check_rates(owner, **rates):
    # Only the numbers: a rate may also be a schedule object.
    check_non_negative(owner, **{name: v for name, v in rates.items() if isinstance(v, numbers.Real)})


def _count(value):
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"VariableLength: a step count must be a whole number, got {value!r}.")
    return int(value)
