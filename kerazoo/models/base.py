"""The training-step base every kerazoo model stands on."""

import contextlib
import dataclasses

import keras
import tensorflow as tf
from keras import ops

from kerazoo import _keras_internals as keras_internals


@contextlib.contextmanager
def dtype_policy_scope(policy):
    """Keras' global dtype policy set to `policy` inside the block, the previous one after it.

    Models use it for the sublayers they build in `__init__` from their
    arguments (`with dtype_policy_scope(self.dtype_policy)`): loaded from a
    file under another global policy, a model gets its saved policy from
    its config, and its sublayers must get it too (a `mixed_bfloat16` AdCo
    loaded under float32 otherwise computed its heads in float32). Keras'
    global policy is per thread.

    Args:
        policy: a policy name (`"mixed_bfloat16"`) or a `keras.DTypePolicy`.

    Example:

    ```python
    import keras
    from kerazoo.models.base import dtype_policy_scope

    with dtype_policy_scope("mixed_bfloat16"):
        dense = keras.layers.Dense(4)
    assert dense.compute_dtype == "bfloat16" and keras.config.dtype_policy().name == "float32"
    ```
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@dataclasses.dataclass
class OptimizerGroup:
    """One optimizer, the variables it updates and the loss terms it follows.

    A group ascends when its optimizer does: wrap it in
    `kerazoo.optimizers.GradientAscent` (AdCo's negatives).

    Args:
        name: a label for logs and errors.
        optimizer: a Keras optimizer (built by `TrainingModel.build_optimizers`
            before the first step is traced, and by the runner inside
            `strategy.scope()` before any checkpoint is restored).
        variables: the variables this optimizer updates.
        terms: names of the loss terms whose sum it follows; None = every term.

    Example:

    ```python
    import keras
    from kerazoo.models import OptimizerGroup

    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    group = OptimizerGroup("head", keras.optimizers.SGD(0.1), dense.trainable_variables, terms=("ce",))
    ```
    """

    name: str
    optimizer: object
    variables: list
    terms: tuple = None


class TrainingModel(keras.Model):
    """A `keras.Model` whose subclass writes only its loss terms.

    A subclass names its loss terms in `loss_terms` and implements
    `compute_losses(data, training)`, which returns
    `(losses, outputs)`: a dict of scalar loss terms (means over the
    replica's batch, unscaled) and the predictions that compiled metrics
    score (or None). The base then, per training step:

    1. sums the terms each optimizer follows (`optimizer_groups`);
    2. divides the sums by the number of replicas: gradients are *summed*
       across replicas, and Keras only scales its own per-sample losses, so
       hand-written batch means must be scaled here for N replicas on a
       global batch to train like one device on that batch;
    3. applies each group's gradients with its optimizer (a
       `GradientAscent` optimizer steps up its sum), each sum first
       scaled by the optimizer's `scale_loss` (float16: `loss_scaled`);
    4. tracks the total (`loss`) and every term as metrics, and updates the
       compiled metrics with `metric_targets(data, outputs)`.

    `test_step` computes the same terms with `training=False`.

    A model with one optimizer needs nothing more than
    `compile(optimizer=..., metrics=...)`. A model with several overrides
    `optimizer_groups()` and returns one `OptimizerGroup` per optimizer,
    each over its own variables; `Run.fit` builds all of them inside the
    strategy scope before resuming, so every optimizer's state is saved and
    restored with the weights (an optimizer stored as a model attribute is
    part of `save_weights`).

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.models import TrainingModel

    class Regression(TrainingModel):
        loss_terms = ("mse",)

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(1)

        def call(self, x, training=False):
            return self.dense(x)

        def compute_losses(self, data, training):
            x, y = data
            prediction = self(x, training=training)
            return {"mse": keras.ops.mean((prediction - y) ** 2)}, prediction

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    model = Regression()
    model.compile(optimizer="sgd")
    model.fit(x, x.sum(axis=1, keepdims=True), batch_size=8, epochs=1, verbose=0)
    ```
    """

    # Names of the terms `compute_losses` returns: each gets a metric.
    loss_terms = ()

    def compute_losses(self, data, training):
        """(dict of scalar loss terms, outputs for compiled metrics or None)."""
        raise TypeError(f"{type(self).__name__} must implement compute_losses(data, training).")

    # Keras saves each layer's weights but not its `SeedGenerator` states
    # (dropout masks, MUNIT's styles, GITAugment's draws), so a model restored
    # from a backup would draw other random numbers than the run it resumes.
    # The model saves them all with its own variables, under their own keys.
    _SEED_KEY = "seed_state_"

    def _seed_states(self):
        return [v for v in self.variables if v.path.endswith("seed_generator_state")]

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, state in enumerate(self._seed_states()):
            store[f"{self._SEED_KEY}{i}"] = state

    def load_own_variables(self, store):
        keys = list(store.keys())
        super().load_own_variables({k: store[k] for k in keys if not k.startswith(self._SEED_KEY)})
        for i, state in enumerate(self._seed_states()):
            if f"{self._SEED_KEY}{i}" in keys:  # files written before kerazoo saved them have none
                state.assign(store[f"{self._SEED_KEY}{i}"])

    def optimizer_groups(self):
        """The optimizers and what each updates; default: `self.optimizer`
        descending on every term over every trainable variable."""
        return [OptimizerGroup("model", self.optimizer, self.trainable_variables)]

    def metric_targets(self, data, outputs):
        """(labels, predictions) for the compiled metrics, or None.

        Default: the labels of an `(x, y)` batch against `outputs`.
        """
        if outputs is None or not isinstance(data, (tuple, list)) or len(data) < 2:
            return None
        return data[1], outputs

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        if loss is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own loss terms (compute_losses); "
                "compile it with an optimizer and metrics only, without `loss`."
            )
        optimizer = self.loss_scaled(keras.optimizers.get(optimizer))
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", *self.loss_terms)}
        # Untracked, like Keras' own compile-time metrics: a model is often
        # compiled after it was built, when Keras refuses to track new state.
        object.__setattr__(self, "_trackers", trackers)

    def loss_scaled(self, optimizer):
        """`optimizer` in Keras' `LossScaleOptimizer` if a layer of this model
        computes in float16 (the `mixed_float16` policy), else itself.

        float16 gradients underflow without loss scaling. Keras wraps a
        model's optimizer only when the model's own policy is float16; a
        float16 backbone in a float32 model needs it as much, and so does
        every optimizer of a model that has several (`compile` wraps the
        main one; a subclass wraps each other one with this). `optimize`
        scales each group's objective with its optimizer's `scale_loss`.

        Args:
            optimizer: a Keras optimizer, or None.

        Returns:
            A `LossScaleOptimizer` around `optimizer`, or `optimizer` itself
            (None, already loss-scaled, or no float16 layer).

        Example:

        ```python
        import keras
        from kerazoo.models import Classifier

        keras.config.set_dtype_policy("mixed_float16")
        backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
        keras.config.set_dtype_policy("float32")
        model = Classifier(backbone, num_classes=3)
        print(type(model.loss_scaled(keras.optimizers.SGD(0.1))).__name__)  # LossScaleOptimizer
        ```
        """
        if optimizer is None or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer
        # Containers and inputs compute nothing, and Keras saves no policy
        # for them: loaded under a float16 global policy they claim float16.
        computing = (
            layer
            for layer in self._flatten_layers()
            if not isinstance(layer, (keras.Model, keras.layers.InputLayer))
        )
        if any(layer.compute_dtype == "float16" for layer in computing):
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def compile_from_config(self, config):
        """Recompile a loaded model with its saved optimizer and metrics
        (Keras skips a custom `compile` with a warning); each optimizer is
        built over its own variables, as in training, so its state loads."""
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)  # always None here: the terms are the loss
        self.compile(**config)
        if self.built:
            self.build_optimizers()

    def build_optimizers(self):
        """Build every unbuilt optimizer of `optimizer_groups()` over its
        variables (call it in the strategy's scope that trains the model)."""
        for group in self.optimizer_groups():
            if group.optimizer is not None and not group.optimizer.built:
                group.optimizer.build(group.variables)

    def make_train_function(self, force=False):
        # Keras builds only `self.optimizer` before the step is traced. An
        # optimizer built inside the first call creates variables there, and
        # TensorFlow then traces the whole step a second time (the two-domain
        # MUNIT of the docstring: 15 s of tracing instead of 8).
        if all(layer.built for layer in self._flatten_layers()):
            with self.distribute_strategy.scope():
                self.build_optimizers()
        return super().make_train_function(force)

    @property
    def metrics(self):
        trackers = list(getattr(self, "_trackers", {}).values())
        # Keras' own loss tracker (also named "loss") stays unused: the base
        # tracks the total itself.
        own = {id(m) for m in trackers}
        others = [m for m in super().metrics if id(m) not in own and m.name != "loss"]
        return trackers + others

    def _track(self, losses, data, outputs):
        if not hasattr(self, "_trackers"):
            raise RuntimeError(f"Compile {type(self).__name__} before training or evaluating it.")
        # (train_on_batch passes (x, y, None).)
        if isinstance(data, (tuple, list)) and len(data) > 2 and any(d is not None for d in data[2:]):
            # Keras appends sample weights as a third element, which every
            # compute_losses ignored: the weights changed nothing, silently.
            # Raised while Keras traces its step: drop the half-traced
            # functions, which a corrected fit would reuse and fail on.
            self.train_function = self.test_function = None
            raise ValueError(
                f"{type(self).__name__} got sample weights (batches of {len(data)} elements); its loss terms take "
                "(inputs, targets) and no sample weights, so fit's sample_weight= and class_weight= "
                "(and a dataset yielding (x, y, weights)) would change nothing. For skewed classes use "
                "a loss that weighs them (e.g. kerazoo.losses.balanced_softmax_loss) or resample the data."
            )
        undeclared = sorted(set(losses) - set(self.loss_terms))
        if undeclared:
            raise KeyError(
                f"{type(self).__name__}.compute_losses returned terms {undeclared} missing "
                f"from its loss_terms {self.loss_terms}; declare every term."
            )
        self._trackers["loss"].update_state(ops.sum(ops.stack(list(losses.values()))))
        for name, value in losses.items():
            self._trackers[name].update_state(value)
        targets = self.metric_targets(data, outputs)
        if targets is None:
            logs = self.get_metrics_result()
        else:
            logs = self.compute_metrics(None, targets[0], targets[1])
        if keras_internals.reduces_across_workers(tf.distribute.get_strategy()):
            # Keras averages each log over the workers' replicas along axis 0,
            # which a scalar lacks (keras-team/keras#20585): one row each.
            logs = {
                name: ops.reshape(value, (1,)) if ops.ndim(value) == 0 else value
                for name, value in logs.items()
            }
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' own build before the first step fails across worker
        # processes (keras-team/keras#20585); see _keras_internals.
        if iterator is not None and keras_internals.reduces_across_workers(self.distribute_strategy):
            keras_internals.symbolic_build_from_one_replica(self, iterator)
        else:
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def optimize(self, compute, group_names=None):
        """One step of the optimizer groups named `group_names` (None: all)
        on the terms `compute()` returns as `(losses, outputs)`; returns them.

        `train_step` makes one such step of every group from one forward pass.
        Every update starts after the whole backward pass.
        A model whose official code updates its players one after the other,
        each with its own forward pass (MUNIT: the discriminator, then the
        generator), overrides `train_step` with one call per player.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape(persistent=True) as tape:
            losses, outputs = compute()
            losses = {name: ops.cast(value, "float32") for name, value in losses.items()}
            # After the forward pass: it builds layers that create their
            # variables on first call.
            groups = [g for g in self.optimizer_groups() if group_names is None or g.name in group_names]
            # Scaled for float16's gradients (`loss_scaled`; Keras'
            # `loss_scale_factor`): each optimizer unscales its own.
            objectives = [
                group.optimizer.scale_loss(_sum_terms(losses, group) / replicas) for group in groups
            ]
        gradients = _after_backward(
            [tape.gradient(o, group.variables) for o, group in zip(objectives, groups)]
        )
        for group, grads in zip(groups, gradients):
            group.optimizer.apply(_skipped_together(grads, group.optimizer), group.variables)
        del tape
        return losses, outputs

    def train_step(self, data):
        losses, outputs = self.optimize(lambda: self.compute_losses(data, training=True))
        return self._track(losses, data, outputs)

    def test_step(self, data):
        losses, outputs = self.compute_losses(data, training=False)
        losses = {name: ops.cast(value, "float32") for name, value in losses.items()}
        return self._track(losses, data, outputs)


def _after_backward(gradients):
    """`gradients` (lists of tensors or None), each released only once all
    of them are computed, so that the updates start after the whole
    backward pass (PyTorch's `loss.backward()`, then `optimizer.step()`).

    Released one by one, each variable's update started as soon as its own
    gradient was ready, while the backward pass went on, and about one run
    in five of GIT's translator stage took another path from the first
    epoch (docs/recipes.md, "Same seed, same numbers").
    """
    ready = [g for g in tf.nest.flatten(gradients, expand_composites=True) if g is not None]
    if not ready or tf.executing_eagerly():
        return gradients
    with tf.control_dependencies([tf.group(*ready)]):
        return [[None if g is None else tf.identity(g) for g in grads] for grads in gradients]


def _skipped_together(grads, optimizer):
    """`grads`, made NaN on every replica when any replica's are not finite,
    if `optimizer` is a `LossScaleOptimizer` and there are several replicas:
    then every replica skips the step.

    Keras' LossScaleOptimizer judges the gradients before they are summed
    across replicas: on replica 0's alone under MirroredStrategy (an
    overflow on another replica was applied, and the weights became NaN) or
    on each replica's own under MultiWorkerMirroredStrategy (one worker
    skipped the step while the others waited in the all-reduce for its
    gradients: a hang).
    """
    context = tf.distribute.get_replica_context()
    if (
        not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        or context is None
        or context.num_replicas_in_sync == 1
    ):
        return grads
    overflow = tf.cast(tf.logical_not(optimizer.check_finite(grads)), "float32")  # this replica's
    anywhere = context.all_reduce(tf.distribute.ReduceOp.SUM, overflow) > 0

    def poisoned(values):
        return tf.where(anywhere, tf.constant(float("nan"), values.dtype), values)

    return [
        None
        if g is None
        else tf.IndexedSlices(poisoned(g.values), g.indices, g.dense_shape)
        if isinstance(g, tf.IndexedSlices)
        else poisoned(g)
        for g in grads
    ]


def _sum_terms(losses, group):
    names = list(losses) if group.terms is None else list(group.terms)
    missing = [n for n in names if n not in losses]
    if missing:
        raise KeyError(
            f"Optimizer group '{group.name}' follows loss terms {missing} that "
            f"compute_losses did not return (it returned {sorted(losses)})."
        )
    return ops.sum(ops.stack([losses[n] for n in names]))
