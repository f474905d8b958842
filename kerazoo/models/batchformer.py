"""BatchFormerClassifier: a shared head before and after BatchFormer, labels repeated in training."""

import keras
from keras import ops

from kerazoo import initializers, optimizers
from kerazoo.losses.balanced_softmax import balanced_softmax_loss
from kerazoo.losses.cross_entropy import cross_entropy_loss
from kerazoo.models.backbone_shapes import feature_size, image_shape
from kerazoo.models.base import OptimizerGroup, TrainingModel
from kerazoo.ops import check_class_ids
from kerazoo.serialization import deserialized

LOSSES = ("ce", "balanced_softmax")


@keras.saving.register_keras_serializable(package="kerazoo")
class BatchFormerClassifier(TrainingModel):
    """Backbone → (BatchFormer in training) → one shared head; CE or Balanced Softmax.

    In training, with f = backbone(x) for a batch of B images ([BatchFormer]
    README; Hou et al., CVPR 2022):

        logits = head(concat([f, BatchFormer(f)]))      # 2B rows, order [pre, post]
        loss   = mean over the 2B rows of L(concat([y, y]), logits)

    L is cross-entropy (`loss="ce"`) or Balanced Softmax (`"balanced_softmax"`:
    CE on logits + log class prior, `kerazoo.losses.balanced_softmax_loss`).
    The loss is the README's single mean over 2B rows by default. The official
    BalancedSoftmax code (`batch_loss`) adds three terms
    when BatchFormer is on: L on the first B rows, L on the second B rows and
    L on all 2B rows again, i.e. 1.5·(L_pre + L_post) = 3 × the mean over 2B
    rows, while its baseline (no BatchFormer) has the one term.
    `batchformer_loss_weight=3.0` reproduces that (a larger effective
    learning rate on the data term; weight decay is not scaled). Because the same head sees the
    features before and after BatchFormer, the backbone learns features that
    work without it: at inference BatchFormer is the identity and absent, and
    `inference_model()` is a plain `Classifier(backbone, head)`.

    With `batchformer=None` the model is the baseline (CE or Balanced Softmax
    on B rows), so a recipe compares methods with one code path.

    `compile(optimizer, batchformer_lr_scale=0.1, ...)` derives a second
    optimizer for BatchFormer's variables from the first, at `scale` × its
    learning rate (a schedule's, or the rate a Keras callback such as
    `ReduceLROnPlateau` sets on `model.optimizer`), same momentum and weight decay, as
    the official BalancedSoftmax code (0.05 → 0.005).

    Under a multi-replica strategy the CE term is each replica's mean, divided
    by the replica count by `TrainingModel`; BatchFormer attends over the
    replica's batch or the global batch as its `scope` says.

    Args:
        backbone: a functional `keras.Model` (its `input_shape` is read) from images to
            (B, D) features, e.g. `kerazoo.backbones.get(...)`.
        num_classes: number of classes.
        batchformer: a `kerazoo.layers.BatchFormer`, or None for the baseline.
        class_counts: training images per class (needed for Balanced Softmax).
        loss: "ce" or "balanced_softmax".
        batchformer_loss_weight: factor on the training loss when BatchFormer
            is on (1: the README's mean over 2B rows; 3: the official code's
            three terms). Unused without BatchFormer and in evaluation.
        head: the shared head; default a `Dense(num_classes)` initialised as
            the Balanced Softmax code's classifier (PyTorch's `nn.Linear`).

    Example:

    ```python
    import numpy as np
    import keras
    import kerazoo

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 3, size=16)
    model = kerazoo.models.BatchFormerClassifier(
        kerazoo.backbones.get("convnet", width=8),
        3,
        kerazoo.layers.BatchFormer(num_heads=2),
        class_counts=[10, 4, 2],
        loss="balanced_softmax",
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    ```

    References:
        - [Hou et al., BatchFormer: Learning to Explore Sample Relationships for Robust Representation
          Learning, CVPR 2022](https://arxiv.org/abs/2203.01522)
        - [Ren et al., Balanced Meta-Softmax for Long-Tailed Visual Recognition, NeurIPS
          2020](https://arxiv.org/abs/2007.10740)
    """

    def __init__(
        self,
        backbone,
        num_classes,
        batchformer=None,
        class_counts=None,
        loss="ce",
        head=None,
        batchformer_loss_weight=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"BatchFormerClassifier loss must be one of {LOSSES}, got {loss!r}.")
        if loss == "balanced_softmax" and class_counts is None:
            raise ValueError("loss='balanced_softmax' needs class_counts (training images per class).")
        if class_counts is not None and len(class_counts) != num_classes:
            raise ValueError(f"class_counts has {len(class_counts)} entries for {num_classes} classes.")
        self.backbone = backbone
        self.num_classes = num_classes
        self.batchformer = batchformer
        self.class_counts = None if class_counts is None else [int(c) for c in class_counts]
        self.loss_name = loss
        # The logged term is named for the loss it is (one name, one meaning).
        self.loss_terms = (loss,)
        self.batchformer_loss_weight = float(batchformer_loss_weight)
        if head is None:
            head = initializers.dense(num_classes, feature_size(backbone), name="head")
        self.head = head
        # Built now (the backbone is): the training step calls the parts, not
        # the model, so a model trained by `fit` alone was never marked built,
        # and saved so it lost its optimizers' state on loading.
        self.build((None, *image_shape(backbone)))

    def build(self, input_shape):
        # BatchFormer and the head are built here, not on a first training
        # step: the runner builds every optimizer over their variables first.
        features = self.backbone.compute_output_shape(input_shape)
        if self.batchformer is not None and not self.batchformer.built:
            self.batchformer.build(features)
        if not self.head.built:
            self.head.build(features)

    def call(self, images, training=False):
        """The inference path, backbone → head (BatchFormer is the identity there)."""
        return self.head(self.backbone(images, training=training))

    def compute_losses(self, data, training):
        images, labels = data[0], data[1]
        labels = check_class_ids(labels, self.num_classes)
        features = self.backbone(images, training=training)
        weight = 1.0
        if training and self.batchformer is not None:
            features = ops.concatenate([features, self.batchformer(features, training=True)], axis=0)
            labels = ops.concatenate([labels, labels], axis=0)
            weight = self.batchformer_loss_weight
        logits = self.head(features)
        if self.loss_name == "balanced_softmax":
            loss = balanced_softmax_loss(labels, logits, self.class_counts)
        else:
            loss = cross_entropy_loss(labels, logits)
        return {self.loss_name: weight * loss}, (labels, logits)

    def metric_targets(self, data, outputs):
        """The 2B training rows with their repeated labels (B rows in evaluation)."""
        return outputs

    def compile(self, optimizer="rmsprop", batchformer_lr_scale=0.1, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.batchformer_lr_scale = batchformer_lr_scale
        self.batchformer_optimizer = None
        if self.batchformer is not None:
            self.batchformer_optimizer = optimizers.copy(
                self.optimizer, f"batchformer_{self.optimizer.name}", batchformer_lr_scale
            )

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:  # Keras gives {} for a model never compiled, which has no scale yet
            config["batchformer_lr_scale"] = self.batchformer_lr_scale
        return config

    def optimizer_groups(self):
        if self.batchformer is None:
            return super().optimizer_groups()
        own = {id(v) for v in self.batchformer.trainable_variables}
        return [
            OptimizerGroup(
                "model", self.optimizer, [v for v in self.trainable_variables if id(v) not in own]
            ),
            OptimizerGroup("batchformer", self.batchformer_optimizer, self.batchformer.trainable_variables),
        ]

    def inference_model(self):
        """What ships: the trained backbone and head as a `Classifier`, without BatchFormer."""
        from kerazoo.models.classifier import Classifier

        return Classifier.shipped(self.backbone, self.num_classes, self.head)

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            {
                "backbone": serialize(self.backbone),
                "num_classes": self.num_classes,
                "batchformer": None if self.batchformer is None else serialize(self.batchformer),
                "class_counts": self.class_counts,
                "loss": self.loss_name,
                "batchformer_loss_weight": self.batchformer_loss_weight,
                "head": serialize(self.head),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialized(config, "backbone", "batchformer", "head"))
