"""GITClassifier: a classifier trained with GIT's tail-class translations."""

import keras

from kerazoo import initializers
from kerazoo.models.backbone_shapes import feature_size
from kerazoo.models.classifier import Classifier
from kerazoo.serialization import deserialized


@keras.saving.register_keras_serializable(package="kerazoo")
class GITClassifier(Classifier):
    """A `Classifier` whose training batches pass through a `GITAugment` first.

    In training, `augment` replaces part of each batch with translations
    (see `kerazoo.layers.GITAugment`), then the loss is the `Classifier`'s
    cross-entropy on the mixed batch (GIT's CE + DRS + GIT with a
    class-balanced stream). Batches are `(images, labels)`, or with
    `GITAugment(rule="independent")` `((images, labels), (x̃, ỹ))`: the
    second, independent batch whose translations fill the generated slots
    (the official code's second loader). Evaluation and
    `inference_model()` use the backbone and head only. Under a
    multi-replica strategy each replica augments its own part of the batch.

    Args:
        backbone, num_classes, head: as `Classifier`; the default head is
            initialised as the official code's (the LDAM-DRW ResNet's
            `nn.Linear`: kernel `kaiming_normal_`, bias `nn.Linear`'s).
        augment: a `GITAugment`, or None (then this is a plain `Classifier`).

    Example:

    ```python
    import numpy as np
    import kerazoo
    from kerazoo.layers import GITAugment
    from kerazoo.models import GITClassifier, MUNITGenerator

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    labels = np.repeat([0, 1], 8)
    generator = MUNITGenerator((8, 8, 1), dim=4, n_downsample=1, n_res=1, mlp_dim=8, seed=0)
    augment = GITAugment(generator, class_counts=[100, 5], threshold=20, seed=0)
    model = GITClassifier(kerazoo.backbones.get("convnet", width=8), 2, augment=augment)
    model.compile(optimizer="sgd", metrics=["accuracy"])
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """

    def __init__(self, backbone, num_classes, augment=None, head=None, **kwargs):
        super().__init__(backbone, num_classes, head=head, **kwargs)
        if augment is not None and len(augment.class_counts) != num_classes:
            raise ValueError(
                f"GITClassifier has {num_classes} classes but its GITAugment has "
                f"{len(augment.class_counts)} class counts; give one training-image count per class."
            )
        self.augment = augment

    def default_head(self):
        return initializers.dense(
            self.num_classes,
            feature_size(self.backbone),
            kernel_initializer=initializers.kaiming_normal(),
            name="head",
        )

    def compute_losses(self, data, training):
        if isinstance(data[0], (tuple, list)):
            (images, labels), source = data[0], data[1]
        else:
            (images, labels), source = data[:2], None
        if training and self.augment is not None:
            images, labels = self.augment(images, labels, training=True, source=source)
        losses, logits = super().compute_losses((images, labels), training)
        return losses, (labels, logits)

    def metric_targets(self, data, outputs):
        """The labels trained on (the mixed batch's) against the logits."""
        return outputs

    def inference_model(self):
        """What ships: the backbone and head as a `Classifier`, without GITAugment."""
        return Classifier.shipped(self.backbone, self.num_classes, self.head)

    def get_config(self):
        config = super().get_config()
        config["augment"] = (
            None if self.augment is None else keras.saving.serialize_keras_object(self.augment)
        )
        return config

    @classmethod
    def from_config(cls, config):
        return super().from_config(deserialized(config, "augment"))
