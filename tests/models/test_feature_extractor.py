"""FeatureExtractor: features of the right shape, serialization (its checked
predict: test_checked_predict.py)."""

import keras
import numpy as np
import pytest

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
