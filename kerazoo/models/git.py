"""GITClassifier: a classifier trained with GIT's tail-class translations."""

import keras

from kerazoo.models.classifier import Classifier


@keras.saving.register_keras_serializable(package="kerazoo")
class GITClassifier(Classifier):
    """A `Classifier` whose training batches pass through a `GITAugment` first.

    In training, `augment(images, labels)` replaces part of the tail-class
    images with translations (see `kerazoo.layers.GITAugment`), then the
    loss is the `Classifier`'s cross-entropy on the mixed batch (GIT's
    CE + DRS + GIT with a class-balanced stream). Evaluation and
    `inference_model()` use the backbone and head only. Under a
    multi-replica strategy each replica augments its own part of the batch.

    Args:
        backbone, num_classes, head: as `Classifier`.
        augment: a `GITAugment`, or None (then this is a plain `Classifier`).

    Example:

    ```python
    model = GITClassifier(backbone, 10, augment=GITAugment(generator, counts, threshold=20))
    model.compile(optimizer="sgd", metrics=["accuracy"])
    model.fit(train_dataset(x, y, 32, seed=0, epoch_counter=counter, sampler="class_balanced"))
    ```
    """

    def __init__(self, backbone, num_classes, augment=None, head=None, **kwargs):
        super().__init__(backbone, num_classes, head=head, **kwargs)
        self.augment = augment

    def compute_losses(self, data, training):
        images, labels = data[0], data[1]
        if training and self.augment is not None:
            images = self.augment(images, labels, training=True)
        return super().compute_losses((images, labels), training)

    def inference_model(self):
        """What ships: the backbone and head as a `Classifier`, without GITAugment."""
        return Classifier.shipped(self.backbone, self.num_classes, self.head)

    def get_config(self):
        config = super().get_config()
        config["augment"] = None if self.augment is None else keras.saving.serialize_keras_object(self.augment)
        return config

    @classmethod
    def from_config(cls, config):
        if config.get("augment") is not None:
            config["augment"] = keras.saving.deserialize_keras_object(config["augment"])
        return super().from_config(config)
