"""Optimizer wrappers: coupled weight decay (PyTorch's meaning) and gradient ascent.

In kerazoo `weight_decay` always means what the methods' PyTorch code means:
an L2 term λ·w *added to the gradient* before the optimizer sees it, so it
goes through momentum (SGD) or the moment estimates (Adam), as
`torch.optim.SGD(weight_decay=λ)` and `torch.optim.Adam(weight_decay=λ)`
do. Keras' own `weight_decay=` argument is *decoupled* (w ← w − lr·λ·w,
outside momentum): with SGD momentum 0.9 it decays about 10× less for the
same λ, so kerazoo never passes it. `with_weight_decay` is the one place
every recipe and model gets its decay from.
"""

import keras
import tensorflow as tf
from keras import ops

from kerazoo._checks import check_non_negative
from kerazoo._keras_internals import optimizer_variables_to_update
from kerazoo.schedules import ScaledSchedule


def _coupled_l2(grads, variables, weight_decay):
    """grads + λ·w per variable. Under a strategy each replica adds its 1/N
    share, because the wrapped optimizer sums what the replicas hand it."""
    if not weight_decay:
        return list(grads)
    decay = weight_decay / tf.distribute.get_strategy().num_replicas_in_sync
    return [None if g is None else ops.add(g, decay * ops.cast(v, g.dtype)) for g, v in zip(grads, variables)]


class _GradientTransform(keras.optimizers.Optimizer):
    """An optimizer that rewrites the gradients (a subclass's
    `transform(grads, variables)`), then lets `optimizer` apply them.

    Its state is the wrapped optimizer's (slots, `iterations`); it works under
    a `tf.distribute` strategy like the wrapped optimizer. Build it over its
    variables inside `strategy.scope()` before `fit` (keras#23085: a second
    optimizer built inside the step fails); `kerazoo.recipes.runner.Run.fit`
    does that for every optimizer of a `TrainingModel`. Stateful `apply`
    only (no `stateless_apply`): the TensorFlow and PyTorch trainers.
    """

    def __init__(self, optimizer, weight_decay=0.0, name=None, **kwargs):
        if kwargs:
            raise ValueError(
                f"{type(self).__name__} takes no optimizer arguments ({', '.join(kwargs)}); set them "
                "on the wrapped optimizer."
            )
        check_non_negative(type(self).__name__, weight_decay=weight_decay)
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = keras.optimizers.get(optimizer)
        if self.inner_optimizer.weight_decay:
            # Both would apply: Keras' decoupled decay inside, the coupled L2 here.
            raise ValueError(
                f"{type(self).__name__}: the wrapped {type(self.inner_optimizer).__name__} has Keras' "
                f"decoupled weight_decay={self.inner_optimizer.weight_decay}; kerazoo's weight_decay is "
                f"coupled L2 (PyTorch's). Give it to {type(self).__name__}(weight_decay=...) and build the "
                "Keras optimizer without one."
            )
        if self.inner_optimizer.loss_scale_factor:
            # It would unscale gradients this wrapper has already changed.
            raise ValueError(
                f"{type(self).__name__}: the wrapped {type(self.inner_optimizer).__name__} has "
                f"loss_scale_factor={self.inner_optimizer.loss_scale_factor}; scale the loss outside "
                f"the wrapper instead: keras.optimizers.LossScaleOptimizer({type(self).__name__}(...))."
            )
        self.weight_decay = float(weight_decay)

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        variables = trainable_variables or optimizer_variables_to_update(self.inner_optimizer)
        if not self.built:
            self.build(variables)
        self.inner_optimizer.apply(self.transform(grads, variables), variables)

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
            "weight_decay": self.weight_decay,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(
            config.pop("optimizer"), custom_objects=custom_objects
        )
        return cls(optimizer, **config)


@keras.saving.register_keras_serializable(package="kerazoo")
class CoupledWeightDecay(_GradientTransform):
    """Wraps `optimizer` and adds λ·w to each gradient: PyTorch's weight decay.

    The wrapped optimizer receives ∇L + λ·w for each variable w it updates
    (every variable it is applied to: the methods' official code decays all
    parameters, BatchNorm's and biases included). With SGD momentum μ and a
    constant rate this is PyTorch's v ← μ·v + (g + λ·w), w ← w − lr·v (Keras'
    momentum form equals PyTorch's while the rate is constant); with Adam it
    is `torch.optim.Adam(weight_decay=λ)` (L2, not AdamW).

    Args:
        optimizer: a Keras optimizer (or its name or config), without Keras'
            own (decoupled) `weight_decay`.
        weight_decay: λ.
        name: the optimizer's name (Keras' default if None).

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.optimizers import CoupledWeightDecay

    optimizer = CoupledWeightDecay(keras.optimizers.SGD(0.1, momentum=0.9), 5e-4)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 4)), rng.integers(0, 3, 8), epochs=1, verbose=0)
    ```
    """

    def __init__(self, optimizer, weight_decay, name="coupled_weight_decay", **kwargs):
        super().__init__(optimizer, weight_decay, name=name, **kwargs)

    def transform(self, grads, variables):
        return _coupled_l2(grads, variables, self.weight_decay)


@keras.saving.register_keras_serializable(package="kerazoo")
class GradientAscent(_GradientTransform):
    """Wraps `optimizer` and hands it the *negated* gradient: ascent on the loss.

    The wrapped optimizer receives  −∇L + λ·w  for each variable w, with λ
    the optional `weight_decay` (coupled, as `CoupledWeightDecay`), added
    *after* the sign flip so that it still shrinks w while the loss ascends.
    AdCo's bank (Hu et al., CVPR 2021, the official training code) is exactly
    `GradientAscent(SGD(3.0, momentum=0.9), weight_decay=1e-4)` on its loss
    at τ_m = 0.02: the official update v ← 0.9·v + (g + 1e-4·W),
    W ← W − 3·v with g = −∂L/∂W.

    Args:
        optimizer: a Keras optimizer (or its name or config), without Keras'
            own (decoupled) `weight_decay`.
        weight_decay: λ of the coupled L2 term; 0 for none.
        name: the optimizer's name (Keras' default if None).

    Example:

    ```python
    import keras
    from kerazoo.optimizers import GradientAscent

    bank = keras.Variable([1.0, 2.0])
    bank_optimizer = GradientAscent(keras.optimizers.SGD(0.5), weight_decay=0.0)
    bank_optimizer.apply([keras.ops.ones(2)], [bank])  # the gradient of the bank's loss
    print(bank.numpy())  # [1.5 2.5]: the loss goes up
    ```

    References:
        - [Hu et al., AdCo: Adversarial Contrast for Efficient Learning of
          Unsupervised Representations from Self-Trained Negative Adversaries,
          CVPR 2021](https://arxiv.org/abs/2011.08435)
    """

    def __init__(self, optimizer, weight_decay=0.0, name="gradient_ascent", **kwargs):
        super().__init__(optimizer, weight_decay, name=name, **kwargs)

    def transform(self, grads, variables):
        negated = [None if g is None else ops.negative(g) for g in grads]
        return _coupled_l2(negated, variables, self.weight_decay)


def with_weight_decay(optimizer, weight_decay):
    """`optimizer` with kerazoo's (coupled) weight decay λ; itself when λ is 0.

    Args:
        optimizer: a Keras optimizer.
        weight_decay: λ, coupled (added to the gradient); 0 for none.

    Returns:
        A `CoupledWeightDecay` wrapping `optimizer`, or `optimizer` itself.

    Example:

    ```python
    import keras
    from kerazoo.optimizers import with_weight_decay

    sgd = keras.optimizers.SGD(0.05, momentum=0.9)
    optimizer = with_weight_decay(sgd, 5e-4)
    assert with_weight_decay(sgd, 0.0) is sgd
    ```
    """
    return CoupledWeightDecay(optimizer, weight_decay) if weight_decay else optimizer


class _FollowedRate:
    """`scale` × `optimizer`'s current learning rate, as a callable rate
    (Keras optimizers call it at every step)."""

    def __init__(self, optimizer, scale):
        self.optimizer = optimizer
        self.scale = scale

    def __call__(self):
        # The product in float64, rounded once: the bits of the float32 rate
        # a copy was given before it followed (0.05 × 0.1 in float32 is 1 ulp off).
        rate = ops.cast(self.optimizer.learning_rate, "float64") * self.scale
        return ops.cast(rate, "float32")

    def get_config(self):
        return {"learning_rate_scale": self.scale}


def copy(optimizer, name, learning_rate_scale=1.0):
    """A new, unbuilt optimizer like `optimizer` (same class, settings and
    wrappers, kerazoo's and Keras' `LossScaleOptimizer`, whose scale starts
    anew), named `name`, at `learning_rate_scale` × its learning rate.
    For a model's second optimizer (BatchFormer's 0.1× rate, MUNIT's
    discriminator).

    A schedule is wrapped in `ScaledSchedule`. A fixed rate is followed: the
    copy reads `optimizer`'s rate at every step, so a callback that changes
    it (`ReduceLROnPlateau`, `LearningRateScheduler`, which only see
    `model.optimizer`) changes the copy's too. Such a copy's config names the
    scale, not the optimizer it follows: rebuild it with `copy`, not
    `from_config`.

    Args:
        optimizer: a Keras optimizer, possibly wrapped by kerazoo.
        name: the copy's name.
        learning_rate_scale: factor on the learning rate (or schedule).

    Returns:
        A new, unbuilt optimizer.

    Example:

    ```python
    import keras
    from kerazoo.optimizers import copy, with_weight_decay

    optimizer = with_weight_decay(keras.optimizers.SGD(0.1, momentum=0.9), 5e-4)
    slow = copy(optimizer, "batchformer_sgd", learning_rate_scale=0.1)
    ```
    """
    if isinstance(optimizer, _GradientTransform):
        inner = copy(optimizer.inner_optimizer, f"{name}_inner", learning_rate_scale)
        return type(optimizer)(inner, optimizer.weight_decay, name=name)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        inner = copy(optimizer.inner_optimizer, f"{name}_inner", learning_rate_scale)
        return type(optimizer)(inner, optimizer.initial_scale, optimizer.dynamic_growth_steps, name=name)
    config = optimizer.get_config()
    rate = config["learning_rate"]
    if not isinstance(rate, dict):
        config["learning_rate"] = _FollowedRate(optimizer, learning_rate_scale)
    elif learning_rate_scale != 1.0:
        config["learning_rate"] = ScaledSchedule(
            keras.saving.deserialize_keras_object(rate), learning_rate_scale
        )
    config["name"] = name
    return type(optimizer).from_config(config)
