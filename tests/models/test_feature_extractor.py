"""FeatureExtractor: features of the right shape, serialization, a checked predict."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo import backbones
from kerazoo.models import FeatureExtractor

SHAPE = (8, 8, 1)


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, *SHAPE)).astype("float32")


@pytest.mark.parametrize("projection, normalize", [(None, False), (keras.layers.Dense(5), True)])
def test_features_and_the_keras_file_round_trip(projection, normalize, tmp_path):
    model = FeatureExtractor(
        backbones.get("convnet", input_shape=SHAPE, width=16), projection, normalize=normalize
    )
    x = _images(4)
    features = keras.ops.convert_to_numpy(model(x))
    assert features.shape == (4, 5 if projection else 16)
    norms = np.linalg.norm(features, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalize
    assert model.kind == "features" and model.inference_model() is model

    clone = FeatureExtractor.from_config(model.get_config())
    assert (clone.projection is None) == (projection is None) and clone.normalize == normalize
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is FeatureExtractor
    np.testing.assert_allclose(loaded.predict(x, verbose=0), features, atol=1e-6)


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
