"""LUCIRClassifier: one incremental phase of LUCIR (Hou et al., CVPR 2019) and its baselines."""

import dataclasses

import keras
import tensorflow as tf
from keras import ops

from kerazoo._checks import check_non_negative, is_whole
from kerazoo._keras_internals import freeze
from kerazoo.layers.cosine_linear import CosineLinear
from kerazoo.losses.cross_entropy import cross_entropy_loss
from kerazoo.losses.distillation import distillation_loss
from kerazoo.losses.lucir import adaptive_lambda, less_forget_loss, margin_ranking_loss
from kerazoo.models.backbone_shapes import image_shape
from kerazoo.models.base import TrainingModel
from kerazoo.ops import check_class_ids
from kerazoo.serialization import deserialized


@dataclasses.dataclass(frozen=True)
class LUCIRLoss:
    """The loss of one incremental phase: which terms are on, and their settings.

    Weight decay is the optimizer's (`kerazoo.optimizers.with_weight_decay`:
    coupled L2 on every variable it updates, as the code's PyTorch SGD).

    Args:
        less_forget: bool, LUCIR's less-forget constraint on.
        margin_ranking: bool, LUCIR's margin-ranking loss on.
        distillation_weight: float, weight β of knowledge distillation on the old
            classes' logits (the iCaRL-CNN baseline of the LUCIR code: β = 0.25,
            T = 2); 0 turns it off.
        lambda_base: λ_base (5 for CIFAR-100, 10 for ImageNet).
        margin: margin-ranking margin m.
        k: number of hard negatives K.
        temperature: distillation temperature T.

    Example:

    ```python
    from kerazoo.models import LUCIRLoss

    lucir = LUCIRLoss()  # the paper's loss
    icarl_cnn = LUCIRLoss(less_forget=False, margin_ranking=False, distillation_weight=0.25)
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """

    less_forget: bool = True
    margin_ranking: bool = True
    distillation_weight: float = 0.0
    lambda_base: float = 5.0
    margin: float = 0.5
    k: int = 2
    temperature: float = 2.0

    def __post_init__(self):
        # Otherwise the first training step fails, or a negative weight trains
        # the opposite way.
        if not is_whole(self.k, 1):
            raise ValueError(f"LUCIRLoss: k (hard negatives) must be a whole number >= 1, got {self.k!r}.")
        check_non_negative(
            "LUCIRLoss",
            distillation_weight=self.distillation_weight,
            lambda_base=self.lambda_base,
            margin=self.margin,
        )
        if not self.temperature > 0:
            raise ValueError(f"LUCIRLoss: temperature must be > 0, got {self.temperature!r}.")


@keras.saving.register_keras_serializable(package="kerazoo")
class LUCIRClassifier(TrainingModel):
    """Backbone + head trained with LUCIR's loss against a frozen old model.

    Per batch (the official LUCIR code's training loop):

        L = CE(σ·cos logits over all seen classes)
            + λ · mean(1 − cos(f, f_old))                  (less-forget, if on)
            + mean_{old rows, top-k new} max(0, m − cos_gt + cos_neg)  (if on)
            + β · T² · KL(old logits ‖ new old-class logits)  (distillation, if β > 0)

    with λ = λ_base·√(C_old/C_new) (the code's form; the paper's Eq. 7 prints
    the inverse). The code's weight decay (coupled, on σ and BatchNorm γ/β
    too, not on frozen weights) is the optimizer's: compile with
    `kerazoo.optimizers.with_weight_decay`. The old model runs in inference mode
    (`ref_model.eval()` in the code).

    The same class trains LUCIR's ablations and the baselines: with both
    LUCIR losses off it is plain CE (replay), with `distillation_weight=0.25` and a
    linear head it is the code's iCaRL-CNN. Margin ranking needs a
    `kerazoo.layers.CosineLinear` head; distillation needs `old_head`.

    Under a multi-replica strategy every term is a mean over the replica's
    batch and `TrainingModel` divides the total by the replica count before
    the summed gradient, so N replicas train like one device on the global
    batch (BatchNorm aside). Margin ranking averages over the old-class rows
    of the *global* batch: their count is all-reduced first, because it
    differs between replicas. Known limitation: combined with a backbone
    built with `synchronized=True`, that all-reduce and BatchNorm's may be
    ordered differently on each replica and TensorFlow aborts the
    collective; use per-replica BatchNorm (the default) with margin ranking.

    Args:
        backbone: a functional features model (its `input_shape` is read; LUCIR uses
            `last_relu=False`).
        head: `CosineLinear` (or any features -> logits layer).
        old_backbone: frozen features model of the previous phase, or None
            (base phase).
        old_head: frozen head of the previous phase (for distillation).
        num_old_classes: classes seen before this phase (head columns
            [0, num_old_classes)).
        loss: a `LUCIRLoss` (or its dict).

    Example:

    ```python
    import numpy as np
    import keras
    import kerazoo
    from kerazoo.models import LUCIRClassifier

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 2, size=16)
    backbone = kerazoo.backbones.get("convnet", last_relu=False, width=8)
    model = LUCIRClassifier(backbone, kerazoo.layers.CosineLinear(2))  # the first phase: plain CE
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """

    loss_terms = ("ce", "less_forget", "margin_ranking", "distillation")

    def __init__(
        self,
        backbone,
        head,
        old_backbone=None,
        old_head=None,
        num_old_classes=0,
        loss=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.head = head
        self.old_backbone = old_backbone
        self.old_head = old_head
        for frozen in (old_backbone, old_head):
            if frozen is not None:
                freeze(frozen)
        self.num_old_classes = num_old_classes
        if isinstance(loss, dict):
            loss = dict(loss)
            if "distillation" in loss:  # files saved before the field's rename
                loss["distillation_weight"] = loss.pop("distillation")
            loss = LUCIRLoss(**loss)
        self.loss_settings = loss or LUCIRLoss()
        self._check_parts()
        # Built now (the backbone is): the training step calls the parts, not
        # the model, so a model trained by `fit` alone was never marked built,
        # and saved so it lost its optimizer's state on loading.
        self.build((None, *image_shape(backbone)))

    def build(self, input_shape):
        # The old model comes built; the head may not be.
        if not self.head.built:
            self.head.build(self.backbone.compute_output_shape(input_shape))

    def _check_parts(self):
        # Each was found only at fit (a TypeError, "'NoneType' object is not
        # callable"), or not at all: plain cross-entropy, silently.
        settings = self.loss_settings
        if self.num_old_classes > 0 and self.old_backbone is None:
            raise ValueError(
                f"num_old_classes={self.num_old_classes} needs the previous phase's frozen old_backbone "
                "(and its old_head for distillation); without it the phase would train plain "
                "cross-entropy. For the first phase leave num_old_classes at 0."
            )
        if self.incremental and settings.distillation_weight and self.old_head is None:
            raise ValueError(
                f"LUCIRLoss(distillation_weight={settings.distillation_weight}) distils the old head's logits: "
                "pass old_head, or set distillation_weight=0."
            )
        if self.incremental and settings.margin_ranking and not isinstance(self.head, CosineLinear):
            raise ValueError(
                f"margin ranking ranks cosine scores, so it needs a CosineLinear head, not a "
                f"{type(self.head).__name__}; use CosineLinear, or LUCIRLoss(margin_ranking=False)."
            )

    @property
    def incremental(self):
        return self.old_backbone is not None and self.num_old_classes > 0

    def call(self, images, training=False):
        return self.head(self.backbone(images, training=training))

    def inference_model(self):
        """What ships: the backbone and head as a `Classifier`, without the old model."""
        from kerazoo.models.classifier import Classifier

        return Classifier.shipped(self.backbone, self.head.units, self.head)

    def compute_losses(self, data, training):
        """All loss terms for a batch, as a dict of float32 scalars (unscaled)."""
        images, labels = data[0], data[1]
        num_pairs_total = self._global_pairs(labels)
        # Collectives must start in the same order on every replica: this
        # all-reduce before synchronized BatchNorm's.
        with tf.control_dependencies([] if num_pairs_total is None else [num_pairs_total]):
            return self._terms(images, labels, training, num_pairs_total)

    def _terms(self, images, labels, training, num_pairs_total):
        settings = self.loss_settings
        features = self.backbone(images, training=training)
        logits = self.head(features)
        labels = check_class_ids(labels, self.head.units)
        zero = ops.zeros((), "float32")
        losses = {
            "ce": cross_entropy_loss(labels, logits),
            "less_forget": zero,
            "margin_ranking": zero,
            "distillation": zero,
        }
        if self.incremental and (settings.less_forget or settings.distillation_weight):
            old_features = self.old_backbone(images, training=False)
        if self.incremental and settings.less_forget:
            num_new = logits.shape[-1] - self.num_old_classes
            weight = adaptive_lambda(settings.lambda_base, self.num_old_classes, num_new)
            losses["less_forget"] = weight * less_forget_loss(features, old_features)
        if self.incremental and settings.margin_ranking:
            cosines = self.head(features, return_cosine=True)
            losses["margin_ranking"] = margin_ranking_loss(
                cosines,
                labels,
                self.num_old_classes,
                settings.margin,
                settings.k,
                num_pairs_total=num_pairs_total,
            )
        if self.incremental and settings.distillation_weight:
            old_logits = self.old_head(old_features)
            losses["distillation"] = settings.distillation_weight * distillation_loss(
                logits, old_logits, settings.temperature
            )
        return losses, logits

    def _global_pairs(self, labels):
        """(old rows × k) over the global batch, divided by the replica count.

        Each replica divides its hinge sum by this; after the division by the
        replica count and the cross-replica gradient sum, the margin-ranking
        term is the mean over the global batch's pairs.
        """
        context = tf.distribute.get_replica_context()
        if not (self.incremental and self.loss_settings.margin_ranking) or context is None:
            return None
        if context.num_replicas_in_sync == 1:
            return None
        k = min(self.loss_settings.k, self.head.units - self.num_old_classes)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        pairs = ops.sum(ops.cast(labels < self.num_old_classes, "float32")) * k
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, pairs)
        return total / context.num_replicas_in_sync

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            {
                "backbone": serialize(self.backbone),
                "head": serialize(self.head),
                "old_backbone": serialize(self.old_backbone) if self.old_backbone is not None else None,
                "old_head": serialize(self.old_head) if self.old_head is not None else None,
                "num_old_classes": self.num_old_classes,
                "loss": dataclasses.asdict(self.loss_settings),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialized(config, "backbone", "head", "old_backbone", "old_head"))
