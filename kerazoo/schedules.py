"""Learning-rate schedules of the methods' official code that Keras lacks."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerazoo")
class InverseDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(i) = initial_learning_rate · (1 + gamma · i)^(−power), i the step.

    The "inv" schedule of the Caffe-era domain-adaptation code that BNM's
    official training uses (gamma 0.001, power 0.75).

    Example:

    ```python
    optimizer = keras.optimizers.SGD(InverseDecay(1e-3), momentum=0.9, nesterov=True)
    ```
    """

    def __init__(self, initial_learning_rate, gamma=0.001, power=0.75):
        self.initial_learning_rate = initial_learning_rate
        self.gamma = gamma
        self.power = power

    def __call__(self, step):
        step = ops.cast(step, "float32")
        return self.initial_learning_rate * ops.power(1.0 + self.gamma * step, -self.power)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "gamma": self.gamma,
                "power": self.power}


@keras.saving.register_keras_serializable(package="kerazoo")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`scale` × another learning-rate schedule (BatchFormer's 0.1× lr).

    Example: `ScaledSchedule(keras.optimizers.schedules.CosineDecay(0.05, 1000), 0.1)`.
    """

    def __init__(self, schedule, scale):
        self.schedule = schedule
        self.scale = scale

    def __call__(self, step):
        return self.scale * self.schedule(step)

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule), "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["scale"])
