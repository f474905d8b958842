"""A backbone's shapes: read from a functional model; a subclassed one is
refused by every model that reads them, with the wrapping that fixes it."""

import keras
import numpy as np
import pytest

from kerazoo import backbones
from kerazoo.layers import BatchFormer, CosineLinear
from kerazoo.models import AdCo, BatchFormerClassifier, LUCIRClassifier
from kerazoo.models.backbone_shapes import feature_size, image_shape


class Pooled(keras.Model):
    """A subclassed backbone: no input_shape or output_shape, even once called."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(8, 3)
        self.pool = keras.layers.GlobalAveragePooling2D()

    def call(self, images, training=False):
        return self.pool(self.conv(images))


def test_a_functional_backbones_shapes_are_read():
    backbone = backbones.get("convnet", input_shape=(8, 8, 1), width=16)
    assert image_shape(backbone) == (8, 8, 1) and feature_size(backbone) == 16


MODELS = {
    "BatchFormerClassifier": lambda b: BatchFormerClassifier(b, 10, BatchFormer(num_heads=2)),
    "BatchFormerClassifier with head=": lambda b: BatchFormerClassifier(
        b, 10, BatchFormer(num_heads=2), head=keras.layers.Dense(10)
    ),
    "LUCIRClassifier": lambda b: LUCIRClassifier(b, CosineLinear(10)),
    "AdCo": lambda b: AdCo(b, bank_size=16, dim=8),
}


@pytest.mark.parametrize("model", MODELS)
def test_a_subclassed_backbone_is_refused_with_the_wrapping_that_works(model):
    subclassed = Pooled()
    subclassed(np.zeros((2, 8, 8, 1), "float32"))  # called once: still no shapes
    with pytest.raises(ValueError, match=r"Pooled.*keras.Model\(inputs, model\(inputs\)\)"):
        MODELS[model](subclassed)
    inputs = keras.Input((8, 8, 1))
    built = MODELS[model](keras.Model(inputs, subclassed(inputs)))
    output = np.asarray(built(np.zeros((2, 8, 8, 1), "float32")))
    assert output.shape[0] == 2 and np.isfinite(output).all()
