"""LUCIRModel: one incremental phase of LUCIR (Hou et al., CVPR 2019)."""

import keras
import tensorflow as tf
from keras import ops

from kerazoo.losses.lucir import adaptive_lambda, less_forget_loss, margin_ranking_loss


@keras.saving.register_keras_serializable(package="kerazoo")
class LUCIRModel(keras.Model):
    """Backbone + head trained with LUCIR's loss against a frozen old model.

    Per batch (LUCIR code `incremental_train_and_eval_MR_LF.py`):

        L = CE(σ·cos logits over all seen classes)
            + λ · mean(1 − cos(f, f_old))                  (less-forget, if on)
            + mean_{old rows, top-k new} max(0, m − cos_gt + cos_neg)  (if on)
            + ½ · weight_decay · Σ‖w‖² over trainable weights

    with λ = λ_base·√(C_old/C_new) (the code's form; the paper's Eq. 7 prints
    the inverse). The L2 term stands in for PyTorch SGD's coupled weight
    decay, which covers σ and BatchNorm γ/β too but not the frozen old-class
    weights (they are not trainable here). The old model's backbone runs in
    inference mode (`ref_model.eval()` in the code).

    The same class trains LUCIR's ablations and the replay baseline:
    `less_forget=False, margin_ranking=False` leaves plain CE, and the head
    may be any layer mapping features to logits (e.g. a `Dense` for replay);
    margin ranking needs a `kerazoo.layers.CosineLinear` head.

    Under a multi-replica strategy every term is a mean over the replica's
    batch; the total is divided by the replica count before the summed
    gradient, so N replicas train like one device on the global batch
    (BatchNorm aside). Margin ranking averages over the old-class rows of
    the *global* batch: their count is all-reduced first, because it differs
    between replicas. Known limitation: combined with a backbone built with
    `synchronized=True`, that all-reduce and BatchNorm's may be ordered
    differently on each replica and TensorFlow aborts the collective; use
    per-replica BatchNorm (the default) with margin ranking.

    Args:
        backbone: features model (LUCIR uses `last_relu=False`).
        head: `CosineLinear` (or any features -> logits layer).
        old_backbone: frozen features model of the previous phase, or None
            (base phase).
        num_old_classes: classes seen before this phase (head columns
            [0, num_old_classes)).
        lambda_base: λ_base (5 for CIFAR-100, 10 for ImageNet).
        margin, k: margin-ranking margin m and number of hard negatives K.
        less_forget, margin_ranking: switch the two losses (ablations).
        weight_decay: coefficient of the L2 term.

    Example:

    ```python
    import keras, kerazoo
    backbone = kerazoo.backbones.get("convnet", last_relu=False)
    model = kerazoo.models.LUCIRModel(backbone, kerazoo.layers.CosineLinear(2))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    ```
    """

    def __init__(
        self,
        backbone,
        head,
        old_backbone=None,
        num_old_classes=0,
        lambda_base=5.0,
        margin=0.5,
        k=2,
        less_forget=True,
        margin_ranking=True,
        weight_decay=5e-4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.head = head
        self.old_backbone = old_backbone
        if old_backbone is not None:
            old_backbone.trainable = False
        self.num_old_classes = num_old_classes
        self.lambda_base = lambda_base
        self.margin = margin
        self.k = k
        self.less_forget = less_forget
        self.margin_ranking = margin_ranking
        self.weight_decay = weight_decay
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "ce", "less_forget", "margin_ranking")
        }
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy]

    @property
    def incremental(self):
        return self.old_backbone is not None and self.num_old_classes > 0

    def call(self, images, training=False):
        return self.head(self.backbone(images, training=training))

    def compute_losses(self, images, labels, training=True, num_pairs_total=None):
        """All loss terms for a batch, as a dict of float32 scalars (unscaled).

        `num_pairs_total`: see `margin_ranking_loss`; `train_step` passes the
        global count under a multi-replica strategy.
        """
        features = self.backbone(images, training=training)
        logits = self.head(features)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        losses = {
            "ce": ops.mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
        }
        zero = ops.zeros((), "float32")
        losses["less_forget"] = losses["margin_ranking"] = zero
        if self.incremental and self.less_forget:
            old_features = self.old_backbone(images, training=False)
            num_new = logits.shape[-1] - self.num_old_classes
            weight = adaptive_lambda(self.lambda_base, self.num_old_classes, num_new)
            losses["less_forget"] = weight * less_forget_loss(features, old_features)
        if self.incremental and self.margin_ranking:
            cosines = self.head(features, return_cosine=True)
            losses["margin_ranking"] = margin_ranking_loss(
                cosines,
                labels,
                self.num_old_classes,
                self.margin,
                self.k,
                num_pairs_total=num_pairs_total,
            )
        losses["l2"] = 0.5 * self.weight_decay * ops.sum(
            ops.stack([ops.sum(ops.square(w)) for w in self.trainable_weights])
        )
        return losses, logits

    def _global_pairs(self, labels):
        """(old rows × k) over the global batch, divided by the replica count.

        Each replica divides its hinge sum by this; after the runner-wide
        division by the replica count and the cross-replica gradient sum, the
        margin-ranking term is the mean over the global batch's pairs.
        """
        context = tf.distribute.get_replica_context()
        if not (self.incremental and self.margin_ranking) or context is None:
            return None
        if context.num_replicas_in_sync == 1:
            return None
        k = min(self.k, self.head.units - self.num_old_classes)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        pairs = ops.sum(ops.cast(labels < self.num_old_classes, "float32")) * k
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, pairs)
        return total / context.num_replicas_in_sync

    def train_step(self, data):
        images, labels = data[0], data[1]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        num_pairs_total = self._global_pairs(labels)
        # Collectives must start in the same order on every replica: this
        # all-reduce before synchronized BatchNorm's.
        dependencies = [] if num_pairs_total is None else [num_pairs_total]
        with tf.control_dependencies(dependencies), tf.GradientTape() as tape:
            losses, logits = self.compute_losses(images, labels, True, num_pairs_total)
            total = ops.sum(ops.stack(list(losses.values())))
            # Gradients are summed over replicas: scale so the sum is the
            # gradient of the global-batch mean.
            scaled = total / replicas
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.trackers["loss"].update_state(total)
        for name in ("ce", "less_forget", "margin_ranking"):
            self.trackers[name].update_state(losses[name])
        self.accuracy.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "head": keras.saving.serialize_keras_object(self.head),
                "old_backbone": keras.saving.serialize_keras_object(self.old_backbone)
                if self.old_backbone is not None
                else None,
                "num_old_classes": self.num_old_classes,
                "lambda_base": self.lambda_base,
                "margin": self.margin,
                "k": self.k,
                "less_forget": self.less_forget,
                "margin_ranking": self.margin_ranking,
                "weight_decay": self.weight_decay,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        for key in ("backbone", "head", "old_backbone"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
