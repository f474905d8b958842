"""Classifier: a backbone and a head, the ERM baseline and the deployable form of every method."""

import keras
from keras import ops

from kerazoo.losses.cross_entropy import cross_entropy_loss
from kerazoo.models.backbone_shapes import image_shape
from kerazoo.models.base import TrainingModel
from kerazoo.models.checked_predict import CheckedPredict
from kerazoo.ops import check_class_ids
from kerazoo.serialization import deserialized


@keras.saving.register_keras_serializable(package="kerazoo")
class Classifier(CheckedPredict, TrainingModel):
    """A backbone followed by a head producing logits.

    With the default linear head this is the ERM baseline. Methods that
    train with extra parts (LUCIR's frozen old model, BatchFormer) ship
    their trained backbone and head as a `Classifier`, so a pretrained model
    loads and fine-tunes the same way whatever made it.

    Trained with cross-entropy on the logits (the loss term `ce`) through
    `TrainingModel`'s step, which divides it by the replica count before
    gradients are summed, so N replicas on a global batch train like one
    device on the same batch (BatchNorm aside: use a backbone built with
    `synchronized=True` for that equality).

    `predict` is for images: float32 (N, H, W, C) in [0, 1], finite, checked
    first (`kerazoo.inputs.check_images`; standardized pixels or 0..255
    values are refused, not scored). `model(x)` and `fit` take any input.

    Args:
        backbone: a `keras.Model` from images to feature vectors.
        num_classes: number of classes (the head's output size).
        head: a layer from features to `num_classes` logits, e.g. a trained
            `kerazoo.layers.CosineLinear`; default `default_head()`: a new
            Keras `Dense(num_classes)` here (Glorot-uniform kernel, zero
            bias), initialised as its official code in a method's model.

    Example:

    ```python
    import numpy as np
    import kerazoo

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 10, size=16)
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=10)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    print(model.predict(images[:2], verbose=0).shape)  # (2, 10) logits
    ```
    """

    kind = "classifier"
    loss_terms = ("ce",)

    def __init__(self, backbone, num_classes, head=None, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_classes = num_classes
        self.head = head if head is not None else self.default_head()

    def default_head(self):
        """The head of a new model (`head=None`): Keras' `Dense(num_classes)`.
        A method's model overrides it with the head its official code builds."""
        return keras.layers.Dense(self.num_classes, name="head")

    def call(self, images, training=False):
        return self.head(self.backbone(images, training=training))

    def compute_losses(self, data, training):
        images, labels = data[0], data[1]
        labels = check_class_ids(labels, self.num_classes)
        logits = self(images, training=training)
        return {"ce": cross_entropy_loss(labels, logits)}, logits

    def inference_model(self):
        """What ships: this backbone and head (see `kerazoo.export`)."""
        return self

    @classmethod
    def shipped(cls, backbone, num_classes, head):
        """A `Classifier` of a method's trained backbone and head, called once
        so that exports know its input shape: what a method's
        `inference_model()` returns."""
        model = cls(backbone, num_classes, head=head)
        model(ops.zeros((1, *image_shape(backbone))))
        return model

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
        return cls(**deserialized(config, "backbone", "head"))
