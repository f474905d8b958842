"""CheckedPredict, through the FeatureExtractor that mixes it in: `predict`
refuses images the model was not built for, answers an empty batch, and
leaves datasets to Keras."""

import numpy as np
import pytest
import tensorflow as tf

from kerazoo import backbones
from kerazoo.models import FeatureExtractor

SHAPE = (8, 8, 1)


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, *SHAPE)).astype("float32")


def test_predict_checks_images_against_the_built_shape():
    model = FeatureExtractor(backbones.get("convnet", input_shape=SHAPE, width=16))
    model.predict(_images(2), verbose=0)
    for bad, message in [
        ((_images(2) * 255).astype("uint8"), "dtype uint8"),
        (_images(2) * 255, r"range over"),
        (np.zeros((2, 16, 16, 1), "float32"), r"expected \(N, 8, 8, 1\)"),
        (_images(1)[0], "single image without the batch axis"),
    ]:
        with pytest.raises(ValueError, match=message):
            model.predict(bad, verbose=0)
    assert model.predict(_images(0), verbose=0).shape == (0, 16)
    # Datasets go to Keras' own predict.
    dataset = tf.data.Dataset.from_tensor_slices(_images(3)).batch(2)
    assert model.predict(dataset, verbose=0).shape == (3, 16)
