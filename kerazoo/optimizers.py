"""GradientAscent: any Keras optimizer, stepping up its loss instead of down."""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="kerazoo")
class GradientAscent(keras.optimizers.Optimizer):
    """Wraps `optimizer` and hands it the *negated* gradient: ascent on the loss.

    The wrapped optimizer receives  −∇L + λ·w  for each variable w, with λ
    the optional `coupled_weight_decay`: an L2 term added to the gradient
    (so it goes through momentum, as PyTorch's `SGD(weight_decay=...)`),
    and added *after* the sign flip so that it still shrinks w while the
    loss ascends. AdCo's bank (research/adco.md §2) is exactly
    `GradientAscent(SGD(3.0, momentum=0.9), coupled_weight_decay=1e-4)` on
    its loss at τ_m = 0.02: the official update v ← 0.9·v + (g + 1e-4·W),
    W ← W − 3·v with g = −∂L/∂W (Keras' momentum form m·v − lr·g equals
    PyTorch's while lr is constant, as the bank's is). Keras' own
    `weight_decay=` is decoupled (w ← w − lr·wd·w, outside momentum) and is
    not what the official code does.

    Its state is the wrapped optimizer's (slots, `iterations`); it works
    under a `tf.distribute` strategy like the wrapped optimizer (gradients
    summed over replicas, then applied once per replica), each replica
    adding 1/N of the decay so the sum carries it once. Build it over its
    variables inside `strategy.scope()` before `fit` (keras#23085: a second
    optimizer built inside the step fails); `kerazoo.recipes.runner.Run.fit`
    does that for every optimizer of a `TrainingModel`. Stateful `apply`
    only (no `stateless_apply`): the TensorFlow and PyTorch trainers.

    Args:
        optimizer: a Keras optimizer (or its name or config).
        coupled_weight_decay: λ of the L2 term above; 0 for none.

    Example:

    ```python
    bank_optimizer = kerazoo.optimizers.GradientAscent(
        keras.optimizers.SGD(3.0, momentum=0.9), coupled_weight_decay=1e-4)
    bank_optimizer.apply(gradients_of_the_bank_loss, [bank])   # the loss goes up
    ```
    """

    def __init__(self, optimizer, coupled_weight_decay=0.0, name="gradient_ascent", **kwargs):
        if kwargs:
            raise ValueError(
                f"GradientAscent takes no optimizer arguments ({', '.join(kwargs)}); set them "
                "on the wrapped optimizer."
            )
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = keras.optimizers.get(optimizer)
        self.coupled_weight_decay = float(coupled_weight_decay)

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        variables = trainable_variables or self.inner_optimizer._trainable_variables
        if not self.built:
            self.build(variables)
        # Under a strategy the wrapped optimizer sums what each replica hands
        # it, so each replica adds its share of the decay.
        decay = self.coupled_weight_decay / tf.distribute.get_strategy().num_replicas_in_sync
        ascent = [
            None if g is None else ops.add(ops.negative(g), decay * ops.cast(v, g.dtype))
            for g, v in zip(grads, variables)
        ]
        self.inner_optimizer.apply(ascent, variables)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        # The base class sets it (to 0, unused) before the wrapped optimizer exists.
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "coupled_weight_decay": self.coupled_weight_decay,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(config.pop("optimizer"), custom_objects=custom_objects)
        return cls(optimizer, **config)
