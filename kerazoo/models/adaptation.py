"""Learning from unlabelled data with a batch-level term on its predictions:
domain adaptation (`DomainAdapter`) and semi-supervised learning
(`SemiSupervised`), with BNM (Cui et al., CVPR 2020), fast BNM or EntMin."""

import keras
import tensorflow as tf
from keras import ops

from kerazoo import initializers
from kerazoo._checks import check_non_negative
from kerazoo._keras_internals import build_compiled_metrics
from kerazoo.losses.bnm import NORMALIZATIONS, bnm_loss, entropy_loss, fbnm_loss
from kerazoo.losses.cross_entropy import cross_entropy_loss
from kerazoo.models.classifier import Classifier

METHODS = ("bnm", "fbnm", "entmin", "none")
SCOPES = ("global", "replica")


@keras.saving.register_keras_serializable(package="kerazoo")
class DomainAdapter(Classifier):
    """Source cross-entropy + λ·{BNM | FBNM | EntMin | nothing} on the target.

    Trains on batches `((x_source, y_source), x_target)` (e.g.
    `kerazoo.data.paired_dataset`). Source and target images go through
    **separate forward passes**, as the official code (its domain-adaptation
    and semi-supervised scripts call the network once per batch), so in training
    BatchNorm normalises each domain with its own batch statistics; its
    running statistics move twice per step, source then target, as the DA
    code's (`SemiSupervised`: once, labelled images only, as the SSL code's).
    The loss terms:

        ce       = mean CE(source logits, y_source)
        transfer = λ_t · term(softmax(target logits))

    with term `bnm_loss` / `fbnm_loss` (normalised as `normalization`
    says) or `entropy_loss` (divided by log C in domain adaptation, as the
    official DA code's EntMin; plain in `SemiSupervised`), and λ_t = 0 for the first `warmup_steps`
    optimizer steps, then `weight`. The CE-only warm-up stands in for the
    official code's ImageNet-pretrained start: from random weights the
    target predictions are near uniform and BNM amplifies whatever they
    happen to be. It reads `optimizer.iterations`, so a resumed run
    continues the schedule exactly. An `(x, y)` batch (evaluation) gives
    the CE term only. Compiled metrics score the source (or `(x, y)`)
    predictions.

    Under a multi-replica strategy, `scope="global"` (default) all-gathers
    the target probabilities and computes the term on the global batch
    (its value and gradient equal one device's on that batch: the gather's
    gradient sums the replicas' upstream gradients, which the base's
    division by the replica count cancels); `scope="replica"` computes it
    per replica, a different objective because the nuclear norm is not
    additive. BatchNorm statistics stay per replica unless the backbone is
    built with `synchronized=True`.

    What ships (`inference_model()`) is a plain `Classifier`.

    Args:
        backbone: images -> features; num_classes; head: as `Classifier`;
            the default head is initialised as in BNM's domain-adaptation
            code (kernel `kaiming_normal_`, bias 0).
        method: `"bnm"`, `"fbnm"`, `"entmin"` or `"none"` (CE on the source
            only; in `DomainAdapter` the target batches still pass through
            the network in training, moving BatchNorm's running statistics,
            as the official code's λ = 0. The papers' "source only" rows
            train without target batches).
        weight: λ (official DA code: 1).
        warmup_steps: optimizer steps of CE only before λ applies.
        normalization: of the BNM/FBNM sum, `"min_dim"` (official DA code,
            ÷ min(B, C)) or `"batch"` (paper, ÷ B).
        scope: `"global"` or `"replica"` (see above).

    Example:

    ```python
    import numpy as np
    import kerazoo
    from kerazoo.data import EpochCounter, paired_dataset
    from kerazoo.models import DomainAdapter

    rng = np.random.default_rng(0)
    source_images = rng.uniform(size=(32, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 3, size=32)
    target_images = rng.uniform(size=(32, 8, 8, 1)).astype("float32")
    model = DomainAdapter(kerazoo.backbones.get("convnet", width=8), 3, method="bnm", warmup_steps=2)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model(source_images[:1])  # build before fit: fit cannot build from paired batches
    counter = EpochCounter()
    stream = paired_dataset(source_images, labels, target_images, 16, seed=0, epoch_counter=counter)
    model.fit(stream, epochs=1, callbacks=[counter], verbose=0)
    ```

    References:
        - [Cui et al., Towards Discriminability and Diversity: Batch Nuclear-norm Maximization under Label
          Insufficient Situations, CVPR 2020](https://arxiv.org/abs/2003.12237)
        - [Cui et al., Fast Batch Nuclear-norm Maximization and Minimization for Robust Domain
          Adaptation](https://arxiv.org/abs/2107.06154)
        - [Grandvalet & Bengio, Semi-supervised Learning by Entropy Minimization, NeurIPS
          2004](https://papers.nips.cc/paper/2004/hash/96f2b50b5d3613adf9c27049b2a888c7-Abstract.html)
    """

    loss_terms = ("ce", "transfer")
    default_normalization = "min_dim"
    entropy_normalization = "log_classes"

    def __init__(
        self,
        backbone,
        num_classes,
        method="bnm",
        weight=1.0,
        warmup_steps=0,
        normalization=None,
        scope="global",
        head=None,
        **kwargs,
    ):
        super().__init__(backbone, num_classes, head=head, **kwargs)
        normalization = normalization or self.default_normalization
        for name, value, allowed in (
            ("method", method, METHODS),
            ("scope", scope, SCOPES),
            ("normalization", normalization, NORMALIZATIONS),
        ):
            if value not in allowed:
                raise ValueError(f"{type(self).__name__}: {name}={value!r}; use one of {allowed}.")
        check_non_negative(type(self).__name__, weight=weight, warmup_steps=warmup_steps)
        self.method = method
        self.weight = weight
        self.warmup_steps = warmup_steps
        self.normalization = normalization
        self.scope = scope

    def default_head(self):
        # Keras' zero bias is the code's; only the kernel's rule differs.
        return keras.layers.Dense(
            self.num_classes, kernel_initializer=initializers.kaiming_normal(), name="head"
        )

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Keras builds compiled metrics from the first batch read as (x, y),
        # which a paired batch ((x_s, y_s), x_t) is not: build them for
        # (labels, logits) now.
        build_compiled_metrics(
            self, keras.KerasTensor((None,), "int32"), keras.KerasTensor((None, self.num_classes))
        )

    def transfer_term(self, probs):
        """The unweighted term on a batch of target probabilities (this replica's
        batch, or the global one with `scope="global"`)."""
        context = tf.distribute.get_replica_context()
        if self.scope == "global" and context is not None and context.num_replicas_in_sync > 1:
            probs = context.all_gather(probs, axis=0)
        if self.method == "bnm":
            return bnm_loss(probs, self.normalization)
        if self.method == "fbnm":
            return fbnm_loss(probs, self.normalization)
        return entropy_loss(probs, self.entropy_normalization)

    # Whether the unlabelled (target) pass moves BatchNorm's running statistics.
    unlabelled_moves_statistics = True

    def compute_losses(self, data, training):
        first, second = data[0], data[1]
        if not isinstance(first, (tuple, list)):  # an (x, y) batch: CE only
            return super().compute_losses(data, training)
        (source, labels), target = first, second
        source_logits = self(source, training=training)
        losses = {"ce": cross_entropy_loss(labels, source_logits)}
        if self.method == "none":
            if training and self.unlabelled_moves_statistics:
                # The target batch still goes through the network, as in the
                # official code whatever its method (λ = 0 is its baseline):
                # BatchNorm's running statistics then adapt to the target as
                # every other method's do, so an effect against this baseline
                # is the term's alone. Its assignments run in the traced step.
                self._unlabelled_logits(target, training)
        else:
            # The term is computed during warm-up too (weight 0): a Python
            # branch on the step would retrace, a tf.cond would not save much.
            started = ops.cast(self.optimizer.iterations >= self.warmup_steps, "float32")
            probs = ops.softmax(ops.cast(self._unlabelled_logits(target, training), "float32"))
            losses["transfer"] = self.weight * started * self.transfer_term(probs)
        return losses, source_logits

    def _unlabelled_logits(self, images, training):
        if not training or self.unlabelled_moves_statistics:
            return self(images, training=training)
        # Keras' BatchNorm has no "batch statistics, no update" mode: keep the
        # running statistics and put them back after the pass.
        statistics = [
            variable
            for layer in self._flatten_layers()
            if isinstance(layer, keras.layers.BatchNormalization)
            for variable in (layer.moving_mean, layer.moving_variance)
        ]
        kept = [tf.identity(variable.value) for variable in statistics]
        logits = self(images, training=training)
        for variable, value in zip(statistics, kept):
            variable.assign(value)
        return logits

    def metric_targets(self, data, outputs):
        if isinstance(data[0], (tuple, list)):
            return data[0][1], outputs
        return super().metric_targets(data, outputs)

    def inference_model(self):
        """What ships: the backbone and head as a `Classifier` (built)."""
        return Classifier.shipped(self.backbone, self.num_classes, self.head)

    def get_config(self):
        config = super().get_config()
        config.update(
            method=self.method,
            weight=self.weight,
            warmup_steps=self.warmup_steps,
            normalization=self.normalization,
            scope=self.scope,
        )
        return config


@keras.saving.register_keras_serializable(package="kerazoo")
class SemiSupervised(DomainAdapter):
    """Labelled CE + λ·BNM on the unlabelled batch (BNM's SSL setting).

    The same model as `DomainAdapter` on batches `((x, y), x_unlabelled)`,
    with the paper's and the official SSL code's normalisation by default:
    −‖A‖_* / B (`normalization="batch"`), and the plain mean entropy for
    `method="entmin"` (the EntMin baseline); `"none"` is labelled-only
    training. Labelled and unlabelled images go through separate forward
    passes, as in `DomainAdapter`; only the labelled pass moves BatchNorm's
    running statistics, as the official SSL code ("Take only first call to
    update batch norm"). The default head is initialised as in
    the official SSL code (MixMatch's `libml`: Glorot-normal kernel, bias 0).

    Args:
        backbone, num_classes, method, weight, warmup_steps, normalization, scope, head:
            as `DomainAdapter`'s, with `method="bnm"` by default.

    Example:

    ```python
    import numpy as np
    import kerazoo
    from kerazoo.data import EpochCounter, paired_dataset
    from kerazoo.models import SemiSupervised

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(32, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 3, size=32)
    model = SemiSupervised(kerazoo.backbones.get("convnet", width=8), 3)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model(images[:1])
    counter = EpochCounter()
    stream = paired_dataset(images[:16], labels[:16], images[16:], 8, seed=0, epoch_counter=counter)
    model.fit(stream, epochs=1, callbacks=[counter], verbose=0)
    ```

    References:
        - [Cui et al., Towards Discriminability and Diversity: Batch Nuclear-norm Maximization under Label
          Insufficient Situations, CVPR 2020](https://arxiv.org/abs/2003.12237)
    """

    default_normalization = "batch"
    entropy_normalization = None
    unlabelled_moves_statistics = False

    def default_head(self):
        return keras.layers.Dense(
            self.num_classes, kernel_initializer=keras.initializers.GlorotNormal(), name="head"
        )
