"""Classifier: a backbone and a head, the ERM baseline and the deployable form of every method."""

import keras


@keras.saving.register_keras_serializable(package="kerazoo")
class Classifier(keras.Model):
    """A backbone followed by a head producing logits.

    With the default linear head this is the ERM baseline. Methods that
    train with extra parts (LUCIR's frozen old model, BatchFormer) ship
    their trained backbone and head as a `Classifier`, so a pretrained model
    loads and fine-tunes the same way whatever made it.

    Trained with the stock `train_step` and a compiled cross-entropy: under a
    multi-replica strategy Keras divides that per-sample loss by the replica
    count before gradients are summed, so N replicas on a global batch train
    like one device on the same batch (BatchNorm aside: use a backbone built
    with `synchronized=True` for that equality).

    Args:
        backbone: a `keras.Model` from images to feature vectors.
        num_classes: number of classes (the head's output size).
        head: a layer from features to `num_classes` logits, e.g. a trained
            `kerazoo.layers.CosineLinear`; default a new `Dense(num_classes)`.

    Example:

    ```python
    import keras, kerazoo
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet"), num_classes=10)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    ```
    """

    def __init__(self, backbone, num_classes, head=None, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_classes = num_classes
        self.head = head if head is not None else keras.layers.Dense(num_classes, name="head")

    def call(self, images, training=False):
        return self.head(self.backbone(images, training=training))

    def deploy_logits(self, images):
        """Inference logits through backbone and head only, the graph that
        `kerazoo.export.deploy_model` exports: train-only parts (e.g. a future
        GIT augmenter) stay out of it."""
        return self.head(self.backbone(images, training=False))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "num_classes": self.num_classes,
                "head": keras.saving.serialize_keras_object(self.head),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if config.get("head") is not None:
            config["head"] = keras.saving.deserialize_keras_object(config["head"])
        return cls(**config)
