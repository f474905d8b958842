"""AdaptiveInstanceNorm against NumPy, and its config round trip."""

import numpy as np
import pytest

from helpers.layers import check_layer
from kerazoo.layers import AdaptiveInstanceNorm


def test_adain_normalises_each_sample_and_channel_then_applies_the_given_bias_and_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (2, 5, 5, 3)).astype("float32")
    params = rng.normal(size=(2, 6)).astype("float32")  # [bias (3), scale (3)] per sample
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    expected = (x - mean) / std * params[:, None, None, 3:] + params[:, None, None, :3]
    layer = AdaptiveInstanceNorm()
    np.testing.assert_allclose(np.asarray(layer(x, params)), expected, atol=1e-4)
    clone = AdaptiveInstanceNorm.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(clone(x, params)), expected, atol=1e-4)


def test_passes_the_layer_checks(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 5, 3)).astype("float32")
    params = rng.normal(size=(2, 6)).astype("float32")
    check_layer(AdaptiveInstanceNorm(), (x, params), (2, 5, 5, 3), tmp_path)


@pytest.mark.parametrize(
    "x_shape, params_shape, message",
    [
        ((2, 4, 3), (2, 6), r"takes images \(B, H, W, C\)"),  # broadcast to (2, 2, 4, 3) before
        ((2, 4, 4, 3), (2, 3), "params have 3 columns; images with 3 channels need 6"),
        ((2, 4, 4, 3), (1, 6), "1 rows of params for a batch of 2 images"),
    ],
)
def test_shapes_that_would_broadcast_are_refused(x_shape, params_shape, message):
    x, params = np.zeros(x_shape, "float32"), np.zeros(params_shape, "float32")
    with pytest.raises(ValueError, match=message):
        AdaptiveInstanceNorm()(x, params)
